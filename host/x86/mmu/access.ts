/**
 * Linear-memory access for instructions: a TLB hit is a tag compare and a DataView access on the
 * frame; everything else (miss, page-crossing access, unbacked memory, stores into code) takes
 * the slow path, which walks, raises #PF with CR2's value, fills the TLB and reports stores
 * into frames holding decoded code.
 *
 * Addresses are canonical linear addresses (numbers); the callers did the canonical check. An
 * access that runs past the canonical boundary raises #GP(0) (as does any non-canonical access).
 * 64-bit values: low half returned, high half in c.vhi.
 */
import { ITLB_MASK, TLB_MASK, type CpuCore } from '../core.js';
import { raiseGP, raisePF } from '../fault.js';
import { physRead8, physReadSized, physWrite8, physWriteSized } from './physical.js';
import { fillTlb } from './tlb.js';
import { ACC_FETCH, ACC_READ, ACC_WRITE, walk, type Access } from './walk.js';

const CANONICAL_LIMIT = 140737488355328; // 2^47

/** Translates for an instruction's own access (CPL-based), faulting with #PF; fills the TLB. */
export function translate(c: CpuCore, lin: number, access: Access): number {
  const pa = walk(c, lin, access, c.cpl === 3, false, true);
  if (pa < 0) raisePF(c, -pa - 1, lin);
  fillTlb(c, lin, pa, access);
  return pa;
}

/** The linear address of the first byte of the next page, which must be canonical. */
function nextPage(c: CpuCore, lin: number): number {
  const next = lin - (lin & 0xfff) + 4096;
  if (next >= CANONICAL_LIMIT) raiseGP(c, 0);
  return next;
}

export function readSlow(c: CpuCore, lin: number, size: number): number {
  const off = lin & 0xfff;
  if (off + size <= 4096) return physReadSized(c, translate(c, lin, ACC_READ), size);
  // Split across two pages: translate both before reading anything.
  const second = nextPage(c, lin);
  const pa1 = translate(c, lin, ACC_READ);
  return readSplit(c, pa1, translate(c, second, ACC_READ), 4096 - off, size);
}

/** Reads `size` bytes of which the first `first` are at pa1 and the rest at pa2. */
function readSplit(c: CpuCore, pa1: number, pa2: number, first: number, size: number): number {
  let lo = 0, hi = 0;
  for (let k = 0; k < size; k++) {
    const b = k < first ? physRead8(c, pa1 + k) : physRead8(c, pa2 + k - first);
    if (k < 4) lo |= b << (8 * k);
    else hi |= b << (8 * (k - 4));
  }
  c.vhi = hi;
  return size === 4 || size === 8 ? lo | 0 : lo;
}

export function writeSlow(c: CpuCore, lin: number, size: number, lo: number, hi: number): void {
  const off = lin & 0xfff;
  if (off + size <= 4096) {
    physWriteSized(c, translate(c, lin, ACC_WRITE), size, lo, hi);
    return;
  }
  const second = nextPage(c, lin);
  const pa1 = translate(c, lin, ACC_WRITE);
  const pa2 = translate(c, second, ACC_WRITE);
  const first = 4096 - off;
  for (let k = 0; k < size; k++) {
    const b = (k < 4 ? lo >>> (8 * k) : hi >>> (8 * (k - 4))) & 0xff;
    if (k < first) physWrite8(c, pa1 + k, b);
    else physWrite8(c, pa2 + k - first, b);
  }
}

/**
 * Checks that `size` bytes at `lin` may be written (walking and setting D as a write would)
 * without writing: the first half of a read-modify-write, so that its read faults as a write
 * (W=1 in the error code, as on hardware) and nothing is changed if the store could not happen.
 */
export function prepareWrite(c: CpuCore, lin: number, size: number): void {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagW[idx] === lin - off && off <= 4096 - size) return;
  translate(c, lin, ACC_WRITE);
  if (off + size > 4096) translate(c, nextPage(c, lin), ACC_WRITE);
}

export function read8(c: CpuCore, lin: number): number {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagR[idx] === lin - off) return c.tlbView[idx]!.getUint8(off);
  return readSlow(c, lin, 1);
}

export function read16(c: CpuCore, lin: number): number {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagR[idx] === lin - off && off <= 4094) return c.tlbView[idx]!.getUint16(off, true);
  return readSlow(c, lin, 2);
}

export function read32(c: CpuCore, lin: number): number {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagR[idx] === lin - off && off <= 4092) return c.tlbView[idx]!.getInt32(off, true);
  return readSlow(c, lin, 4);
}

