/**
 * The reference model of a 4-level page walk and its access-rights check, written from the SDM
 * and the two public oracles docs/x86-model.md §3.1–3.2 summarises (kvm-unit-tests x86/access.c's
 * expected-result model, XTF pagetable-emulation's calc_fault()), never from host/x86's MMU.
 *
 * Sources, by rule:
 *   - the walk, which entry is the leaf, reserved bits ....... SDM vol. 3A §4.5 (tables 4-14..4-20)
 *   - access rights (U/S, R/W, XD, WP, SMEP, SMAP, AC) ........ SDM vol. 3A §4.6.1
 *   - the #PF error code ...................................... SDM vol. 3A §4.7
 *   - accessed and dirty flags ................................ SDM vol. 3A §4.8; XTF's A/D rules
 *
 * The model takes the raw entry values a walk would read, top-down (PML4E first), so that the
 * same numbers are written to guest memory and judged here.
 */
import { MAXPHYADDR } from '../../../host/index.js';
import {
  PFERR_FETCH, PFERR_PRESENT, PFERR_RSVD, PFERR_USER, PFERR_WRITE,
} from '../../../protocol/abi.js';

export type Access = 'read' | 'write' | 'fetch';

export const ENTRY_P = 1n << 0n;
export const ENTRY_RW = 1n << 1n;
export const ENTRY_US = 1n << 2n;
export const ENTRY_A = 1n << 5n;
export const ENTRY_D = 1n << 6n;
export const ENTRY_PS = 1n << 7n;
export const ENTRY_G = 1n << 8n;
export const ENTRY_XD = 1n << 63n;

export const LEVEL_NAMES = ['PML4E', 'PDPTE', 'PDE', 'PTE'] as const;

/** Bits 51:MAXPHYADDR of any paging-structure entry (SDM tables 4-14..4-20: "Reserved (must be 0)"). */
export const RSVD_ABOVE_MAXPHYADDR = ((1n << 52n) - 1n) & ~((1n << BigInt(MAXPHYADDR)) - 1n);
/** Bits 29:13 of a PDPTE that maps a 1 GiB page (table 4-16). */
export const RSVD_1G_LOW = ((1n << 30n) - 1n) & ~((1n << 13n) - 1n);
/** Bits 20:13 of a PDE that maps a 2 MiB page (table 4-18). */
export const RSVD_2M_LOW = ((1n << 21n) - 1n) & ~((1n << 13n) - 1n);

export interface PagingControls {
  /** CR0.WP */
  wp: boolean;
  /** CR4.SMEP */
  smep: boolean;
  /** CR4.SMAP */
  smap: boolean;
  /** IA32_EFER.NXE */
  nxe: boolean;
  /** RFLAGS.AC */
  ac: boolean;
}

export interface AccessSetting extends PagingControls {
  /** Entry values in walk order: PML4E, PDPTE, then PDE and PTE as far as the walk goes. */
  entries: readonly bigint[];
  cpl: 0 | 3;
  access: Access;
  /**
   * An implicit supervisor-mode access (descriptor-table or TSS reads, delivery's stack pushes):
   * supervisor whatever the CPL, and SMAP ignores RFLAGS.AC for it (SDM §4.6).
   */
  implicit?: boolean;
}

export type FaultKind = 'not-present' | 'reserved' | 'rights';

export type Expected =
  | { fault: false; /** entries the walk used, the last one the leaf */ used: number }
  | { fault: true; errorCode: number; kind: FaultKind; /** index of the entry where the walk stopped */ at: number };

/** The reserved bits of an entry at `level` (0 = PML4E), given its own PS bit and EFER.NXE. */
export function reservedBits(entry: bigint, level: number, nxe: boolean): bigint {
  let rsvd = RSVD_ABOVE_MAXPHYADDR;
  // XD is reserved unless IA32_EFER.NXE = 1 (§4.5, tables 4-14..4-20, bit 63).
  if (!nxe) rsvd |= ENTRY_XD;
  const ps = (entry & ENTRY_PS) !== 0n;
  // PS must be 0 in a PML4E (table 4-15); with PS=1, bits 29:13 / 20:13 of a 1 GiB / 2 MiB leaf.
  if (level === 0) rsvd |= ENTRY_PS;
  else if (level === 1 && ps) rsvd |= RSVD_1G_LOW;
  else if (level === 2 && ps) rsvd |= RSVD_2M_LOW;
  return entry & rsvd;
}

/** Whether the entry at `level` maps a page (a PTE, or a PDPTE/PDE with PS = 1). */
export function isLeaf(entry: bigint, level: number): boolean {
  return level === 3 || ((level === 1 || level === 2) && (entry & ENTRY_PS) !== 0n);
}

