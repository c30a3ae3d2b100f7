/**
 * String instructions MOVS, STOS, LODS, CMPS, SCAS, with REP / REPE / REPNE (SDM vol. 2
 * per instruction, and "REP/REPE/REPZ/REPNE/REPNZ"). The source is [rSI] (FS/GS overrides
 * apply), the destination [rDI]; both advance by the element size, backwards with RFLAGS.DF.
 * With a 67 prefix the registers are ESI/EDI/ECX (written as 32-bit registers).
 *
 * A repeated instruction runs iteration by iteration, each counting as one retired instruction
 * against run()'s budget: when the budget runs out mid-way, RIP stays on the instruction with
 * the registers describing the iterations done, exactly as when an interrupt is taken between
 * iterations; a fault likewise leaves the completed iterations in place.
 */
import { X86_EFLAGS_DF } from '../../../protocol/abi.js';
import { SEG_FS, type CpuCore } from '../core.js';
import { raiseGP } from '../fault.js';
import { testCondition } from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { readMem, writeMem } from '../mmu/access.js';
import { readReg, writeReg } from '../registers.js';
import { alu32, alu64, ALU_CMP } from './alu.js';

const TWO32 = 4294967296;
const CANONICAL_LIMIT = 140737488355328;

/** A pointer register (RSI/RDI) as a linear address, plus the segment base for the source. */
function pointer(c: CpuCore, i: Insn, r: number, useOverride: boolean): number {
  let lo = c.lo[r]! >>> 0;
  let hi = i.asize === 4 ? 0 : c.hi[r]!;
  if (useOverride && i.seg !== NONE) {
    lo += i.seg === SEG_FS ? c.fsBaseLo >>> 0 : c.gsBaseLo >>> 0;
    hi += i.seg === SEG_FS ? c.fsBaseHi : c.gsBaseHi;
    const carry = lo >= TWO32 ? 1 : 0;
    lo -= carry * TWO32;
    hi = (hi + carry) | 0;
  }
  const v = hi * TWO32 + lo;
  if (v >= CANONICAL_LIMIT || v < -CANONICAL_LIMIT) raiseGP(c, 0);
  return v;
}

function advance(c: CpuCore, i: Insn, r: number, delta: number): void {
  if (i.asize === 4) {
    c.lo[r] = (c.lo[r]! + delta) | 0;
    c.hi[r] = 0;
  } else {
    const l = (c.lo[r]! >>> 0) + delta;
    c.lo[r] = l | 0;
    c.hi[r] = (c.hi[r]! + Math.floor(l / TWO32)) | 0;
  }
}

function counterIsZero(c: CpuCore, i: Insn): boolean {
  return i.asize === 4 ? c.lo[1] === 0 : (c.lo[1]! | c.hi[1]!) === 0;
}

function decrementCounter(c: CpuCore, i: Insn): void {
  advance(c, i, 1, -1);
}

/** One iteration of the string operation in i.sub; returns nothing, updates rSI/rDI. */
function iterate(c: CpuCore, i: Insn, op: number, size: number, step: number): void {
  switch (op) {
    case STR_MOVS: {
      const v = readMem(c, pointer(c, i, 6, true), size);
      writeMem(c, pointer(c, i, 7, false), size, v, c.vhi);
      advance(c, i, 6, step);
      advance(c, i, 7, step);
      break;
    }
    case STR_STOS: {
      const v = readReg(c, 0, size);
      writeMem(c, pointer(c, i, 7, false), size, v, c.vhi);
      advance(c, i, 7, step);
      break;
    }
    case STR_LODS: {
      const v = readMem(c, pointer(c, i, 6, true), size);
      writeReg(c, 0, size, v, c.vhi);
      advance(c, i, 6, step);
      break;
    }
    case STR_CMPS: {
      const a = readMem(c, pointer(c, i, 6, true), size);
      const aHi = c.vhi;
      const b = readMem(c, pointer(c, i, 7, false), size);
      if (size === 8) alu64(c, ALU_CMP, a, aHi, b, c.vhi);
      else alu32(c, ALU_CMP, size, a, b);
      advance(c, i, 6, step);
      advance(c, i, 7, step);
      break;
    }
    default: { // SCAS
      const b = readMem(c, pointer(c, i, 7, false), size);
      const bHi = c.vhi;
      const a = readReg(c, 0, size);
      if (size === 8) alu64(c, ALU_CMP, a, c.vhi, b, bHi);
      else alu32(c, ALU_CMP, size, a, b);
      advance(c, i, 7, step);
      break;
    }
  }
}

export const STR_MOVS = 0;
export const STR_STOS = 1;
export const STR_LODS = 2;
export const STR_CMPS = 3;
export const STR_SCAS = 4;

/**
 * The string handler. Without a REP prefix: one iteration (retired normally by the block loop).
 * With one: this handler retires its own iterations (c.retired) and sets RIP itself.
 */
export function stringOp(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const op = i.sub;
  const step = (c.flags & X86_EFLAGS_DF) !== 0 ? -size : size;
  if (i.rep === 0) {
    iterate(c, i, op, size, step);
    c.rip += i.len;
    return;
  }
  const conditional = op === STR_CMPS || op === STR_SCAS;
  const budget = c.retireLimit - c.retired;
  if (counterIsZero(c, i)) {
    c.retired++;
    c.rip += i.len;
    return;
  }
  let done = 0;
  try {
    while (done < budget) {
      iterate(c, i, op, size, step);
      decrementCounter(c, i);
      done++;
      if (counterIsZero(c, i)) {
        c.rip += i.len;
        return;
      }
      // REPE (F3) continues while ZF=1, REPNE (F2) while ZF=0.
      if (conditional && testCondition(c, i.rep === 0xf3 ? 5 : 4)) {
        c.rip += i.len;
        return;
      }
    }
  } finally {
    c.retired += done;
  }
}
