/**
 * An independent 4-level page walk over guest page tables (SDM vol. 3A §4.5, tables 4-15 to
 * 4-20), for tests: the translation of one linear address and its combined rights — writable
 * and user only if every level allows it, no-execute if any level forbids execution.
 */
import type { PhysicalMemory } from '../../host/x86/memory.js';

export interface Translation {
  readonly physical: number;
  readonly pageSize: number;
  readonly writable: boolean;
  readonly user: boolean;
  readonly executable: boolean;
}

const ADDRESS_MASK = 0x000f_ffff_ffff_f000n;

export function translate(memory: PhysicalMemory, cr3: number, linear: number): Translation | undefined {
  let table = cr3;
  let writable = true;
  let user = true;
  let executable = true;
  // Shifts of the PML4, PDPT, PD and PT indices.
  for (const shift of [39, 30, 21, 12]) {
    const entry = memory.read64(table + 8 * (Math.floor(linear / 2 ** shift) % 512));
    if ((entry & 1n) === 0n) return undefined;
    writable &&= (entry & 2n) !== 0n;
    user &&= (entry & 4n) !== 0n;
    executable &&= entry >> 63n === 0n;
    const base = Number(entry & ADDRESS_MASK);
    const large = (shift === 30 || shift === 21) && (entry & 0x80n) !== 0n;
    if (large || shift === 12) {
      const pageSize = 2 ** shift;
      return { physical: base - (base % pageSize) + (linear % pageSize), pageSize, writable, user, executable };
    }
    table = base;
  }
  return undefined;
}