/** The error code bits that describe the access rather than the entries (§4.7). */
function accessBits(s: AccessSetting): number {
  let code = 0;
  if (s.access === 'write') code |= PFERR_WRITE;
  // U/S: 1 for a user-mode access, i.e. CPL 3 and not an implicit supervisor-mode access.
  if (s.cpl === 3 && !s.implicit) code |= PFERR_USER;
  // I/D: "1 if the access was an instruction fetch and either CR4.SMEP = 1 or (PAE and NXE)";
  // IA-32e mode always has CR4.PAE = 1.
  if (s.access === 'fetch' && (s.smep || s.nxe)) code |= PFERR_FETCH;
  return code;
}

/**
 * The access-rights decision of §4.6.1 for a completed walk: `user` and `writable` are the AND
 * of U/S and R/W over every entry used, `executeDisabled` the OR of XD (with EFER.NXE = 1).
 * Returns true if the access is allowed.
 */
export function rightsAllow(
  s: AccessSetting,
  page: { user: boolean; writable: boolean; executeDisabled: boolean },
): boolean {
  const supervisor = s.cpl !== 3 || s.implicit === true;
  if (s.access === 'fetch') {
    if (page.executeDisabled) return false;
    if (!supervisor) return page.user;
    // SMEP: no supervisor-mode fetch from a user-mode address, whatever RFLAGS.AC.
    return !(page.user && s.smep);
  }
  if (!supervisor) return page.user && (s.access === 'read' || page.writable);
  // SMAP: a supervisor-mode data access to a user-mode address faults unless it is explicit and
  // RFLAGS.AC = 1 (implicit accesses ignore AC). Fetches are not data accesses.
  if (page.user && s.smap && (s.implicit === true || !s.ac)) return false;
  if (s.access === 'read') return true;
  // Supervisor writes ignore R/W while CR0.WP = 0 (for user and supervisor pages alike).
  return page.writable || !s.wp;
}

/** kvm-unit-tests' ac_test_permissions / XTF's calc_fault(), as one top-down walk. */
export function expectedFault(s: AccessSetting): Expected {
  let user = true;
  let writable = true;
  let executeDisabled = false;
  for (let level = 0; level < s.entries.length; level++) {
    const e = s.entries[level]!;
    // A not-present entry ends the walk; every other bit of it is ignored (§4.5, §4.7: P = 0).
    if ((e & ENTRY_P) === 0n) {
      return { fault: true, errorCode: accessBits(s), kind: 'not-present', at: level };
    }
    // A reserved bit in a present entry ends the walk with P = 1 and RSVD = 1 (§4.7).
    if (reservedBits(e, level, s.nxe) !== 0n) {
      return { fault: true, errorCode: accessBits(s) | PFERR_PRESENT | PFERR_RSVD, kind: 'reserved', at: level };
    }
    user &&= (e & ENTRY_US) !== 0n;
    writable &&= (e & ENTRY_RW) !== 0n;
    executeDisabled ||= s.nxe && (e & ENTRY_XD) !== 0n;
    if (isLeaf(e, level)) {
      if (rightsAllow(s, { user, writable, executeDisabled })) return { fault: false, used: level + 1 };
      return { fault: true, errorCode: accessBits(s) | PFERR_PRESENT, kind: 'rights', at: level };
    }
  }
  throw new RangeError(`the entries end after ${s.entries.length} levels without a leaf`);
}

/** What an entry may hold after the access: exactly `value`, or `value | A` if `mayAddA`. */
export interface EntryAfter {
  value: bigint;
  mayAddA: boolean;
}

/**
 * The entries after the access (§4.8 and XTF's A/D expectations), for a walk that starts with
 * empty TLBs and paging-structure caches:
 *   - success: every entry used gets A ("whenever the processor uses a paging-structure entry as
 *     part of linear-address translation, it sets the accessed flag"); the leaf also gets D on a
 *     write; non-leaf entries never get D;
 *   - fault: a leaf is untouched, and so is any entry below where the walk stopped and any
 *     not-present entry; present non-leaf entries the walk read (including one whose reserved
 *     bits stopped it) may have A set — the SDM neither promises nor forbids it, and XTF accepts
 *     both — but never D.
 */
export function entriesAfter(s: AccessSetting, e: Expected): EntryAfter[] {
  return s.entries.map((value, level) => {
    if (!e.fault) {
      if (level >= e.used) return { value, mayAddA: false };
      const leaf = level === e.used - 1;
      const d = leaf && s.access === 'write' ? ENTRY_D : 0n;
      return { value: value | ENTRY_A | d, mayAddA: false };
    }
    const readNonLeaf = level < e.at || (level === e.at && e.kind === 'reserved' && !isLeaf(value, level));
    return { value, mayAddA: readNonLeaf };
  });
}

/** Whether `actual` is an allowed post-access value of the entry. */
export function entryMatches(actual: bigint, after: EntryAfter): boolean {
  return actual === after.value || (after.mayAddA && actual === (after.value | ENTRY_A));
}
