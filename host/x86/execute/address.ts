/**
 * Effective and linear addresses in 64-bit mode (SDM vol. 1 §3.7.5, vol. 3A §3.3.7): base +
 * index·scale + displacement, modulo 2^64 (or 2^32 with a 67 prefix, zero-extended); segment
 * bases apply only for FS and GS; the result must be canonical, else #GP(0), or #SS(0) for an
 * access through SS (an RSP/RBP base with no override).
 *
 * Linear addresses are returned as numbers holding the signed 48-bit value.
 */
import type { CpuCore } from '../core.js';
import { SEG_FS } from '../core.js';
import { raiseGP, raiseSS } from '../fault.js';
import {
  AMODE_ABS, AMODE_BASE_DISP, AMODE_BASE_INDEX, AMODE_RIP, BASE_RIP, NONE, type Insn,
} from '../decode/insn.js';

const TWO32 = 4294967296;
const CANONICAL_LIMIT = 140737488355328; // 2^47

function nonCanonical(c: CpuCore, i: Insn): never {
  if (i.stackAddress) raiseSS(c, 0);
  raiseGP(c, 0);
}

/** The linear address of the instruction's memory operand. */
export function linearAddress(c: CpuCore, i: Insn): number {
  let v: number;
  switch (i.amode) {
    case AMODE_BASE_DISP:
      // Exact whenever the result is canonical (a non-canonical base stays non-canonical after
      // adding a 32-bit displacement, wrapped or not).
      v = c.hi[i.base]! * TWO32 + (c.lo[i.base]! >>> 0) + i.disp;
      break;
    case AMODE_RIP:
      v = c.rip + i.len + i.disp;
      break;
    case AMODE_ABS:
      return i.disp;
    case AMODE_BASE_INDEX:
      return generalAddress(c, i);
    default:
      return generalAddress(c, i);
  }
  if (v >= CANONICAL_LIMIT || v < -CANONICAL_LIMIT) nonCanonical(c, i);
  return v;
}

/**
 * base + index·scale + displacement in exact halves, truncated to 32 bits with a 67 prefix: the
 * low half is returned as a number in [0, 2^32), the high half left in c.vhi (int32).
 */
function addressSum(c: CpuCore, i: Insn): number {
  let lo = i.disp >>> 0;
  let hi = i.dispHi;
  if (i.base === BASE_RIP) {
    const next = c.rip + i.len;
    const nh = Math.floor(next / TWO32);
    lo += next - nh * TWO32;
    hi += nh;
  } else if (i.base !== NONE) {
    lo += c.lo[i.base]! >>> 0;
    hi += c.hi[i.base]!;
  }
  if (i.index !== NONE) {
    const m = 1 << i.scale;
    lo += (c.lo[i.index]! >>> 0) * m;
    hi += c.hi[i.index]! * m;
  }
  const carry = Math.floor(lo / TWO32);
  c.vhi = i.asize === 4 ? 0 : (hi + carry) | 0;
  return lo - carry * TWO32;
}

/** Exact 64-bit arithmetic in halves: any index, FS/GS bases, 32-bit address size, moffs. */
function generalAddress(c: CpuCore, i: Insn): number {
  const lo = addressSum(c, i);
  return segmentedAddress(c, i, lo, c.vhi);
}

/**
 * The linear address of an effective address given in halves (low in [0, 2^32), high int32):
 * the FS or GS base added when the instruction names one, then the canonical check.
 */
export function segmentedAddress(c: CpuCore, i: Insn, lo: number, hi: number): number {
  if (i.seg !== NONE) {
    if (i.seg === SEG_FS) {
      lo += c.fsBaseLo >>> 0;
      hi += c.fsBaseHi;
    } else {
      lo += c.gsBaseLo >>> 0;
      hi += c.gsBaseHi;
    }
    if (lo >= TWO32) {
      lo -= TWO32;
      hi++;
    }
    hi |= 0;
  }
  if (hi !== (hi << 16) >> 16) nonCanonical(c, i);
  return hi * TWO32 + lo;
}

/** The effective address (no segment base), as LEA computes it: low half returned (int32), high in c.vhi. */
export function effectiveAddressHalves(c: CpuCore, i: Insn): number {
  return addressSum(c, i) | 0;
}

/** Canonical check for an address computed elsewhere (string operands, stack). */
export function checkCanonical(c: CpuCore, lin: number, stack: boolean): number {
  if (lin >= CANONICAL_LIMIT || lin < -CANONICAL_LIMIT) {
    if (stack) raiseSS(c, 0);
    raiseGP(c, 0);
  }
  return lin;
}

/** A 64-bit register's value as a linear address, with the canonical check. */
export function registerAddress(c: CpuCore, r: number, stack: boolean): number {
  const h = c.hi[r]!;
  if (h !== (h << 16) >> 16) {
    if (stack) raiseSS(c, 0);
    raiseGP(c, 0);
  }
  return h * TWO32 + (c.lo[r]! >>> 0);
}
