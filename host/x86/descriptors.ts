/**
 * Segment descriptors read from the GDT (or LDT) by the instructions and events that load a
 * segment register in 64-bit mode: event delivery, IRET, LTR (SDM vol. 3A §3.4.5, §3.5, §7.2.3).
 * Table reads are implicit supervisor-mode accesses.
 */
import type { CpuCore } from './core.js';
import type { Segment } from './state.js';
import { raiseGP } from './fault.js';
import { readImplicit32 } from './mmu/access.js';


/** A decoded 8-byte descriptor (plus bits 63:32 of the base for a 16-byte system descriptor). */
export interface Descriptor {
  selector: number;
  base: bigint;
  limit: number;
  type: number;
  s: boolean;
  dpl: number;
  present: boolean;
  avl: boolean;
  l: boolean;
  db: boolean;
  g: boolean;
  /** Linear address of the descriptor in its table (to set busy/accessed bits). */
  address: number;
  /** The descriptor's second dword (type/flags), as read. */
  high: number;
}

function tableAddress(base: bigint): number {
  return Number(BigInt.asIntN(64, base));
}

/**
 * Reads the descriptor a selector names; #GP(selector & ~3 | ext) when it lies outside its table
 * (SDM vol. 3A §6.13 error-code format). `system16` reads a 16-byte system descriptor.
 */
export function readDescriptor(c: CpuCore, selector: number, ext: number, system16 = false): Descriptor {
  const index = selector & ~7;
  const ldt = (selector & 4) !== 0;
  const err = (selector & 0xfffc) | ext;
  let base: bigint, limit: number;
  if (ldt) {
    if (c.ldt.unusable || !c.ldt.present) raiseGP(c, err);
    base = c.ldt.base;
    limit = c.ldt.limit;
  } else {
    base = c.gdtBase;
    limit = c.gdtLimit;
  }
  if (index + (system16 ? 15 : 7) > limit) raiseGP(c, err);
  const address = tableAddress(base) + index;
  const lo = readImplicit32(c, address);
  const hi = readImplicit32(c, address + 4);
  let segBase = BigInt(((lo >>> 16) | ((hi & 0xff) << 16) | (hi & 0xff000000)) >>> 0);
  if (system16) {
    const upper = readImplicit32(c, address + 8);
    segBase |= BigInt(upper >>> 0) << 32n;
  }
  const rawLimit = (lo & 0xffff) | (hi & 0xf0000);
  const g = (hi & (1 << 23)) !== 0;
  return {
    selector,
    base: segBase,
    limit: g ? ((rawLimit * 4096) + 0xfff) >>> 0 : rawLimit,
    type: (hi >> 8) & 0xf,
    s: (hi & (1 << 12)) !== 0,
    dpl: (hi >> 13) & 3,
    present: (hi & (1 << 15)) !== 0,
    avl: (hi & (1 << 20)) !== 0,
    l: (hi & (1 << 21)) !== 0,
    db: (hi & (1 << 22)) !== 0,
    g,
    address,
    high: hi,
  };
}

/** The segment-register cache a descriptor loads, with the selector's RPL. */
export function segmentFromDescriptor(d: Descriptor, selector: number): Segment {
  return {
    base: d.base, limit: d.limit, selector, type: d.type, present: d.present, dpl: d.dpl,
    db: d.db, s: d.s, l: d.l, g: d.g, avl: d.avl, unusable: false,
  };
}

/** Whether a descriptor describes a code segment (S=1, type bit 3). */
export function isCode(d: Descriptor): boolean {
  return d.s && (d.type & 8) !== 0;
}

/** Whether a descriptor describes a writable data segment (S=1, type bit 3 clear, bit 1 set). */
export function isWritableData(d: Descriptor): boolean {
  return d.s && (d.type & 8) === 0 && (d.type & 2) !== 0;
}

/** Whether a base is canonical. */
export function isCanonicalBase(base: bigint): boolean {
  const s = BigInt.asIntN(64, base);
  return s >= -(1n << 47n) && s < 1n << 47n;
}

/** Flat 64-bit code/data caches as SYSCALL/SYSRET load them (SDM vol. 2 SYSCALL, SYSRET). */
export function flatCode64(selector: number, dpl: number): Segment {
  return {
    base: 0n, limit: 0xffffffff, selector, type: 0xb, present: true, dpl,
    db: false, s: true, l: true, g: true, avl: false, unusable: false,
  };
}

export function flatData(selector: number, dpl: number): Segment {
  return {
    base: 0n, limit: 0xffffffff, selector, type: 0x3, present: true, dpl,
    db: true, s: true, l: false, g: true, avl: false, unusable: false,
  };
}

/** Number form of a 64-bit base (exact when canonical). */
export function baseAsNumber(base: bigint): number {
  return Number(BigInt.asIntN(64, base));
}

