/**
 * Guest-virtual addresses as gdb gives them, made physical by walking the guest's page tables
 * from CR3 the way a debugger reads memory (QEMU's cpu_memory_rw_debug()): no accessed or dirty
 * bits set, no fault raised, the page's rights ignored. 4-level paging of IA-32e mode (SDM vol.
 * 3A §4.5) with 1 GiB and 2 MiB pages; with CR0.PG clear, addresses are physical.
 */
import type { GuestMemory } from '../../kvm/api/guest-memory.js';
import type { Sregs } from '../../kvm/api/regs.js';

const PRESENT = 1n;
const PAGE_SIZE_BIT = 1n << 7n;
/** Bits 51:12 of an entry: the next table or the page frame (MAXPHYADDR 52 at most). */
const ADDRESS_MASK = 0x000f_ffff_ffff_f000n;
const CR0_PG = 1n << 31n;

/** The physical address of `va`, or undefined when no present mapping gives one. */
export function translateForDebugger(memory: GuestMemory, sregs: Pick<Sregs, 'cr0' | 'cr3'>, va: bigint): bigint | undefined {
  const addr = BigInt.asUintN(64, va);
  if ((sregs.cr0 & CR0_PG) === 0n) return addr;
  // Non-canonical: no mapping.
  const top = addr >> 47n;
  if (top !== 0n && top !== 0x1ffffn) return undefined;
  let table = sregs.cr3 & ADDRESS_MASK;
  for (let level = 4; level >= 1; level--) {
    const shift = BigInt(12 + 9 * (level - 1));
    const index = (addr >> shift) & 0x1ffn;
    const at = table + index * 8n;
    if (!memory.contains(Number(at), 8)) return undefined;
    const entry = memory.read64(Number(at));
    if ((entry & PRESENT) === 0n) return undefined;
    if (level === 1 || ((level === 2 || level === 3) && (entry & PAGE_SIZE_BIT) !== 0n)) {
      const pageMask = (1n << shift) - 1n;
      return ((entry & ADDRESS_MASK) & ~pageMask) | (addr & pageMask);
    }
    table = entry & ADDRESS_MASK;
  }
  return undefined;
}