/** Low half returned; high half in c.vhi. */
export function read64(c: CpuCore, lin: number): number {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagR[idx] === lin - off && off <= 4088) {
    const v = c.tlbView[idx]!;
    c.vhi = v.getInt32(off + 4, true);
    return v.getInt32(off, true);
  }
  return readSlow(c, lin, 8);
}

export function write8(c: CpuCore, lin: number, v: number): void {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagW[idx] === lin - off) c.tlbView[idx]!.setUint8(off, v);
  else writeSlow(c, lin, 1, v, 0);
}

export function write16(c: CpuCore, lin: number, v: number): void {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagW[idx] === lin - off && off <= 4094) c.tlbView[idx]!.setUint16(off, v, true);
  else writeSlow(c, lin, 2, v, 0);
}

export function write32(c: CpuCore, lin: number, v: number): void {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagW[idx] === lin - off && off <= 4092) c.tlbView[idx]!.setInt32(off, v, true);
  else writeSlow(c, lin, 4, v, 0);
}

export function write64(c: CpuCore, lin: number, lo: number, hi: number): void {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbTagW[idx] === lin - off && off <= 4088) {
    const v = c.tlbView[idx]!;
    v.setInt32(off, lo, true);
    v.setInt32(off + 4, hi, true);
  } else {
    writeSlow(c, lin, 8, lo, hi);
  }
}

/** Reads an operand of `size` bytes (see registers.ts for the value conventions). */
export function readMem(c: CpuCore, lin: number, size: number): number {
  switch (size) {
    case 1: return read8(c, lin);
    case 2: return read16(c, lin);
    case 4: return read32(c, lin);
    default: return read64(c, lin);
  }
}

export function writeMem(c: CpuCore, lin: number, size: number, lo: number, hi: number): void {
  switch (size) {
    case 1: write8(c, lin, lo); break;
    case 2: write16(c, lin, lo); break;
    case 4: write32(c, lin, lo); break;
    default: write64(c, lin, lo, hi); break;
  }
}

/** Physical address of an instruction byte at `lin` (fetch permission at the current CPL). */
export function translateFetch(c: CpuCore, lin: number): number {
  const off = lin & 0xfff;
  const idx = (lin >>> 12) & ITLB_MASK;
  if (c.itlbTag[idx] === lin - off) return c.itlbFrame[idx]! * 4096 + off;
  return translate(c, lin, ACC_FETCH);
}

// -----------------------------------------------------------------------------------------------
// Implicit supervisor-mode accesses (SDM vol. 3A §4.6): descriptor tables, the TSS and the stack
// pushes of event delivery. Supervisor rights regardless of CPL, SMAP regardless of RFLAGS.AC,
// U/S=0 in the error code. They bypass the TLB (they are rare) but set accessed/dirty bits.
// -----------------------------------------------------------------------------------------------

function translateImplicit(c: CpuCore, lin: number, access: Access): number {
  if (lin >= CANONICAL_LIMIT || lin < -CANONICAL_LIMIT) raiseGP(c, 0);
  const pa = walk(c, lin, access, false, true, true);
  if (pa < 0) raisePF(c, -pa - 1, lin);
  return pa;
}

function implicitRead(c: CpuCore, lin: number, size: number): number {
  const off = lin & 0xfff;
  if (off + size <= 4096) return physReadSized(c, translateImplicit(c, lin, ACC_READ), size);
  const pa1 = translateImplicit(c, lin, ACC_READ);
  return readSplit(c, pa1, translateImplicit(c, lin - off + 4096, ACC_READ), 4096 - off, size);
}

export function readImplicit16(c: CpuCore, lin: number): number {
  return implicitRead(c, lin, 2) & 0xffff;
}

export function readImplicit32(c: CpuCore, lin: number): number {
  return implicitRead(c, lin, 4) | 0;
}

/** Low half returned; high half in c.vhi. */
export function readImplicit64(c: CpuCore, lin: number): number {
  return implicitRead(c, lin, 8) | 0;
}

/** Checks that 8 bytes at `lin` could be written implicitly (before any delivery push happens). */
export function prepareImplicitWrite(c: CpuCore, lin: number): number {
  return translateImplicit(c, lin, ACC_WRITE);
}

/** An aligned 8-byte implicit write at a physical address obtained from prepareImplicitWrite. */
export function writePhysical64(c: CpuCore, pa: number, lo: number, hi: number): void {
  physWriteSized(c, pa, 8, lo, hi);
}

/** A 4-byte implicit write (the busy bit of a TSS descriptor). */
export function writeImplicit32(c: CpuCore, lin: number, v: number): void {
  physWriteSized(c, translateImplicit(c, lin, ACC_WRITE), 4, v, 0);
}

export { ACC_READ, ACC_WRITE, ACC_FETCH };
