/**
 * Lazy RFLAGS (as v86 and Bochs do): an arithmetic instruction records its operation, operand
 * size, operands and result; OF/SF/ZF/AF/PF/CF are derived only when something reads them.
 *
 * For operand sizes 1, 2 and 4 the recorded values are shifted left by 32 - 8*size, so that
 * the operation's sign bit is bit 31 of an int32. Addition, subtraction and bitwise logic
 * commute with that shift (carries out of bit 31 are dropped exactly as carries out of the
 * operand size are), so one code path derives the flags of every size up to 32 bits, and the
 * signed/unsigned comparisons behind Jcc work on the shifted values directly. Size 8 keeps the
 * two halves of each value.
 */
import {
  X86_EFLAGS_AF, X86_EFLAGS_CF, X86_EFLAGS_OF, X86_EFLAGS_PF, X86_EFLAGS_SF, X86_EFLAGS_ZF,
} from '../../protocol/abi.js';
import type { CpuCore } from './core.js';

/** Flags are in `flags` (no lazy operation pending). */
export const CC_NONE = 0;
export const CC_ADD = 1;
/** ADD with carry-in `ccAux`. */
export const CC_ADC = 2;
export const CC_SUB = 3;
/** SUB with borrow-in `ccAux`. */
export const CC_SBB = 4;
/** ADD of 1 keeping CF (`ccAux` holds it). */
export const CC_INC = 5;
/** SUB of 1 keeping CF (`ccAux`). */
export const CC_DEC = 6;
/** SF/ZF/PF from the result; CF, AF and OF given explicitly in `ccAux` (logic, shifts, MUL...). */
export const CC_RES = 7;

export const FLAGS_ARITH = X86_EFLAGS_OF | X86_EFLAGS_SF | X86_EFLAGS_ZF | X86_EFLAGS_AF | X86_EFLAGS_PF | X86_EFLAGS_CF;

/** PARITY[b] = PF for a result whose low byte is b (1 when the number of set bits is even). */
export const PARITY = new Uint8Array(256);
for (let b = 0; b < 256; b++) {
  let n = 0;
  for (let v = b; v; v >>= 1) n += v & 1;
  PARITY[b] = n % 2 === 0 ? 1 : 0;
}

/** Left shift that normalises a value of `size` bytes (1, 2, 4) so its sign is bit 31. */
export function sizeShift(size: number): number {
  return 32 - 8 * size;
}

// ---------------------------------------------------------------------------------------------
// Recording (sizes 1, 2, 4: operands already shifted by sizeShift(size))
// ---------------------------------------------------------------------------------------------

export function setFlagsOp(c: CpuCore, op: number, size: number, dst: number, src: number, res: number, aux: number): void {
  c.ccOp = op;
  c.ccSize = size;
  c.ccDst = dst;
  c.ccSrc = src;
  c.ccRes = res;
  c.ccAux = aux;
}

export function setFlagsOp64(
  c: CpuCore, op: number, dLo: number, dHi: number, sLo: number, sHi: number, rLo: number, rHi: number, aux: number,
): void {
  c.ccOp = op;
  c.ccSize = 8;
  c.ccDst = dLo;
  c.ccDstHi = dHi;
  c.ccSrc = sLo;
  c.ccSrcHi = sHi;
  c.ccRes = rLo;
  c.ccResHi = rHi;
  c.ccAux = aux;
}

/** SF/ZF/PF from a (shifted) result, CF|AF|OF as given (EFLAGS bit positions). */
export function setFlagsResult(c: CpuCore, size: number, res: number, cfAfOf: number): void {
  c.ccOp = CC_RES;
  c.ccSize = size;
  c.ccRes = res;
  c.ccAux = cfAfOf;
}

export function setFlagsResult64(c: CpuCore, rLo: number, rHi: number, cfAfOf: number): void {
  c.ccOp = CC_RES;
  c.ccSize = 8;
  c.ccRes = rLo;
  c.ccResHi = rHi;
  c.ccAux = cfAfOf;
}

// ---------------------------------------------------------------------------------------------
// Deriving
// ---------------------------------------------------------------------------------------------

function lowByte(c: CpuCore): number {
  return c.ccSize === 8 ? c.ccRes & 0xff : (c.ccRes >>> sizeShift(c.ccSize)) & 0xff;
}

export function getCF(c: CpuCore): number {
  const op = c.ccOp;
  if (op === CC_NONE) return c.flags & X86_EFLAGS_CF;
  if (op === CC_RES || op === CC_INC || op === CC_DEC) return c.ccAux & X86_EFLAGS_CF;
  if (c.ccSize !== 8) {
    const d = c.ccDst >>> 0;
    switch (op) {
      case CC_ADD: return (c.ccRes >>> 0) < d ? 1 : 0;
      case CC_ADC: return c.ccAux ? ((c.ccRes >>> 0) <= d ? 1 : 0) : ((c.ccRes >>> 0) < d ? 1 : 0);
      case CC_SUB: return d < (c.ccSrc >>> 0) ? 1 : 0;
      default: return c.ccAux ? (d <= (c.ccSrc >>> 0) ? 1 : 0) : (d < (c.ccSrc >>> 0) ? 1 : 0); // SBB
    }
  }
  const dh = c.ccDstHi >>> 0, dl = c.ccDst >>> 0;
  switch (op) {
    case CC_ADD:
    case CC_ADC: {
      const rh = c.ccResHi >>> 0, rl = c.ccRes >>> 0;
      if (rh !== dh) return rh < dh ? 1 : 0;
      return (op === CC_ADC && c.ccAux ? rl <= dl : rl < dl) ? 1 : 0;
    }
    default: { // SUB, SBB
      const sh = c.ccSrcHi >>> 0, sl = c.ccSrc >>> 0;
      if (dh !== sh) return dh < sh ? 1 : 0;
      return (op === CC_SBB && c.ccAux ? dl <= sl : dl < sl) ? 1 : 0;
    }
  }
}

