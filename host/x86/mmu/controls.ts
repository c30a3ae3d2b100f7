/**
 * Paging and protection controls derived from CR0, CR3, CR4 and EFER, cached as plain fields
 * for the walker and the executors, and the TLB flushes their changes require (SDM vol. 3A
 * §4.10.4.1: MOV to CR3 flushes non-global entries; changes of CR0.PG/WP, CR4.PGE/PAE/PSE/
 * SMEP/SMAP/PCIDE flush everything; EFER.NXE changes what an XD bit means).
 */
import {
  EFER_NXE, X86_CR0_PG, X86_CR0_WP, X86_CR4_PAE, X86_CR4_PCIDE, X86_CR4_PGE, X86_CR4_PSE, X86_CR4_SMAP,
  X86_CR4_SMEP, X86_CR4_TSD, X86_CR4_UMIP,
} from '../../../protocol/abi.js';
import { MAXPHYADDR } from '../arch.js';
import type { CpuCore } from '../core.js';
import { flushTlb } from './tlb.js';

const CR3_BASE_MASK = ((1n << BigInt(MAXPHYADDR)) - 1n) & ~0xfffn;

export function applyControls(c: CpuCore): void {
  c.pml4Base = Number(c.cr3 & CR3_BASE_MASK);
  c.wp = (c.cr0 & X86_CR0_WP) !== 0n;
  c.smep = (c.cr4 & X86_CR4_SMEP) !== 0n;
  c.smap = (c.cr4 & X86_CR4_SMAP) !== 0n;
  c.pge = (c.cr4 & X86_CR4_PGE) !== 0n;
  c.umip = (c.cr4 & X86_CR4_UMIP) !== 0n;
  c.tsd = (c.cr4 & X86_CR4_TSD) !== 0n;
  c.nxe = (c.efer & EFER_NXE) !== 0n;
}

const CR0_FLUSH = X86_CR0_PG | X86_CR0_WP;
const CR4_FLUSH = X86_CR4_PGE | X86_CR4_PAE | X86_CR4_PSE | X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PCIDE;

export function setCr0(c: CpuCore, v: bigint): void {
  const changed = (c.cr0 ^ v) & CR0_FLUSH;
  c.cr0 = v;
  applyControls(c);
  if (changed !== 0n) flushTlb(c, false);
}

/** MOV to CR3: non-global translations are dropped (bit 63 / PCIDs are not modelled: always a flush). */
export function setCr3(c: CpuCore, v: bigint): void {
  c.cr3 = v;
  applyControls(c);
  flushTlb(c, c.pge);
}

export function setCr4(c: CpuCore, v: bigint): void {
  const changed = (c.cr4 ^ v) & CR4_FLUSH;
  c.cr4 = v;
  applyControls(c);
  if (changed !== 0n) flushTlb(c, false);
}

export function setEfer(c: CpuCore, v: bigint): void {
  const changed = ((c.efer ^ v) & EFER_NXE) !== 0n;
  c.efer = v;
  applyControls(c);
  if (changed) flushTlb(c, false);
}
