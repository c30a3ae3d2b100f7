/**
 * Bit tests and scans: BT, BTS, BTR, BTC (register or immediate offset), BSF, BSR, TZCNT,
 * LZCNT, POPCNT (SDM vol. 2 per instruction).
 *
 * With a memory operand and a register offset, BT* address a bit string: the offset is a
 * signed operand-size value and selects the word at ea + floor(offset / width)·(width/8). An
 * immediate offset, or a register operand, takes the offset modulo the width.
 * BT* write CF only (OF/SF/AF/PF undefined: left unchanged; ZF unchanged). BSF/BSR with a zero
 * source set ZF and leave the destination unchanged (AMD documents this; Intel calls it
 * undefined and does the same); their other flags are undefined and left unchanged.
 */
import { X86_EFLAGS_CF, X86_EFLAGS_ZF } from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { FLAGS_ARITH, materializeFlags } from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { prepareWrite, readMem, writeMem } from '../mmu/access.js';
import { readReg, writeReg } from '../registers.js';
import { checkCanonical, linearAddress } from './address.js';

export const BT_TEST = 0;
export const BT_SET = 1;
export const BT_RESET = 2;
export const BT_COMPLEMENT = 3;

function setCF(c: CpuCore, cf: number): void {
  materializeFlags(c);
  c.flags = (c.flags & ~X86_EFLAGS_CF) | (cf & 1);
}

/** BT/BTS/BTR/BTC; operation in i.sub; offset from the G register (0F A3/AB/B3/BB) or imm8 (0F BA). */
export function bitTest(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const width = size * 8;
  const fromRegister = i.entry.opcode !== 0xba;
  let offLo: number, offHi = 0;
  if (fromRegister) {
    offLo = readReg(c, i.reg, size);
    offHi = c.vhi;
  } else {
    offLo = i.imm;
  }
  const op = i.sub;
  let lin = 0;
  let bit: number;
  if (i.rm === NONE) {
    lin = linearAddress(c, i);
    if (fromRegister) {
      // Signed bit offset at the operand size → signed word displacement.
      let words: number;
      if (size === 8) words = Math.floor((offHi * 4294967296 + (offLo >>> 0)) / 64);
      else if (size === 4) words = Math.floor((offLo | 0) / 32);
      else words = Math.floor(((offLo << 16) >> 16) / 16);
      lin = checkCanonical(c, lin + words * size, i.stackAddress);
    }
    bit = offLo & (width - 1);
    if (op !== BT_TEST) prepareWrite(c, lin, size);
  } else {
    bit = offLo & (width - 1);
  }
  const lo = i.rm === NONE ? readMem(c, lin, size) : readReg(c, i.rm, size);
  let hi = c.vhi;
  const inHigh = bit >= 32;
  const b = bit & 31;
  const word = inHigh ? hi : lo;
  const cf = (word >>> b) & 1;
  setCF(c, cf);
  if (op === BT_TEST) return;
  let w: number;
  if (op === BT_SET) w = word | (1 << b);
  else if (op === BT_RESET) w = word & ~(1 << b);
  else w = word ^ (1 << b);
  let newLo = lo;
  if (inHigh) hi = w;
  else newLo = w;
  if (i.rm === NONE) writeMem(c, lin, size, newLo, hi);
  else writeReg(c, i.rm, size, newLo, hi);
}

/** Index of the lowest set bit of a value of `size` bytes, or -1 when zero. */
function lowestSetBit(lo: number, hi: number, size: number): number {
  if (size < 8) lo &= size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
  if (lo !== 0) return 31 - Math.clz32(lo & -lo);
  if (size === 8 && hi !== 0) return 63 - Math.clz32(hi & -hi);
  return -1;
}

/** Index of the highest set bit, or -1 when zero. */
function highestSetBit(lo: number, hi: number, size: number): number {
  if (size === 8 && hi !== 0) return 63 - Math.clz32(hi);
  if (size < 8) lo &= size === 4 ? -1 : size === 2 ? 0xffff : 0xff;
  return lo !== 0 ? 31 - Math.clz32(lo) : -1;
}

function setZF(c: CpuCore, zf: boolean): void {
  materializeFlags(c);
  c.flags = zf ? c.flags | X86_EFLAGS_ZF : c.flags & ~X86_EFLAGS_ZF;
}

/** BSF (sub 0) / BSR (sub 1) Gv,Ev. */
export function bitScan(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lo = readSource(c, i, size);
  const hi = c.vhi;
  const idx = i.sub === 0 ? lowestSetBit(lo, hi, size) : highestSetBit(lo, hi, size);
  if (idx < 0) {
    setZF(c, true);
    return;
  }
  writeReg(c, i.reg, size, idx, 0);
  setZF(c, false);
}

function readSource(c: CpuCore, i: Insn, size: number): number {
  if (i.rm !== NONE) return readReg(c, i.rm, size);
  return readMem(c, linearAddress(c, i), size);
}

/** TZCNT (sub 0) / LZCNT (sub 1) Gv,Ev: CF = source is zero, ZF = result is zero. */
export function countZeros(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lo = readSource(c, i, size);
  const hi = c.vhi;
  const width = size * 8;
  let n: number;
  if (i.sub === 0) {
    const idx = lowestSetBit(lo, hi, size);
    n = idx < 0 ? width : idx;
  } else {
    const idx = highestSetBit(lo, hi, size);
    n = idx < 0 ? width : width - 1 - idx;
  }
  writeReg(c, i.reg, size, n, 0);
  materializeFlags(c);
  c.flags = (c.flags & ~(X86_EFLAGS_CF | X86_EFLAGS_ZF)) | (n === width ? X86_EFLAGS_CF : 0) | (n === 0 ? X86_EFLAGS_ZF : 0);
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** POPCNT Gv,Ev: ZF = source is zero; OF, SF, AF, CF, PF cleared. */
export function popcnt(c: CpuCore, i: Insn): void {
  const size = i.osize;
  let lo = readSource(c, i, size);
  const hi = size === 8 ? c.vhi : 0;
  if (size === 2) lo &= 0xffff;
  const n = popcount32(lo) + popcount32(hi);
  writeReg(c, i.reg, size, n, 0);
  materializeFlags(c);
  c.flags = (c.flags & ~FLAGS_ARITH) | (n === 0 ? X86_EFLAGS_ZF : 0);
}
