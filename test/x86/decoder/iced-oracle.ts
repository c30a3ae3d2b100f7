/**
 * iced-x86 as the decoding oracle (docs/x86-model.md §2): for a byte string it gives validity,
 * length, mnemonic and operands, which we compare with our decoder's record (via
 * host/x86/decode/describe.ts, i.e. via the instruction table).
 */
import { Code, Decoder, DecoderOptions, Mnemonic, OpKind, Register, type Instruction } from 'iced-x86';
import {
  decode, DECODE_INVALID, DECODE_NEED_MORE, DECODE_TOO_LONG, describeOperands, formatInsn, mnemonicOf,
  type OperandDescription,
} from '../../../host/index.js';

export interface IcedResult {
  valid: boolean;
  length: number;
  code: string;
  mnemonic: string;
  text: string;
  instr: Instruction;
}


export function icedDecode(bytes: Uint8Array): IcedResult {
  const d = new Decoder(64, bytes, DecoderOptions.None);
  d.ip = 0n;
  const instr = d.decode();
  const r = {
    valid: !instr.isInvalid,
    length: instr.length,
    code: Code[instr.code]!,
    mnemonic: Mnemonic[instr.mnemonic]!.toLowerCase(),
    text: instr.toString(),
    instr,
  };
  d.free();
  return r;
}

/** iced's register name for ours (r8b is R8L there). */
function icedRegisterName(ours: string): string {
  const up = ours.toUpperCase();
  return /^R\d+B$/.test(up) ? up.slice(0, -1) + 'L' : up;
}

function regName(r: Register): string | null {
  return r === Register.None ? null : Register[r]!.toLowerCase();
}

/** Compares one operand; returns a description of the difference or null. */
function compareOperand(k: number, o: OperandDescription, instr: Instruction, length: number): string | null {
  const kind = instr.opKind(k);
  switch (o.kind) {
    case 'reg': {
      if (kind !== OpKind.Register) return `operand ${k}: ours register ${o.name}, iced ${OpKind[kind]}`;
      const theirs = Register[instr.opRegister(k)]!;
      return theirs === icedRegisterName(o.name) ? null : `operand ${k}: ours ${o.name}, iced ${theirs}`;
    }
    case 'imm': {
      if (kind < OpKind.Immediate8 || kind > OpKind.Immediate32to64) return `operand ${k}: ours immediate, iced ${OpKind[kind]}`;
      const theirs = BigInt.asUintN(o.bits, instr.immediate(k));
      return theirs === o.value ? null : `operand ${k}: ours imm 0x${o.value.toString(16)}, iced 0x${theirs.toString(16)}`;
    }
    case 'branch': {
      if (kind !== OpKind.NearBranch64) return `operand ${k}: ours branch, iced ${OpKind[kind]}`;
      return instr.nearBranch64 === o.target ? null : `operand ${k}: ours target 0x${o.target.toString(16)}, iced 0x${instr.nearBranch64.toString(16)}`;
    }
    case 'string': {
      const ok = o.register === 'rsi'
        ? kind === OpKind.MemorySegRSI || kind === OpKind.MemorySegESI
        : kind === OpKind.MemoryESRDI || kind === OpKind.MemoryESEDI;
      return ok ? null : `operand ${k}: ours [${o.register}], iced ${OpKind[kind]}`;
    }
    case 'mem': {
      if (kind !== OpKind.Memory) return `operand ${k}: ours memory, iced ${OpKind[kind]}`;
      const base = regName(instr.memoryBase), index = regName(instr.memoryIndex);
      const ourBase = o.base === null ? null : icedRegisterName(o.base).toLowerCase();
      const ourIndex = o.index === null ? null : icedRegisterName(o.index).toLowerCase();
      if (base !== ourBase) return `operand ${k}: ours base ${ourBase}, iced ${base}`;
      if (index !== ourIndex) return `operand ${k}: ours index ${ourIndex}, iced ${index}`;
      if (index !== null && instr.memoryIndexScale !== o.scale) return `operand ${k}: ours scale ${o.scale}, iced ${instr.memoryIndexScale}`;
      const bits = base === 'eip' || (base !== null && base.startsWith('e')) || (index !== null && index.startsWith('e')) || /^r\d+d$/.test(base ?? index ?? '') ? 32 : 64;
      const theirs = BigInt.asUintN(bits, instr.memoryDisplacementU64);
      const ours = BigInt.asUintN(bits, o.displacement);
      if (theirs !== ours) return `operand ${k}: ours displacement 0x${ours.toString(16)}, iced 0x${theirs.toString(16)}`;
      const seg = regName(instr.memorySegment);
      const theirSeg = seg === 'fs' || seg === 'gs' ? seg : null;
      if (theirSeg !== o.segment) return `operand ${k}: ours segment ${o.segment}, iced ${theirSeg}`;
      void length;
      return null;
    }
  }
}

