/**
 * A decoded instruction's operands as data (and as Intel-syntax text), derived from the
 * table's operand forms: what the decoder differential test compares with iced-x86, and what
 * diagnostics print.
 */
import { BYTE_HIGH } from '../registers.js';
import { BASE_RIP, NONE, type Insn } from './insn.js';
import type { OperandForm } from './table-types.js';

export type OperandDescription =
  | { readonly kind: 'reg'; readonly name: string }
  | {
    readonly kind: 'mem';
    readonly base: string | null;
    readonly index: string | null;
    readonly scale: number;
    /** Displacement as an unsigned value of the address size (RIP-relative: relative to address 0, i.e. length + disp). */
    readonly displacement: bigint;
    /** 'fs' or 'gs' when an override applies. */
    readonly segment: string | null;
  }
  | { readonly kind: 'imm'; readonly value: bigint; readonly bits: number }
  | { readonly kind: 'branch'; readonly target: bigint }
  | { readonly kind: 'string'; readonly register: 'rsi' | 'rdi' };

const R64 = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi'];
const R32 = ['eax', 'ecx', 'edx', 'ebx', 'esp', 'ebp', 'esi', 'edi'];
const R16 = ['ax', 'cx', 'dx', 'bx', 'sp', 'bp', 'si', 'di'];
const R8 = ['al', 'cl', 'dl', 'bl', 'spl', 'bpl', 'sil', 'dil'];
const R8H = ['ah', 'ch', 'dh', 'bh'];
/** Segment registers in encoding order (ModRM.reg of MOV Sreg). */
const SEGMENT_REGISTERS = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'];

/** Register name in Intel syntax (r8b for byte registers 8..15, as the SDM writes them). */
export function registerName(r: number, size: number): string {
  if (size === 1 && r >= BYTE_HIGH) return R8H[r - BYTE_HIGH]!;
  if (r < 8) return (size === 8 ? R64 : size === 4 ? R32 : size === 2 ? R16 : R8)[r]!;
  return `r${r}${size === 8 ? '' : size === 4 ? 'd' : size === 2 ? 'w' : 'b'}`;
}

/** Operand size of a form (b, w, d, q, v = operand size, y = 32 or 64). */
export function formSize(form: OperandForm, osize: number): number {
  const last = form[form.length - 1];
  switch (last) {
    case 'b': return 1;
    case 'w': return 2;
    case 'd': return 4;
    case 'q': return 8;
    case 'y': return osize === 8 ? 8 : 4;
    case 'z': return osize === 2 ? 2 : 4;
    default: return osize;
  }
}

function memory(i: Insn): OperandDescription {
  const bits = i.asize === 4 ? 32 : 64;
  if (i.base === BASE_RIP) {
    return {
      kind: 'mem', base: i.asize === 4 ? 'eip' : 'rip', index: null, scale: 1,
      displacement: BigInt.asUintN(bits, BigInt(i.len + i.disp)), segment: segmentName(i),
    };
  }
  const disp = i.dispHi !== i.disp >> 31
    ? (BigInt(i.dispHi >>> 0) << 32n) | BigInt(i.disp >>> 0)
    : BigInt(i.disp);
  return {
    kind: 'mem',
    base: i.base === NONE ? null : registerName(i.base, i.asize),
    index: i.index === NONE ? null : registerName(i.index, i.asize),
    scale: 1 << i.scale,
    displacement: BigInt.asUintN(bits, disp),
    segment: segmentName(i),
  };
}

function segmentName(i: Insn): string | null {
  return i.seg === 4 ? 'fs' : i.seg === 5 ? 'gs' : null;
}

function imm(v: number, hi: number, bits: number): OperandDescription {
  const big = bits === 64 ? (BigInt(hi >>> 0) << 32n) | BigInt(v >>> 0) : BigInt(v);
  return { kind: 'imm', value: BigInt.asUintN(bits, big), bits };
}