export function getZF(c: CpuCore): boolean {
  if (c.ccOp === CC_NONE) return (c.flags & X86_EFLAGS_ZF) !== 0;
  return c.ccSize === 8 ? (c.ccRes | c.ccResHi) === 0 : c.ccRes === 0;
}

export function getSF(c: CpuCore): boolean {
  if (c.ccOp === CC_NONE) return (c.flags & X86_EFLAGS_SF) !== 0;
  return (c.ccSize === 8 ? c.ccResHi : c.ccRes) < 0;
}

export function getOF(c: CpuCore): boolean {
  const op = c.ccOp;
  if (op === CC_NONE) return (c.flags & X86_EFLAGS_OF) !== 0;
  if (op === CC_RES) return (c.ccAux & X86_EFLAGS_OF) !== 0;
  const w = c.ccSize === 8;
  const d = w ? c.ccDstHi : c.ccDst, s = w ? c.ccSrcHi : c.ccSrc, r = w ? c.ccResHi : c.ccRes;
  if (op === CC_ADD || op === CC_ADC || op === CC_INC) return ((d ^ r) & (s ^ r)) < 0;
  return ((d ^ s) & (d ^ r)) < 0;
}

export function getPF(c: CpuCore): boolean {
  if (c.ccOp === CC_NONE) return (c.flags & X86_EFLAGS_PF) !== 0;
  return PARITY[lowByte(c)] === 1;
}

export function getAF(c: CpuCore): boolean {
  const op = c.ccOp;
  if (op === CC_NONE) return (c.flags & X86_EFLAGS_AF) !== 0;
  if (op === CC_RES) return (c.ccAux & X86_EFLAGS_AF) !== 0;
  const x = c.ccDst ^ c.ccSrc ^ c.ccRes;
  return ((c.ccSize === 8 ? x : x >>> sizeShift(c.ccSize)) & 0x10) !== 0;
}

/** The six arithmetic flags in their RFLAGS positions. */
export function arithFlags(c: CpuCore): number {
  if (c.ccOp === CC_NONE) return c.flags & FLAGS_ARITH;
  return (getCF(c) ? X86_EFLAGS_CF : 0) |
    (getPF(c) ? X86_EFLAGS_PF : 0) |
    (getAF(c) ? X86_EFLAGS_AF : 0) |
    (getZF(c) ? X86_EFLAGS_ZF : 0) |
    (getSF(c) ? X86_EFLAGS_SF : 0) |
    (getOF(c) ? X86_EFLAGS_OF : 0);
}

/** RFLAGS (bits 31:0; 63:32 are reserved and zero). */
export function readFlags(c: CpuCore): number {
  if (c.ccOp === CC_NONE) return c.flags;
  return ((c.flags & ~FLAGS_ARITH) | arithFlags(c)) >>> 0;
}

/** Folds the lazy state into `flags` (before an instruction edits individual flags). */
export function materializeFlags(c: CpuCore): void {
  if (c.ccOp !== CC_NONE) {
    c.flags = readFlags(c);
    c.ccOp = CC_NONE;
  }
}

/** Replaces the six arithmetic flags. */
export function writeArithFlags(c: CpuCore, bits: number): void {
  materializeFlags(c);
  c.flags = ((c.flags & ~FLAGS_ARITH) | (bits & FLAGS_ARITH)) >>> 0;
}

/**
 * Condition codes 0..15 in encoding order (O, NO, B, AE, E, NE, BE, A, S, NS, P, NP, L, GE,
 * LE, G; SDM vol. 1 appendix B). After CMP/SUB of up to 32 bits the predicates are plain
 * comparisons of the recorded operands.
 */
export function testCondition(c: CpuCore, cc: number): boolean {
  if (c.ccOp === CC_SUB && c.ccSize !== 8) {
    const d = c.ccDst, s = c.ccSrc;
    switch (cc) {
      case 2: return (d >>> 0) < (s >>> 0);
      case 3: return (d >>> 0) >= (s >>> 0);
      case 4: return d === s;
      case 5: return d !== s;
      case 6: return (d >>> 0) <= (s >>> 0);
      case 7: return (d >>> 0) > (s >>> 0);
      case 12: return d < s;
      case 13: return d >= s;
      case 14: return d <= s;
      case 15: return d > s;
    }
  }
  let r: boolean;
  switch (cc >> 1) {
    case 0: r = getOF(c); break;
    case 1: r = getCF(c) !== 0; break;
    case 2: r = getZF(c); break;
    case 3: r = getCF(c) !== 0 || getZF(c); break;
    case 4: r = getSF(c); break;
    case 5: r = getPF(c); break;
    case 6: r = getSF(c) !== getOF(c); break;
    default: r = getZF(c) || getSF(c) !== getOF(c); break;
  }
  return (cc & 1) !== 0 ? !r : r;
}