export type Verdict =
  | { kind: 'agree' }
  | { kind: 'unsupported'; code: string }
  | { kind: 'mismatch'; detail: string };

/**
 * Decodes with both and compares. `bytes` must be at least 16 bytes long (so that the
 * 15-byte limit, not the buffer end, bounds every decode).
 */
export function compareWithIced(bytes: Uint8Array, isUnsupported: (code: string) => boolean): Verdict {
  const iced = icedDecode(bytes);
  const ours = decode(bytes, 0, bytes.length);
  const hex = Buffer.from(bytes.subarray(0, Math.max(iced.length, 1))).toString('hex');
  if (ours === DECODE_NEED_MORE) return { kind: 'mismatch', detail: `${hex}: our decoder asked for more than 16 bytes` };
  if (!iced.valid) {
    if (ours === DECODE_INVALID || ours === DECODE_TOO_LONG) return { kind: 'agree' };
    return { kind: 'mismatch', detail: `${hex}: iced says invalid, we decoded ${formatInsn(ours)} (${ours.len} bytes)` };
  }
  if (ours === DECODE_TOO_LONG) return { kind: 'mismatch', detail: `${hex}: iced decodes ${iced.text} (${iced.length} bytes), we say longer than 15` };
  if (ours === DECODE_INVALID) {
    if (isUnsupported(iced.code)) return { kind: 'unsupported', code: iced.code };
    return { kind: 'mismatch', detail: `${hex}: iced decodes ${iced.text} (${iced.code}), not in our set and not listed as unsupported` };
  }
  if (isUnsupported(iced.code)) return { kind: 'mismatch', detail: `${hex}: we decode ${formatInsn(ours)} but ${iced.code} is listed as unsupported` };
  const tag = `${hex}: ours ${formatInsn(ours)}, iced ${iced.text}`;
  if (ours.len !== iced.length) return { kind: 'mismatch', detail: `${tag}: length ${ours.len} vs ${iced.length}` };
  if (mnemonicOf(ours) !== iced.mnemonic) return { kind: 'mismatch', detail: `${tag}: mnemonic ${mnemonicOf(ours)} vs ${iced.mnemonic}` };
  const ops = describeOperands(ours);
  if (ops.length !== iced.instr.opCount) return { kind: 'mismatch', detail: `${tag}: ${ops.length} operands vs ${iced.instr.opCount}` };
  for (let k = 0; k < ops.length; k++) {
    const d = compareOperand(k, ops[k]!, iced.instr, iced.length);
    if (d !== null) return { kind: 'mismatch', detail: `${tag}: ${d}` };
  }
  if (ours.lock !== iced.instr.hasLockPrefix) return { kind: 'mismatch', detail: `${tag}: lock prefix ${ours.lock} vs ${iced.instr.hasLockPrefix}` };
  if (iced.instr.isStringInstruction) {
    const theirs = iced.instr.hasRepePrefix ? 0xf3 : iced.instr.hasRepnePrefix ? 0xf2 : 0;
    if (theirs !== ours.rep) return { kind: 'mismatch', detail: `${tag}: rep prefix ${ours.rep.toString(16)} vs ${theirs.toString(16)}` };
  }
  return { kind: 'agree' };
}
