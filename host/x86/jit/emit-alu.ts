/**
 * Inline forms for the hot integer operations on 32- and 64-bit operands (the table's `jit`
 * column names them):
 *   alu     ADD, OR, AND, SUB, XOR, CMP (the op is the entry's `sub`): E,G and E,I with E a
 *           register, and G,E with E a register or memory
 *   test    TEST E,G and E,I with E a register
 *   incdec  INC, DEC of a register
 *   shift   SHL/SAL/SHR/SAR of a register by 1 or by an immediate
 * The results match execute/alu.ts and execute/shift.ts exactly, including the lazy flags
 * record they leave (flags.ts); other sizes and operand kinds call the handler.
 */
import { X86_EFLAGS_OF } from '../../../protocol/abi.js';
import { CC_ADD, CC_DEC, CC_INC, CC_RES, CC_SUB } from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { ALU_ADD, ALU_AND, ALU_CMP, ALU_OR, ALU_SUB, ALU_XOR } from '../execute/alu.js';
import { SH_SAL, SH_SAR, SH_SHL, SH_SHR } from '../execute/shift.js';
import { carryExpression, type Emitter } from './emitter.js';
import { emitAddress, emitLoad } from './emit-memory.js';

const INLINE_OPS = new Set([ALU_ADD, ALU_OR, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP]);
const AND_OP = -1; // TEST

interface Operand {
  lo: string;
  hi: string;
}

function register(e: Emitter, r: number): Operand {
  return { lo: e.lo(r), hi: e.hi(r) };
}

function immediate(i: Insn): Operand {
  return { lo: String(i.imm), hi: String(i.immHi) };
}

/** 32/64-bit operands only. */
function wide(i: Insn): i is Insn & { osize: 4 | 8 } {
  return i.osize === 4 || i.osize === 8;
}

/** Emits dst OP src for size 4 or 8; writes `dst` (a register) unless it is a comparison. */
function emitBinary(e: Emitter, op: number, size: 4 | 8, dst: number, src: Operand): void {
  const writes = op !== ALU_CMP && op !== AND_OP;
  const d = e.local('d'), s = e.local('s'), r = e.local('r');
  e.emit(`${d} = ${e.lo(dst)}; ${s} = ${src.lo};`);
  const cc = op === ALU_ADD ? CC_ADD : op === ALU_SUB || op === ALU_CMP ? CC_SUB : CC_RES;
  if (size === 4) {
    const expr = op === ALU_ADD ? `(${d} + ${s}) | 0` : op === ALU_SUB || op === ALU_CMP ? `(${d} - ${s}) | 0`
      : op === ALU_OR ? `${d} | ${s}` : op === ALU_XOR ? `${d} ^ ${s}` : `${d} & ${s}`;
    e.emit(`${r} = ${expr};`);
    if (writes) e.setReg(dst, r, '0');
    e.setFlags({ op: cc, size: 4, d, s, r, dh: '0', sh: '0', rh: '0', aux: '0' });
    return;
  }
  const dh = e.local('dh'), sh = e.local('sh'), rh = e.local('rh');
  e.emit(`${dh} = ${e.hi(dst)}; ${sh} = ${src.hi};`);
  switch (op) {
    case ALU_ADD:
      e.emit(`${r} = (${d} + ${s}) | 0; ${rh} = (${dh} + ${sh} + ((${r} >>> 0) < (${d} >>> 0) ? 1 : 0)) | 0;`);
      break;
    case ALU_SUB:
    case ALU_CMP:
      e.emit(`${r} = (${d} - ${s}) | 0; ${rh} = (${dh} - ${sh} - ((${d} >>> 0) < (${s} >>> 0) ? 1 : 0)) | 0;`);
      break;
    case ALU_OR:
      e.emit(`${r} = ${d} | ${s}; ${rh} = ${dh} | ${sh};`);
      break;
    case ALU_XOR:
      e.emit(`${r} = ${d} ^ ${s}; ${rh} = ${dh} ^ ${sh};`);
      break;
    default:
      e.emit(`${r} = ${d} & ${s}; ${rh} = ${dh} & ${sh};`);
      break;
  }
  if (writes) e.setReg(dst, r, rh);
  e.setFlags({ op: cc, size: 8, d, s, r, dh, sh, rh, aux: '0' });
}

/** The source operand of an E,G / E,I form. */
function source(e: Emitter, i: Insn): Operand {
  return i.entry.operands[1]![0] === 'I' ? immediate(i) : register(e, i.reg);
}

/** `alu`: the operation is the entry's sub; the direction and source kind are its operand forms. */
export function emitAlu(e: Emitter, i: Insn): boolean {
  if (!wide(i) || !INLINE_OPS.has(i.sub)) return false;
  if (i.entry.operands[0]![0] === 'G') {
    if (i.rm !== NONE) {
      emitBinary(e, i.sub, i.osize, i.reg, register(e, i.rm));
      return true;
    }
    e.faultPoint();
    const a = emitAddress(e, i);
    const lo = e.local('m'), hi = e.local('mh');
    emitLoad(e, a, i.osize, lo, hi);
    emitBinary(e, i.sub, i.osize, i.reg, { lo, hi });
    return true;
  }
  if (i.rm === NONE) return false; // a memory destination: the handler's read-modify-write
  emitBinary(e, i.sub, i.osize, i.rm, source(e, i));
  return true;
}

/** `test`: AND without writing, E a register. */
export function emitTest(e: Emitter, i: Insn): boolean {
  if (!wide(i) || i.rm === NONE) return false;
  emitBinary(e, AND_OP, i.osize, i.rm, source(e, i));
  return true;
}

