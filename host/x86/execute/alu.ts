/**
 * Integer arithmetic and logic: ADD, OR, ADC, SBB, AND, SUB, XOR, CMP (sub-operation numbers
 * are the ModRM.reg values of opcodes 80..83), TEST, INC, DEC, NEG, NOT, CMPXCHG, CMPXCHG8B/16B,
 * XADD.
 * SDM vol. 2 per instruction; flags per vol. 1 appendix A (AF is undefined after logic ops —
 * we clear it, as current Intel and AMD cores do).
 *
 * Read-modify-write operands are checked for writing first (operands.ts), so a store that
 * cannot happen faults before the flags or any register change.
 */
import { X86_EFLAGS_ZF } from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { raiseGP } from '../fault.js';
import {
  CC_ADC, CC_ADD, CC_DEC, CC_INC, CC_SBB, CC_SUB, getCF, materializeFlags, setFlagsOp, setFlagsOp64, setFlagsResult,
  setFlagsResult64,
} from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { prepareWrite, readMem, writeMem } from '../mmu/access.js';
import { readReg, writeReg } from '../registers.js';
import { linearAddress } from './address.js';
import { addressForUpdate, immediate, readE, readUpdate, writeUpdate } from './operands.js';

export const ALU_ADD = 0;
export const ALU_OR = 1;
export const ALU_ADC = 2;
export const ALU_SBB = 3;
export const ALU_AND = 4;
export const ALU_SUB = 5;
export const ALU_XOR = 6;
export const ALU_CMP = 7;

const TWO32 = 4294967296;

/**
 * One ALU operation on operands of 1, 2 or 4 bytes; records the flags and returns the result
 * (zero-extended for sizes 1 and 2, int32 for 4).
 */
export function alu32(c: CpuCore, op: number, size: number, dst: number, src: number): number {
  const sh = 32 - 8 * size;
  const a = dst << sh, b = src << sh;
  let r: number;
  switch (op) {
    case ALU_ADD:
      r = (a + b) | 0;
      setFlagsOp(c, CC_ADD, size, a, b, r, 0);
      break;
    case ALU_OR:
      r = a | b;
      setFlagsResult(c, size, r, 0);
      break;
    case ALU_ADC: {
      const cf = getCF(c);
      r = (a + b + (cf << sh)) | 0;
      setFlagsOp(c, CC_ADC, size, a, b, r, cf);
      break;
    }
    case ALU_SBB: {
      const cf = getCF(c);
      r = (a - b - (cf << sh)) | 0;
      setFlagsOp(c, CC_SBB, size, a, b, r, cf);
      break;
    }
    case ALU_AND:
      r = a & b;
      setFlagsResult(c, size, r, 0);
      break;
    case ALU_XOR:
      r = a ^ b;
      setFlagsResult(c, size, r, 0);
      break;
    default: // SUB, CMP
      r = (a - b) | 0;
      setFlagsOp(c, CC_SUB, size, a, b, r, 0);
      break;
  }
  return sh === 0 ? r : r >>> sh;
}

/** One ALU operation on 64-bit operands; returns the low half, high half in c.vhi. */
export function alu64(c: CpuCore, op: number, dLo: number, dHi: number, sLo: number, sHi: number): number {
  let rLo: number, rHi: number;
  switch (op) {
    case ALU_ADD:
    case ALU_ADC: {
      const cin = op === ALU_ADC ? getCF(c) : 0;
      const l = (dLo >>> 0) + (sLo >>> 0) + cin;
      rLo = l | 0;
      rHi = (dHi + sHi + (l >= TWO32 ? 1 : 0)) | 0;
      setFlagsOp64(c, op === ALU_ADC ? CC_ADC : CC_ADD, dLo, dHi, sLo, sHi, rLo, rHi, cin);
      break;
    }
    case ALU_SUB:
    case ALU_CMP:
    case ALU_SBB: {
      const cin = op === ALU_SBB ? getCF(c) : 0;
      const l = (dLo >>> 0) - (sLo >>> 0) - cin;
      rLo = l | 0;
      rHi = (dHi - sHi - (l < 0 ? 1 : 0)) | 0;
      setFlagsOp64(c, op === ALU_SBB ? CC_SBB : CC_SUB, dLo, dHi, sLo, sHi, rLo, rHi, cin);
      break;
    }
    case ALU_OR:
      rLo = dLo | sLo;
      rHi = dHi | sHi;
      setFlagsResult64(c, rLo, rHi, 0);
      break;
    case ALU_AND:
      rLo = dLo & sLo;
      rHi = dHi & sHi;
      setFlagsResult64(c, rLo, rHi, 0);
      break;
    default: // XOR
      rLo = dLo ^ sLo;
      rHi = dHi ^ sHi;
      setFlagsResult64(c, rLo, rHi, 0);
      break;
  }
  c.vhi = rHi;
  return rLo;
}