/** The instruction's explicit operands, in Intel order. */
export function describeOperands(i: Insn): OperandDescription[] {
  const out: OperandDescription[] = [];
  const os = i.osize;
  for (const f of i.entry.operands) {
    switch (f) {
      case 'Eb': case 'Ew': case 'Ed': case 'Eq': case 'Ev': case 'Ey': case 'Ez':
        out.push(i.rm !== NONE ? { kind: 'reg', name: registerName(i.rm, formSize(f, os)) } : memory(i));
        break;
      case 'M': case 'Ob': case 'Ov':
        out.push(memory(i));
        break;
      case 'Gb': case 'Gw': case 'Gd': case 'Gq': case 'Gv': case 'Gy': case 'Zb': case 'Zv': case 'Zq':
        out.push({ kind: 'reg', name: registerName(i.reg, formSize(f, os)) });
        break;
      case 'R':
        out.push({ kind: 'reg', name: registerName(i.rm, 8) });
        break;
      case 'C':
        out.push({ kind: 'reg', name: `cr${i.reg}` });
        break;
      case 'D':
        out.push({ kind: 'reg', name: `dr${i.reg}` });
        break;
      case 'Sw':
        out.push({ kind: 'reg', name: SEGMENT_REGISTERS[i.reg]! });
        break;
      case 'Mx':
        out.push({ kind: 'mem', base: registerName(3, i.asize), index: 'al', scale: 1, displacement: 0n, segment: segmentName(i) });
        break;
      case 'AL':
        out.push({ kind: 'reg', name: 'al' });
        break;
      case 'rAX': case 'eAX':
        out.push({ kind: 'reg', name: registerName(0, os) });
        break;
      case 'CL':
        out.push({ kind: 'reg', name: 'cl' });
        break;
      case 'DX':
        out.push({ kind: 'reg', name: 'dx' });
        break;
      case '1':
        out.push({ kind: 'imm', value: 1n, bits: 8 });
        break;
      case 'Ib':
        out.push(imm(i.entry.operands[0] === 'Iw' ? i.imm2 : i.imm, 0, 8));
        break;
      case 'Iw':
        out.push(imm(i.imm, 0, 16));
        break;
      case 'Ibs': case 'Iz': case 'Iv':
        out.push(imm(i.imm, i.immHi, os * 8));
        break;
      case 'Jb': case 'Jz':
        out.push({ kind: 'branch', target: BigInt.asUintN(64, BigInt(i.len + i.imm)) });
        break;
      case 'Xb': case 'Xv':
        out.push({ kind: 'string', register: 'rsi' });
        break;
      case 'Yb': case 'Yv':
        out.push({ kind: 'string', register: 'rdi' });
        break;
    }
  }
  return out;
}

/** The mnemonic at this instruction's operand size. */
export function mnemonicOf(i: Insn): string {
  if (i.asize === 4 && i.entry.mnemonic32 !== undefined) return i.entry.mnemonic32;
  return i.entry.sizeMnemonics?.[i.osize] ?? i.entry.mnemonic;
}

function operandText(o: OperandDescription, ip: bigint): string {
  switch (o.kind) {
    case 'reg': return o.name;
    case 'imm': return '0x' + o.value.toString(16);
    case 'branch': return '0x' + BigInt.asUintN(64, ip + o.target).toString(16);
    case 'string': return `[${o.register}]`;
    default: {
      const parts: string[] = [];
      if (o.base) parts.push(o.base);
      if (o.index) parts.push(o.scale > 1 ? `${o.index}*${o.scale}` : o.index);
      if (o.displacement !== 0n || parts.length === 0) parts.push('0x' + o.displacement.toString(16));
      return `${o.segment ? o.segment + ':' : ''}[${parts.join('+')}]`;
    }
  }
}

/** Intel-syntax text, for diagnostics; branch targets as addresses for an instruction at `ip`. */
export function formatInsn(i: Insn, ip = 0n): string {
  const ops = describeOperands(i).map((o) => operandText(o, ip)).join(', ');
  const prefix = (i.lock ? 'lock ' : '') + (i.selfRetiring ? (i.rep === 0xf2 ? 'repne ' : 'rep ') : '');
  return `${prefix}${mnemonicOf(i)}${ops ? ' ' + ops : ''}`;
}
