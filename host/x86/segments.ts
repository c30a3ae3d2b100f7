/**
 * Segment-register loads into the core's caches, keeping the FS/GS base halves used by address
 * arithmetic in step with the segment caches (in 64-bit mode only FS and GS bases apply).
 */
import { SEG_FS, SEG_GS, type CpuCore } from './core.js';
import type { Segment } from './state.js';

function halves(base: bigint): [number, number] {
  const v = BigInt.asUintN(64, base);
  return [Number(v & 0xffffffffn) | 0, Number(v >> 32n) | 0];
}

export function loadSegment(c: CpuCore, n: number, s: Segment): void {
  c.seg[n] = s;
  if (n === SEG_FS) [c.fsBaseLo, c.fsBaseHi] = halves(s.base);
  else if (n === SEG_GS) [c.gsBaseLo, c.gsBaseHi] = halves(s.base);
}

/** Changes only the base of FS or GS (WRMSR FS_BASE/GS_BASE, SWAPGS). */
export function setSegmentBase(c: CpuCore, n: typeof SEG_FS | typeof SEG_GS, base: bigint): void {
  loadSegment(c, n, { ...c.seg[n]!, base: BigInt.asUintN(64, base) });
}
