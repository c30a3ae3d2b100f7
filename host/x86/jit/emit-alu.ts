/**
 * Generated code for the hot integer operations on 32- and 64-bit operands: ADD, OR, AND, SUB,
 * XOR, CMP, TEST (register, immediate and memory-source forms), INC, DEC, and SHL/SHR/SAR by a
 * constant. The results match execute/alu.ts and execute/shift.ts exactly, including the lazy
 * flags record they leave (flags.ts); other sizes and forms use the interpreter's handlers.
 */
import { X86_EFLAGS_OF } from '../../../protocol/abi.js';
import { CC_ADD, CC_DEC, CC_INC, CC_RES, CC_SUB } from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { aluEG, aluEI, aluGE, ALU_ADD, ALU_AND, ALU_CMP, ALU_OR, ALU_SUB, ALU_XOR, incDecE, testEG, testEI } from '../execute/alu.js';
import { shiftGroup, SH_SAL, SH_SAR, SH_SHL, SH_SHR } from '../execute/shift.js';
import { carryExpression, type Emitter } from './emitter.js';
import { emitAddress, emitLoad } from './emit-memory.js';

const INLINE_OPS = new Set([ALU_ADD, ALU_OR, ALU_AND, ALU_SUB, ALU_XOR, ALU_CMP]);
const AND_OP = -1; // TEST

interface Operand {
  lo: string;
  hi: string;
}

function register(r: number): Operand {
  return { lo: `L[${r}]`, hi: `Hi[${r}]` };
}

/** Emits dst OP src for size 4 or 8; writes `dst` (a register) unless it is a comparison. */
function emitBinary(e: Emitter, op: number, size: 4 | 8, dst: number, src: Operand): void {
  const writes = op !== ALU_CMP && op !== AND_OP;
  const d = e.local('d'), s = e.local('s'), r = e.local('r');
  e.emit(`${d} = L[${dst}]; ${s} = ${src.lo};`);
  if (size === 4) {
    const expr = op === ALU_ADD ? `(${d} + ${s}) | 0` : op === ALU_SUB || op === ALU_CMP ? `(${d} - ${s}) | 0`
      : op === ALU_OR ? `${d} | ${s}` : op === ALU_XOR ? `${d} ^ ${s}` : `${d} & ${s}`;
    e.emit(`${r} = ${expr};`);
    if (writes) e.emit(`L[${dst}] = ${r}; Hi[${dst}] = 0;`);
    const cc = op === ALU_ADD ? CC_ADD : op === ALU_SUB || op === ALU_CMP ? CC_SUB : CC_RES;
    e.setFlags({ op: cc, size: 4, d, s, r, dh: '0', sh: '0', rh: '0', aux: '0' });
    return;
  }
  const dh = e.local('dh'), sh = e.local('sh'), rh = e.local('rh');
  e.emit(`${dh} = Hi[${dst}]; ${sh} = ${src.hi};`);
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
  if (writes) e.emit(`L[${dst}] = ${r}; Hi[${dst}] = ${rh};`);
  const cc = op === ALU_ADD ? CC_ADD : op === ALU_SUB || op === ALU_CMP ? CC_SUB : CC_RES;
  e.setFlags({ op: cc, size: 8, d, s, r, dh, sh, rh, aux: '0' });
}

/** TEST dst, src: AND without writing (dst is a register). */
function emitTest(e: Emitter, size: 4 | 8, dst: number, src: Operand): void {
  emitBinary(e, AND_OP, size, dst, src);
}

function immediate(i: Insn): Operand {
  return { lo: String(i.imm), hi: String(i.immHi) };
}

