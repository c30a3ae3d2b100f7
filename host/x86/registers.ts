/**
 * GPR access by operand size. Byte registers are numbered 0..15 (AL, CL, ..., SPL..DIL, R8B..R15B
 * — SPL..DIL only exist with a REX prefix) and 16..19 for AH, CH, DH, BH (bits 15:8 of RAX..RBX),
 * which the decoder picks for encodings 4..7 without REX (SDM vol. 2 §2.2.1.2).
 *
 * Writes follow the 64-bit mode rules (SDM vol. 1 §3.4.1.1): 32-bit results zero-extend into
 * bits 63:32; 8- and 16-bit results leave the other bits alone.
 *
 * Values of up to 32 bits travel as numbers: 8/16-bit values zero-extended, 32-bit values as
 * int32. A 64-bit value is its low half (int32) with the high half in `c.vhi`.
 */
import type { CpuCore } from './core.js';

/** First byte-register number that names bits 15:8 (AH). */
export const BYTE_HIGH = 16;

export function readReg8(c: CpuCore, r: number): number {
  return r >= BYTE_HIGH ? (c.lo[r - BYTE_HIGH]! >>> 8) & 0xff : c.lo[r]! & 0xff;
}

export function writeReg8(c: CpuCore, r: number, v: number): void {
  if (r >= BYTE_HIGH) {
    const q = r - BYTE_HIGH;
    c.lo[q] = (c.lo[q]! & ~0xff00) | ((v & 0xff) << 8);
  } else {
    c.lo[r] = (c.lo[r]! & ~0xff) | (v & 0xff);
  }
}

export function writeReg16(c: CpuCore, r: number, v: number): void {
  c.lo[r] = (c.lo[r]! & ~0xffff) | (v & 0xffff);
}

export function writeReg32(c: CpuCore, r: number, v: number): void {
  c.lo[r] = v;
  c.hi[r] = 0;
}

export function writeReg64(c: CpuCore, r: number, lo: number, hi: number): void {
  c.lo[r] = lo;
  c.hi[r] = hi;
}

/** Reads a register at an operand size; for size 8 the high half goes to `c.vhi`. */
export function readReg(c: CpuCore, r: number, size: number): number {
  switch (size) {
    case 1: return readReg8(c, r);
    case 2: return c.lo[r]! & 0xffff;
    case 4: return c.lo[r]!;
    default:
      c.vhi = c.hi[r]!;
      return c.lo[r]!;
  }
}

/** Writes a register at an operand size (`hi` is used for size 8 only). */
export function writeReg(c: CpuCore, r: number, size: number, lo: number, hi: number): void {
  switch (size) {
    case 1: writeReg8(c, r, lo); break;
    case 2: writeReg16(c, r, lo); break;
    case 4: c.lo[r] = lo; c.hi[r] = 0; break;
    default: c.lo[r] = lo; c.hi[r] = hi; break;
  }
}

/** A 64-bit register as a linear-address-sized number (exact when it is canonical). */
export function regAsNumber(c: CpuCore, r: number): number {
  return c.hi[r]! * 4294967296 + (c.lo[r]! >>> 0);
}

/** Splits a number holding a signed 64-bit-range integer into halves (low half returned, high in c.vhi). */
export function splitNumber(c: CpuCore, v: number): number {
  const hi = Math.floor(v / 4294967296);
  c.vhi = hi | 0;
  return (v - hi * 4294967296) | 0;
}

export function toBigInt(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
