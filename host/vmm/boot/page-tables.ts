/**
 * The boot image's identity map (SDM vol. 3A §4.5, 4-level paging). Upper levels are always
 * present, writable and user-accessible, so that each leaf alone decides a page's rights — the
 * layout of layout.ts: 4 KiB leaves for the first 2 MiB (a not-present null page, read-only
 * data, read-only executable kernel text, no-execute stacks and tables, the RWX kernel exec
 * area), one user RWX 2 MiB page, and supervisor no-execute 2 MiB pages for the rest.
 *
 * Every entry is written accessed and dirty, as Linux writes its own (_PAGE_TABLE, _KERNPG_TABLE
 * and __PAGE_KERNEL* carry _PAGE_ACCESSED | _PAGE_DIRTY, arch/x86/include/asm/pgtable_types.h):
 * the walker then never has to set them, so tables the hypervisor makes read-only at the second
 * stage (docs/memory-protection.md §2.3, where each accessed/dirty update needs write on the
 * table's frame) still translate.
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

/** Set in every entry boot writes: the walker has nothing to update. */
export const PTE_AD = PTE_A | PTE_D;
const TABLE = PTE_P | PTE_RW | PTE_US | PTE_AD;
const GIB = 1024 * MIB;
const TWO_MIB = 2 * MIB;

/** The leaf flags of a 4 KiB page in the first 2 MiB. */
export function lowPageFlags(address: number): bigint | undefined {
  if (address === NULL_PAGE) return undefined;
  if (address === RODATA) return PTE_P | PTE_G | PTE_NX | PTE_AD;
  if (address === STUBS || address === KERNEL_TEXT) return PTE_P | PTE_G | PTE_AD;
  if (address >= KERNEL_EXEC && address < KERNEL_EXEC_END) return PTE_P | PTE_RW | PTE_G | PTE_AD;
  return PTE_P | PTE_RW | PTE_G | PTE_NX | PTE_AD;
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
    else if (address === USER_REGION) memory.write64(entry, BigInt(address) | PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_AD);
    else if (address >= HIGH_MEMORY) memory.write64(entry, BigInt(address) | PTE_P | PTE_RW | PTE_PS | PTE_G | PTE_NX | PTE_AD);
  }
  for (let address = 0; address < TWO_MIB; address += PAGE) {
    const flags = lowPageFlags(address);
    if (flags !== undefined) memory.write64(PT0 + 8 * (address / PAGE), BigInt(address) | flags);
  }
}
