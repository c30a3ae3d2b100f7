/**
 * The boot image's identity map (SDM vol. 3A §4.5, 4-level paging). Upper levels are always
 * present, writable and user-accessible, so that each leaf alone decides a page's rights — the
 * layout of layout.ts: 4 KiB leaves for the first 2 MiB (a not-present null page, read-only
 * data, read-only executable kernel text, no-execute stacks and tables, the RWX kernel exec
 * area), one user RWX 2 MiB page, and supervisor no-execute 2 MiB pages for the rest.
 */
import type { GuestMemory } from '../../kvm/api/guest-memory.js';
import {
  HIGH_MEMORY, KERNEL_EXEC, KERNEL_EXEC_END, KERNEL_TEXT, MIB, NULL_PAGE, PAGE, PD_BASE, PDPT, PML4,
  PT0, RODATA, STUBS, USER_REGION,
} from './layout.js';

export const PTE_P = 1n << 0n;
export const PTE_RW = 1n << 1n;
export const PTE_US = 1n << 2n;
export const PTE_A = 1n << 5n;
export const PTE_D = 1n << 6n;
export const PTE_PS = 1n << 7n;
export const PTE_G = 1n << 8n;
export const PTE_NX = 1n << 63n;

/**
 * Every entry is built accessed, and every leaf dirty, as a kernel builds its own tables (Linux's
 * _KERNPG_TABLE and __PAGE_KERNEL carry _PAGE_ACCESSED and _PAGE_DIRTY): no walk then has to write
 * a table to set them, so a VMM may make the tables read-only at the second stage from the start
 * (docs/memory-protection.md §2.1: each accessed or dirty bit the walker sets needs write on the
 * table's frame) without the guest's first access faulting.
 */
const BUILT = PTE_A;
const LEAF_BUILT = PTE_A | PTE_D;
const TABLE = PTE_P | PTE_RW | PTE_US | BUILT;
const GIB = 1024 * MIB;
const TWO_MIB = 2 * MIB;

/** The leaf flags of a 4 KiB page in the first 2 MiB. */
export function lowPageFlags(address: number): bigint | undefined {
  if (address === NULL_PAGE) return undefined;
  if (address === RODATA) return PTE_P | PTE_G | PTE_NX;
  if (address === STUBS || address === KERNEL_TEXT) return PTE_P | PTE_G;
  if (address >= KERNEL_EXEC && address < KERNEL_EXEC_END) return PTE_P | PTE_RW | PTE_G;
  return PTE_P | PTE_RW | PTE_G | PTE_NX;
}

export function buildPageTables(memory: GuestMemory): void {
  memory.write64(PML4, BigInt(PDPT) | TABLE);
  const gigabytes = Math.ceil(memory.size / GIB);
  for (let g = 0; g < gigabytes; g++) {
    memory.write64(PDPT + 8 * g, BigInt(PD_BASE + g * PAGE) | TABLE);
  }
  for (let chunk = 0; chunk * TWO_MIB < memory.size; chunk++) {
    const address = chunk * TWO_MIB;
    const entry = PD_BASE + 8 * chunk; // the PDs are contiguous, so this crosses into PD1.. naturally
    if (address === 0) memory.write64(entry, BigInt(PT0) | TABLE);
    else if (address === USER_REGION) memory.write64(entry, BigInt(address) | PTE_P | PTE_RW | PTE_US | PTE_PS | LEAF_BUILT);
    else if (address >= HIGH_MEMORY) memory.write64(entry, BigInt(address) | PTE_P | PTE_RW | PTE_PS | PTE_G | PTE_NX | LEAF_BUILT);
  }
  for (let address = 0; address < TWO_MIB; address += PAGE) {
    const flags = lowPageFlags(address);
    if (flags !== undefined) memory.write64(PT0 + 8 * (address / PAGE), BigInt(address) | flags | LEAF_BUILT);
  }
}
