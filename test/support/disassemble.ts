/**
 * iced-x86 as the test oracle for hand-encoded or generated guest code: decodes bytes into
 * NASM-syntax text with 0x-prefixed lowercase hex, one instruction per entry.
 */
import { Decoder, DecoderOptions, Formatter, FormatterSyntax } from 'iced-x86';

export interface Disassembled {
  readonly ip: number;
  readonly length: number;
  readonly text: string;
  readonly invalid: boolean;
}

export function disassemble(bytes: Uint8Array, ip: number): Disassembled[] {
  const decoder = new Decoder(64, bytes, DecoderOptions.None);
  decoder.ip = BigInt(ip);
  const formatter = new Formatter(FormatterSyntax.Nasm);
  formatter.hexPrefix = '0x';
  formatter.hexSuffix = '';
  formatter.uppercaseHex = false;
  formatter.spaceAfterOperandSeparator = true;
  formatter.branchLeadingZeros = false;
  const out: Disassembled[] = [];
  try {
    while (decoder.canDecode) {
      const insn = decoder.decode();
      out.push({ ip: Number(insn.ip), length: insn.length, text: formatter.format(insn), invalid: insn.isInvalid });
      insn.free();
    }
  } finally {
    decoder.free();
    formatter.free();
  }
  return out;
}

/** Just the instruction texts. */
export function disassembleText(bytes: Uint8Array, ip: number): string[] {
  return disassemble(bytes, ip).map((d) => d.text);
}
