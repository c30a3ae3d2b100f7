/**
 * Guest-physical accesses made by the core itself (page walks, split accesses, slow paths).
 *
 * Model decision — addresses outside guest memory: the core treats them as an unbacked bus, as a
 * PC chipset does for addresses no device decodes: reads return all ones, writes are dropped,
 * and no fault is raised. A page-table entry read from outside memory is therefore all ones:
 * present, with reserved bits set, so the walk ends in a #PF with RSVD.
 */
import type { CpuCore } from '../core.js';
import { PAGE_MASK, PAGE_SHIFT } from '../memory.js';

export function physRead8(c: CpuCore, pa: number): number {
  const m = c.memory;
  if (pa >= m.size) return 0xff;
  return m.frameForRead(pa >>> PAGE_SHIFT)[pa & PAGE_MASK]!;
}

/** An aligned 32-bit read (page-table entries, descriptor words); int32. */
export function physRead32(c: CpuCore, pa: number): number {
  const m = c.memory;
  if (pa + 4 > m.size) return -1;
  const f = m.frameForRead(pa >>> PAGE_SHIFT);
  const o = pa & PAGE_MASK;
  return f[o]! | (f[o + 1]! << 8) | (f[o + 2]! << 16) | (f[o + 3]! << 24);
}

export function physWrite8(c: CpuCore, pa: number, v: number): void {
  const m = c.memory;
  if (pa >= m.size) return;
  const frame = pa >>> PAGE_SHIFT;
  m.frameForWrite(frame)[pa & PAGE_MASK] = v;
  m.noteWrite(frame);
}

/** An aligned 32-bit write (accessed/dirty bits, busy TSS type). */
export function physWrite32(c: CpuCore, pa: number, v: number): void {
  const m = c.memory;
  if (pa + 4 > m.size) return;
  const frame = pa >>> PAGE_SHIFT;
  const f = m.frameForWrite(frame);
  const o = pa & PAGE_MASK;
  f[o] = v;
  f[o + 1] = v >>> 8;
  f[o + 2] = v >>> 16;
  f[o + 3] = v >>> 24;
  m.noteWrite(frame);
}

/**
 * Reads `size` bytes (1, 2, 4, 8) that lie within one frame at `pa`. Returns the low 32 bits
 * (zero-extended for sizes 1 and 2, int32 otherwise); for size 8 the high half goes to `c.vhi`.
 */
export function physReadSized(c: CpuCore, pa: number, size: number): number {
  const m = c.memory;
  if (pa + size > m.size) {
    c.vhi = -1;
    return size === 1 ? 0xff : size === 2 ? 0xffff : -1;
  }
  const f = m.frameForRead(pa >>> PAGE_SHIFT);
  const o = pa & PAGE_MASK;
  switch (size) {
    case 1: return f[o]!;
    case 2: return f[o]! | (f[o + 1]! << 8);
    case 4: return f[o]! | (f[o + 1]! << 8) | (f[o + 2]! << 16) | (f[o + 3]! << 24);
    default:
      c.vhi = f[o + 4]! | (f[o + 5]! << 8) | (f[o + 6]! << 16) | (f[o + 7]! << 24);
      return f[o]! | (f[o + 1]! << 8) | (f[o + 2]! << 16) | (f[o + 3]! << 24);
  }
}

/** Writes `size` bytes (1, 2, 4, 8) within one frame; `hi` is used for size 8. */
export function physWriteSized(c: CpuCore, pa: number, size: number, lo: number, hi: number): void {
  const m = c.memory;
  if (pa + size > m.size) return;
  const frame = pa >>> PAGE_SHIFT;
  const f = m.frameForWrite(frame);
  const o = pa & PAGE_MASK;
  f[o] = lo;
  if (size >= 2) f[o + 1] = lo >>> 8;
  if (size >= 4) {
    f[o + 2] = lo >>> 16;
    f[o + 3] = lo >>> 24;
  }
  if (size === 8) {
    f[o + 4] = hi;
    f[o + 5] = hi >>> 8;
    f[o + 6] = hi >>> 16;
    f[o + 7] = hi >>> 24;
  }
  m.noteWrite(frame);
}
