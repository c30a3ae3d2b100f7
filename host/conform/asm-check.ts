/**
 * An exec step's `asm` against its `code`: pinbox's own decoder (host/x86, which a test holds to
 * iced-x86's) reads the bytes, and each instruction must be the one the text names — so that a
 * scenario cannot say one thing and run another. `npm test` checks the shipped suite with iced
 * itself; this is the same check for any scenario `pinbox conform` runs.
 *
 * The comparison is of a canonical form of both sides, so that writing style does not matter:
 * case, spaces, size keywords (`qword ptr`), numbers in decimal or hex, a negative displacement
 * as `-0x8` or as its 64-bit two's complement. Branch targets are addresses, written as if the
 * code sat at 0x100000, where vCPU 0's CPL0 exec code goes (docs/boot.md), as iced writes them.
 */
import { decode } from '../x86/decode/decoder.js';
import { formatInsn } from '../x86/decode/describe.js';

/** Where the asm's branch targets count from. */
export const ASM_ORIGIN = 0x100000n;

const SIZE_WORDS = /\b(byte|word|dword|qword|tword|oword|xmmword|ymmword|ptr|near|short)\b/g;
/** A number standing alone (not the 8 of r8), with the sign before it. */
const NUMBER = /([+-]?)\b(0x[0-9a-f]+|[0-9]+)\b/g;

/** The canonical form: lower case, no size keywords, numbers in hex, negatives signed, no spaces. */
export function canonicalAsm(text: string): string {
  return text
    .toLowerCase()
    .replace(SIZE_WORDS, ' ')
    .replace(NUMBER, (_, sign: string, digits: string) => {
      let v = BigInt(digits);
      let negative = sign === '-';
      // A displacement or immediate of 2^63 and above, as formatters print 64-bit two's complement.
      if (sign === '+' && v >= 1n << 63n && v < 1n << 64n) {
        v = (1n << 64n) - v;
        negative = true;
      }
      return `${negative ? '-' : sign}0x${v.toString(16)}`;
    })
    .replace(/\s+/g, '');
}

export type AsmProblem = { readonly index: number | undefined; readonly reason: string };

/** What is wrong with `asm` as a description of `code`; [] when every instruction is the one named. */
export function asmProblems(code: Uint8Array, asm: readonly string[]): AsmProblem[] {
  const found: string[] = [];
  for (let at = 0; at < code.length;) {
    const insn = decode(code, at, code.length);
    if (typeof insn === 'number') return [{ index: undefined, reason: `the code does not decode as an instruction pinbox runs at byte ${at} (its asm says ${JSON.stringify(asm[found.length] ?? '(nothing)')})` }];
    found.push(formatInsn(insn, ASM_ORIGIN + BigInt(at)));
    at += insn.len;
  }
  const problems: AsmProblem[] = [];
  for (let i = 0; i < Math.min(asm.length, found.length); i++) {
    if (canonicalAsm(asm[i]!) !== canonicalAsm(found[i]!)) {
      problems.push({ index: i, reason: `says "${asm[i]}", but the code holds "${found[i]}" there` });
    }
  }
  if (asm.length !== found.length) {
    problems.push({ index: undefined, reason: `names ${asm.length} instruction${asm.length === 1 ? '' : 's'}, but the code holds ${found.length}: ${found.map((f) => `"${f}"`).join(', ')}` });
  }
  return problems;
}