/** Returns false when the instruction is not one this file compiles. */
export function emitAlu(e: Emitter, i: Insn): boolean {
  const size = i.osize;
  if (size !== 4 && size !== 8) return false;
  const h = i.entry.exec;
  if (h === aluEG || h === aluEI || h === aluGE) {
    if (!INLINE_OPS.has(i.sub)) return false;
    if (h === aluGE) {
      if (i.rm !== NONE) {
        emitBinary(e, i.sub, size, i.reg, register(i.rm));
        return true;
      }
      e.flushFlags();
      e.emit(`k = ${e.index};`);
      const a = emitAddress(e, i);
      const lo = e.local('m'), hi = e.local('mh');
      emitLoad(e, a, size, lo, hi);
      emitBinary(e, i.sub, size, i.reg, { lo, hi });
      return true;
    }
    if (i.rm === NONE) return false;
    emitBinary(e, i.sub, size, i.rm, h === aluEG ? register(i.reg) : immediate(i));
    return true;
  }
  if (h === testEG || h === testEI) {
    if (i.rm === NONE) return false;
    emitTest(e, size, i.rm, h === testEG ? register(i.reg) : immediate(i));
    return true;
  }
  if (h === incDecE) return i.rm !== NONE && emitIncDec(e, i, size);
  if (h === shiftGroup) return emitShift(e, i, size);
  return false;
}

function emitIncDec(e: Emitter, i: Insn, size: 4 | 8): boolean {
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
    e.emit(`${d} = L[${r}]; ${res} = (${d} ${dec ? '-' : '+'} 1) | 0; L[${r}] = ${res}; Hi[${r}] = 0;`);
    e.setFlags({ op: dec ? CC_DEC : CC_INC, size: 4, d, s: '1', r: res, dh: '0', sh: '0', rh: '0', aux: cf });
    return true;
  }
  const dh = e.local('dh'), rh = e.local('rh');
  e.emit(`${d} = L[${r}]; ${dh} = Hi[${r}]; ${res} = (${d} ${dec ? '-' : '+'} 1) | 0;`);
  e.emit(dec ? `${rh} = (${dh} - (${d} === 0 ? 1 : 0)) | 0;` : `${rh} = (${dh} + (${res} === 0 ? 1 : 0)) | 0;`);
  e.emit(`L[${r}] = ${res}; Hi[${r}] = ${rh};`);
  e.setFlags({ op: dec ? CC_DEC : CC_INC, size: 8, d, s: '1', r: res, dh, sh: '0', rh, aux: cf });
  return true;
}

/** SHL/SAL/SHR/SAR of a register by a constant (C1 /n ib, D1 /n). */
function emitShift(e: Emitter, i: Insn, size: 4 | 8): boolean {
  const op = i.entry.opcode;
  if (i.rm === NONE || (op !== 0xc1 && op !== 0xd1)) return false;
  const kind = i.sub;
  if (kind !== SH_SHL && kind !== SH_SAL && kind !== SH_SHR && kind !== SH_SAR) return false;
  const n = (op === 0xd1 ? 1 : i.imm) & (size === 8 ? 0x3f : 0x1f);
  const r = i.rm;
  if (n === 0) {
    if (size === 4) e.emit(`Hi[${r}] = 0;`); // the register is still written (zero-extended)
    return true;
  }
  const res = e.local('r'), aux = e.local('f');
  const OF = X86_EFLAGS_OF;
  if (size === 4) {
    const d = e.local('d');
    e.emit(`${d} = L[${r}];`);
    if (kind === SH_SHR) {
      e.emit(`${res} = (${d} >>> ${n}) | 0; ${aux} = ((${d} >>> ${n - 1}) & 1) | (${d} < 0 ? ${OF} : 0);`);
    } else if (kind === SH_SAR) {
      e.emit(`${res} = ${d} >> ${n}; ${aux} = (${d} >> ${n - 1}) & 1;`);
    } else {
      e.emit(`${res} = ${d} << ${n}; ${aux} = (${d} >>> ${32 - n}) & 1; ${aux} |= ((${res} >>> 31) ^ ${aux}) !== 0 ? ${OF} : 0;`);
    }
    e.emit(`L[${r}] = ${res}; Hi[${r}] = 0;`);
    e.setFlags({ op: CC_RES, size: 4, d: '0', s: '0', r: res, dh: '0', sh: '0', rh: '0', aux });
    return true;
  }
  const lo = e.local('lo'), hi = e.local('hi'), rh = e.local('rh');
  e.emit(`${lo} = L[${r}]; ${hi} = Hi[${r}];`);
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
  e.emit(`${res} |= 0; ${rh} |= 0; L[${r}] = ${res}; Hi[${r}] = ${rh};`);
  e.setFlags({ op: CC_RES, size: 8, d: '0', s: '0', r: res, dh: '0', sh: '0', rh, aux });
  return true;
}