/** `incdec`: INC (sub 0) or DEC (sub 1) of a register; CF carries over from the previous flags. */
export function emitIncDec(e: Emitter, i: Insn): boolean {
  if (!wide(i) || i.rm === NONE) return false;
  const size = i.osize;
  const dec = i.sub === 1;
  const p = e.pending;
  const carry = p !== null ? carryExpression(p) : null;
  const cf = e.local('cf');
  if (carry === null) {
    e.flushFlags();
    e.emit(`${cf} = getCF(c);`);
  } else {
    e.emit(`${cf} = ${carry};`);
  }
  const r = i.rm;
  const d = e.local('d'), res = e.local('r');
  if (size === 4) {
    e.emit(`${d} = ${e.lo(r)}; ${res} = (${d} ${dec ? '-' : '+'} 1) | 0;`);
    e.setReg(r, res, '0');
    e.setFlags({ op: dec ? CC_DEC : CC_INC, size: 4, d, s: '1', r: res, dh: '0', sh: '0', rh: '0', aux: cf });
    return true;
  }
  const dh = e.local('dh'), rh = e.local('rh');
  e.emit(`${d} = ${e.lo(r)}; ${dh} = ${e.hi(r)}; ${res} = (${d} ${dec ? '-' : '+'} 1) | 0;`);
  e.emit(dec ? `${rh} = (${dh} - (${d} === 0 ? 1 : 0)) | 0;` : `${rh} = (${dh} + (${res} === 0 ? 1 : 0)) | 0;`);
  e.setReg(r, res, rh);
  e.setFlags({ op: dec ? CC_DEC : CC_INC, size: 8, d, s: '1', r: res, dh, sh: '0', rh, aux: cf });
  return true;
}

/** `shift`: SHL/SAL/SHR/SAR of a register by a count known when translating (the `1` or `Ib` form). */
export function emitShift(e: Emitter, i: Insn): boolean {
  const countForm = i.entry.operands[1];
  if (!wide(i) || i.rm === NONE || (countForm !== '1' && countForm !== 'Ib')) return false;
  const kind = i.sub;
  if (kind !== SH_SHL && kind !== SH_SAL && kind !== SH_SHR && kind !== SH_SAR) return false;
  const size = i.osize;
  const n = (countForm === '1' ? 1 : i.imm) & (size === 8 ? 0x3f : 0x1f);
  const r = i.rm;
  if (n === 0) {
    // A masked count of 0 changes no flag (flagsConditional); the register is still written.
    if (size === 4) e.setReg(r, e.lo(r), '0');
    return true;
  }
  const res = e.local('r'), aux = e.local('f');
  const OF = X86_EFLAGS_OF;
  if (size === 4) {
    const d = e.local('d');
    e.emit(`${d} = ${e.lo(r)};`);
    if (kind === SH_SHR) {
      e.emit(`${res} = (${d} >>> ${n}) | 0; ${aux} = ((${d} >>> ${n - 1}) & 1) | (${d} < 0 ? ${OF} : 0);`);
    } else if (kind === SH_SAR) {
      e.emit(`${res} = ${d} >> ${n}; ${aux} = (${d} >> ${n - 1}) & 1;`);
    } else {
      e.emit(`${res} = ${d} << ${n}; ${aux} = (${d} >>> ${32 - n}) & 1; ${aux} |= ((${res} >>> 31) ^ ${aux}) !== 0 ? ${OF} : 0;`);
    }
    e.setReg(r, res, '0');
    e.setFlags({ op: CC_RES, size: 4, d: '0', s: '0', r: res, dh: '0', sh: '0', rh: '0', aux });
    return true;
  }
  const lo = e.local('lo'), hi = e.local('hi'), rh = e.local('rh');
  e.emit(`${lo} = ${e.lo(r)}; ${hi} = ${e.hi(r)};`);
  if (kind === SH_SHR || kind === SH_SAR) {
    const sar = kind === SH_SAR;
    if (n < 32) {
      e.emit(`${res} = (${lo} >>> ${n}) | (${hi} << ${32 - n}); ${rh} = ${hi} ${sar ? '>>' : '>>>'} ${n}; ${aux} = (${lo} >>> ${n - 1}) & 1;`);
    } else {
      e.emit(sar ? `${res} = ${hi} >> ${n - 32}; ${rh} = ${hi} >> 31;` : `${res} = ${hi} >>> ${n - 32}; ${rh} = 0;`);
      e.emit(`${aux} = ${n === 32 ? `${lo} >>> 31` : `(${hi} >>> ${n - 33}) & 1`};`);
    }
    if (!sar) e.emit(`${aux} |= ${hi} < 0 ? ${OF} : 0;`);
  } else {
    if (n < 32) {
      e.emit(`${rh} = (${hi} << ${n}) | (${lo} >>> ${32 - n}); ${res} = ${lo} << ${n}; ${aux} = (${hi} >>> ${32 - n}) & 1;`);
    } else {
      e.emit(`${rh} = ${lo} << ${n - 32}; ${res} = 0; ${aux} = ${n === 32 ? `${hi} & 1` : `(${lo} >>> ${64 - n}) & 1`};`);
    }
    e.emit(`${aux} |= ((${rh} >>> 31) ^ ${aux}) !== 0 ? ${OF} : 0;`);
  }
  e.emit(`${res} |= 0; ${rh} |= 0;`);
  e.setReg(r, res, rh);
  e.setFlags({ op: CC_RES, size: 8, d: '0', s: '0', r: res, dh: '0', sh: '0', rh, aux });
  return true;
}
