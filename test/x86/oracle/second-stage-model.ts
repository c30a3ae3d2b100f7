/**
 * The reference model of the second stage (EPT) for one access, written from the SDM and
 * docs/memory-protection.md §2, never from host/x86's MMU. It composes with the first-stage model
 * (paging-model.ts) in the order the walk meets them:
 *   1. each paging-structure entry is read through the second stage before the walk looks at it:
 *      no read right on its frame → EPT violation (read; SDM vol. 3C table 28-7 bit 8 clear);
 *   2. the first stage decides (not present, reserved bit, rights → #PF);
 *   3. each accessed/dirty flag the access must set (SDM vol. 3A §4.8) is a write to its entry's
 *      frame: no write right → EPT violation (write; bit 8 clear);
 *   4. the access itself needs its right on the final frame — R for a read, W for a write, and for
 *      a fetch X, or with MBEC X for a supervisor-mode linear address and UX for a user-mode one
 *      (U/S = 1 in every entry; SDM vol. 3C §29.3.3.2) — else EPT violation (bit 8 set, with the
 *      guest's U/S, R/W, XD of the page in bits 9-11).
 * A violation changes nothing: no A/D flag is set, no data is written (pinbox's model decision,
 * docs/memory-protection.md §2.3).
 */
import {
  ENTRY_A, ENTRY_D, ENTRY_P, ENTRY_RW, ENTRY_US, ENTRY_XD, isLeaf, reservedBits, expectedFault,
  type AccessSetting, type Expected,
} from './paging-model.js';

/** Rights of a frame: read, write, execute (supervisor execute with MBEC), user execute (MBEC). */
export interface Rights {
  r: boolean;
  w: boolean;
  x: boolean;
  ux: boolean;
}

export const ALL_RIGHTS: Rights = { r: true, w: true, x: true, ux: true };

export interface SecondStageSetting {
  mbec: boolean;
  /** Rights of the frame holding each entry, in walk order (the same length as the entries). */
  tableRights: readonly Rights[];
  /** Physical address of each entry, in walk order. */
  entryAddresses: readonly number[];
  /** Rights of the frame the access lands on, and its physical address. */
  pageRights: Rights;
  physicalAddress: number;
}

export type Outcome =
  | { kind: 'first-stage'; expected: Expected }
  | { kind: 'violation'; gpa: number; qualification: number; final: boolean };

/** Bits 3-6 of the qualification: the frame's rights (bit 6 only with MBEC). */
function rightsBits(r: Rights, mbec: boolean): number {
  return (r.r ? 1 << 3 : 0) | (r.w ? 1 << 4 : 0) | (r.x ? 1 << 5 : 0) | (mbec && r.ux ? 1 << 6 : 0);
}

const READ = 1 << 0, WRITE = 1 << 1, FETCH = 1 << 2, GVA_VALID = 1 << 7, FINAL = 1 << 8;

export function expectedOutcome(s: AccessSetting, t: SecondStageSetting): Outcome {
  // 1. Table reads, top-down, up to where the first stage stops or finds the leaf.
  for (let level = 0; level < s.entries.length; level++) {
    const rights = t.tableRights[level]!;
    if (!rights.r) {
      return { kind: 'violation', gpa: t.entryAddresses[level]!, qualification: READ | rightsBits(rights, t.mbec) | GVA_VALID, final: false };
    }
    const e = s.entries[level]!;
    if ((e & ENTRY_P) === 0n || reservedBits(e, level, s.nxe) !== 0n || isLeaf(e, level)) break;
  }
  // 2. The first stage.
  const first = expectedFault(s);
  if (first.fault) return { kind: 'first-stage', expected: first };
  // 3. A/D updates.
  for (let level = 0; level < first.used; level++) {
    const e = s.entries[level]!;
    const leaf = level === first.used - 1;
    const needs = (e & ENTRY_A) === 0n || (leaf && s.access === 'write' && (e & ENTRY_D) === 0n);
    const rights = t.tableRights[level]!;
    if (needs && !rights.w) {
      return { kind: 'violation', gpa: t.entryAddresses[level]!, qualification: WRITE | rightsBits(rights, t.mbec) | GVA_VALID, final: false };
    }
  }
  // 4. The access.
  const used = s.entries.slice(0, first.used);
  const user = used.every((e) => (e & ENTRY_US) !== 0n);
  const writable = used.every((e) => (e & ENTRY_RW) !== 0n);
  const xd = s.nxe && used.some((e) => (e & ENTRY_XD) !== 0n);
  const p = t.pageRights;
  const allowed = s.access === 'read' ? p.r : s.access === 'write' ? p.w : t.mbec && user ? p.ux : p.x;
  if (allowed) return { kind: 'first-stage', expected: first };
  const kind = s.access === 'read' ? READ : s.access === 'write' ? WRITE : FETCH;
  const qualification = kind | rightsBits(p, t.mbec) | GVA_VALID | FINAL |
    (user ? 1 << 9 : 0) | (writable ? 1 << 10 : 0) | (xd ? 1 << 11 : 0);
  return { kind: 'violation', gpa: t.physicalAddress, qualification, final: true };
}