/** dst (r/m) ← dst op src, where src is already read (lo, hi). */
function updateE(c: CpuCore, i: Insn, op: number, sLo: number, sHi: number): void {
  const size = i.osize;
  const lin = op === ALU_CMP ? 0 : addressForUpdate(c, i, size);
  const dLo = op === ALU_CMP ? readE(c, i, size) : readUpdate(c, i, lin, size);
  if (size === 8) {
    const dHi = c.vhi;
    const rLo = alu64(c, op, dLo, dHi, sLo, sHi);
    if (op !== ALU_CMP) writeUpdate(c, i, lin, 8, rLo, c.vhi);
  } else {
    const r = alu32(c, op, size, dLo, sLo);
    if (op !== ALU_CMP) writeUpdate(c, i, lin, size, r, 0);
  }
}

/** ADD Eb,Gb / Ev,Gv and the other seven. */
export function aluEG(c: CpuCore, i: Insn): void {
  const sLo = readReg(c, i.reg, i.osize);
  updateE(c, i, i.sub, sLo, c.vhi);
}

/** ADD Eb,Ib / Ev,Iz / Ev,Ibs / AL,Ib / rAX,Iz and the others. */
export function aluEI(c: CpuCore, i: Insn): void {
  updateE(c, i, i.sub, immediate(c, i, i.osize), i.immHi);
}

/** ADD Gb,Eb / Gv,Ev and the others. */
export function aluGE(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const sLo = readE(c, i, size);
  const sHi = c.vhi;
  const op = i.sub;
  if (size === 8) {
    const rLo = alu64(c, op, c.lo[i.reg]!, c.hi[i.reg]!, sLo, sHi);
    if (op !== ALU_CMP) writeReg(c, i.reg, 8, rLo, c.vhi);
  } else {
    const r = alu32(c, op, size, readReg(c, i.reg, size), sLo);
    if (op !== ALU_CMP) writeReg(c, i.reg, size, r, 0);
  }
}

function testValues(c: CpuCore, size: number, aLo: number, aHi: number, bLo: number, bHi: number): void {
  if (size === 8) setFlagsResult64(c, aLo & bLo, aHi & bHi, 0);
  else {
    const sh = 32 - 8 * size;
    setFlagsResult(c, size, (aLo & bLo) << sh, 0);
  }
}

/** TEST Eb,Gb / Ev,Gv. */
export function testEG(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const aLo = readE(c, i, size);
  const aHi = c.vhi;
  const bLo = readReg(c, i.reg, size);
  testValues(c, size, aLo, aHi, bLo, c.vhi);
}

/** TEST Eb,Ib / Ev,Iz / AL,Ib / rAX,Iz. */
export function testEI(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const aLo = readE(c, i, size);
  testValues(c, size, aLo, c.vhi, immediate(c, i, size), i.immHi);
}

/** INC/DEC E (sub 0 = INC, 1 = DEC): CF is preserved. */
export function incDecE(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = addressForUpdate(c, i, size);
  const dLo = readUpdate(c, i, lin, size);
  const dHi = c.vhi;
  const cf = getCF(c);
  const dec = i.sub === 1;
  if (size === 8) {
    const l = (dLo >>> 0) + (dec ? -1 : 1);
    const rLo = l | 0;
    const rHi = (dHi + (l >= TWO32 ? 1 : l < 0 ? -1 : 0)) | 0;
    setFlagsOp64(c, dec ? CC_DEC : CC_INC, dLo, dHi, 1, 0, rLo, rHi, cf);
    writeUpdate(c, i, lin, 8, rLo, rHi);
  } else {
    const sh = 32 - 8 * size;
    const a = dLo << sh, b = 1 << sh;
    const r = (dec ? a - b : a + b) | 0;
    setFlagsOp(c, dec ? CC_DEC : CC_INC, size, a, b, r, cf);
    writeUpdate(c, i, lin, size, sh === 0 ? r : r >>> sh, 0);
  }
}

/** NEG E: 0 - E, flags as SUB (CF = operand ≠ 0). */
export function negE(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = addressForUpdate(c, i, size);
  const sLo = readUpdate(c, i, lin, size);
  if (size === 8) {
    const rLo = alu64(c, ALU_SUB, 0, 0, sLo, c.vhi);
    writeUpdate(c, i, lin, 8, rLo, c.vhi);
  } else {
    writeUpdate(c, i, lin, size, alu32(c, ALU_SUB, size, 0, sLo), 0);
  }
}

/** NOT E: no flags. */
export function notE(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = addressForUpdate(c, i, size);
  const lo = readUpdate(c, i, lin, size);
  writeUpdate(c, i, lin, size, ~lo, ~c.vhi);
}

/**
 * CMPXCHG E,G: compare the accumulator with E; equal → E = G, else accumulator = E. A memory
 * destination is written in both cases (the processor writes back the old value when unequal,
 * SDM vol. 2 CMPXCHG), so it must be writable either way. A register destination is left alone
 * when unequal — no 32-bit zero-extension — as the host CPU the fixtures come from does.
 */
export function cmpxchg(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = addressForUpdate(c, i, size);
  const dLo = readUpdate(c, i, lin, size);
  const dHi = c.vhi;
  const aLo = readReg(c, 0, size);
  const aHi = c.vhi;
  let equal: boolean;
  if (size === 8) {
    alu64(c, ALU_CMP, aLo, aHi, dLo, dHi);
    equal = aLo === dLo && aHi === dHi;
  } else {
    alu32(c, ALU_CMP, size, aLo, dLo);
    equal = aLo === dLo;
  }
  if (equal) {
    const sLo = readReg(c, i.reg, size);
    writeUpdate(c, i, lin, size, sLo, c.vhi);
  } else {
    if (i.rm === NONE) writeUpdate(c, i, lin, size, dLo, dHi);
    writeReg(c, 0, size, dLo, dHi);
  }
}

/** XADD E,G: temp = E + G; G = E; E = temp. */
export function xadd(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = addressForUpdate(c, i, size);
  const dLo = readUpdate(c, i, lin, size);
  const dHi = c.vhi;
  const sLo = readReg(c, i.reg, size);
  const sHi = c.vhi;
  let rLo: number, rHi = 0;
  if (size === 8) {
    rLo = alu64(c, ALU_ADD, dLo, dHi, sLo, sHi);
    rHi = c.vhi;
  } else {
    rLo = alu32(c, ALU_ADD, size, dLo, sLo);
  }
  writeReg(c, i.reg, size, dLo, dHi);
  writeUpdate(c, i, lin, size, rLo, rHi);
}

/**
 * CMPXCHG8B m64 / CMPXCHG16B m128 (0F C7 /1; REX.W for 16B): compares EDX:EAX (RDX:RAX) with the
 * memory operand; if equal, ZF = 1 and ECX:EBX (RCX:RBX) is stored, else ZF = 0 and the operand
 * is loaded into EDX:EAX (RDX:RAX) — the destination is written back either way, so it faults as
 * a write. CMPXCHG16B needs a 16-byte aligned operand (#GP(0) otherwise). Only ZF changes.
 */
export function cmpxchg8b(c: CpuCore, i: Insn): void {
  const wide = i.osize === 8;
  const half = wide ? 8 : 4;
  const lin = linearAddress(c, i);
  if (wide && (lin & 15) !== 0) raiseGP(c, 0);
  prepareWrite(c, lin, 2 * half);
  const lowLo = readMem(c, lin, half);
  const lowHi = wide ? c.vhi : 0;
  const highLo = readMem(c, lin + half, half);
  const highHi = wide ? c.vhi : 0;
  const equal = lowLo === c.lo[0]! && highLo === c.lo[2]! && (!wide || (lowHi === c.hi[0]! && highHi === c.hi[2]!));
  materializeFlags(c);
  if (equal) {
    writeMem(c, lin, half, c.lo[3]!, wide ? c.hi[3]! : 0);
    writeMem(c, lin + half, half, c.lo[1]!, wide ? c.hi[1]! : 0);
    c.flags |= X86_EFLAGS_ZF;
  } else {
    writeMem(c, lin, half, lowLo, lowHi);
    writeMem(c, lin + half, half, highLo, highHi);
    writeReg(c, 0, half, lowLo, lowHi);
    writeReg(c, 2, half, highLo, highHi);
    c.flags &= ~X86_EFLAGS_ZF;
  }
}
