/**
 * The 4-level page walk (SDM vol. 3A §4.5), permission checks (§4.6) and #PF error codes (§4.7),
 * in the model of kvm-unit-tests x86/access.c and XTF pagetable-emulation's calc_fault().
 *
 * - Not-present entry at any level → fault with P=0. A present entry with a reserved bit
 *   (bits 51:MAXPHYADDR, PS in a PML4E, 29:13 of a 1 GiB PDPTE, 20:13 of a 2 MiB PDE, XD while
 *   EFER.NXE=0) → fault with P=1|RSVD. Both end the walk.
 * - Effective rights are the AND of R/W and U/S and the OR of XD over the levels walked.
 * - User access: the page must be a user page; writes need R/W.
 * - Supervisor write to a read-only page faults only with CR0.WP=1.
 * - Supervisor data access to a user page faults with CR4.SMAP unless RFLAGS.AC=1 and the
 *   access is explicit (implicit supervisor accesses — descriptor tables, TSS, event delivery —
 *   are always checked).
 * - Fetch: XD page faults (with EFER.NXE); supervisor fetch from a user page faults with SMEP.
 * - Error code: P, W/R, U/S (user-mode access), RSVD, I/D (a fetch while EFER.NXE or CR4.SMEP).
 * - Accessed bits are set on every level and the dirty bit on the leaf for a write, only when
 *   the translation succeeds (as KVM's paging_tmpl.h walker does).
 * - Second stage (second-stage.ts), for the guest's own accesses (`commit`): each entry read
 *   needs read permission on its frame, as it happens; after the guest's checks pass, each
 *   accessed/dirty update needs write permission, then the access itself its permission — all
 *   before anything is written, so a violation, like a #PF, leaves the tables as they were
 *   (MODEL DECISION: hardware may set accessed bits before it reports; docs/memory-protection.md §2.3).
 */
import {
  PFERR_FETCH, PFERR_PRESENT, PFERR_RSVD, PFERR_USER, PFERR_WRITE, X86_EFLAGS_AC,
} from '../../../protocol/abi.js';
import {
  PDE_2M_RSVD_LO, PDPTE_1G_RSVD_LO, PTE_A, PTE_D, PTE_G, PTE_HI_ADDR, PTE_HI_RSVD, PTE_HI_XD, PTE_P,
  PTE_PS, PTE_RW, PTE_US,
} from '../arch.js';
import type { CpuCore } from '../core.js';
import { physRead32, physWrite32 } from './physical.js';
import {
  EPT_VIOLATION_ACC_INSTR, EPT_VIOLATION_ACC_READ, EPT_VIOLATION_ACC_WRITE, EPT_VIOLATION_GVA_IS_VALID,
  EPT_VIOLATION_GVA_NX, EPT_VIOLATION_GVA_TRANSLATED, EPT_VIOLATION_GVA_USER, EPT_VIOLATION_GVA_WRITABLE,
  fetchPermission, protectionBits, S2_READ, S2_WRITE,
} from './second-stage.js';
import { raiseEptViolation } from './violation.js';

export const ACC_READ = 0;
export const ACC_WRITE = 1;
export const ACC_FETCH = 2;
export type Access = typeof ACC_READ | typeof ACC_WRITE | typeof ACC_FETCH;

const TWO32 = 4294967296;

/** Physical base of the table an entry points to (bits MAXPHYADDR-1:12). */
function tableBase(lo: number, hi: number): number {
  return (hi & PTE_HI_ADDR) * TWO32 + ((lo & ~0xfff) >>> 0);
}

/**
 * Whether an access with the given effective rights faults (protection, not presence).
 * `user`: a user-mode access (CPL 3, not implicit).
 */
export function protectionFault(
  c: CpuCore, access: Access, user: boolean, implicit: boolean, userPage: boolean, writable: boolean, nx: boolean,
): boolean {
  if (access === ACC_FETCH) {
    if (nx) return true;
    return user ? !userPage : userPage && c.smep;
  }
  if (user) return !userPage || (access === ACC_WRITE && !writable);
  if (userPage && c.smap && (implicit || (c.flags & X86_EFLAGS_AC) === 0)) return true;
  return access === ACC_WRITE && !writable && c.wp;
}

/** The error-code bits an access contributes besides P and RSVD. */
export function accessErrorBits(c: CpuCore, access: Access, user: boolean): number {
  return (access === ACC_WRITE ? PFERR_WRITE : 0) |
    (user ? PFERR_USER : 0) |
    (access === ACC_FETCH && (c.nxe || c.smep) ? PFERR_FETCH : 0);
}

/**
 * Translates a canonical linear address. Returns the physical address (≥ 0), or -(error
 * code) - 1 for a page fault. With `commit`, sets accessed/dirty bits on success; the rights
 * found are left in c.walkUser/walkWritable/walkNx/walkDirty/walkGlobal.
 */
export function walk(c: CpuCore, lin: number, access: Access, user: boolean, implicit: boolean, commit: boolean): number {
  const hi = Math.floor(lin / TWO32);
  const lo = lin >>> 0;
  const rsvdHi = c.nxe ? PTE_HI_RSVD : PTE_HI_RSVD | PTE_HI_XD;
  const bits = accessErrorBits(c, access, user);
  const s2 = commit && c.secondStage.active;

  // PML4E: bits 47:39
  const a4 = c.pml4Base + ((hi >> 7) & 0x1ff) * 8;
  if (s2) tableRead(c, a4, lin);
  const e4 = physRead32(c, a4);
  const h4 = physRead32(c, a4 + 4);
  if ((e4 & PTE_P) === 0) return -bits - 1;
  if ((h4 & rsvdHi) !== 0 || (e4 & PTE_PS) !== 0) return -(bits | PFERR_PRESENT | PFERR_RSVD) - 1;

  // PDPTE: bits 38:30
  const a3 = tableBase(e4, h4) + ((((hi & 0x7f) << 2) | (lo >>> 30)) * 8);
  if (s2) tableRead(c, a3, lin);
  const e3 = physRead32(c, a3);
  const h3 = physRead32(c, a3 + 4);
  if ((e3 & PTE_P) === 0) return -bits - 1;
  if ((h3 & rsvdHi) !== 0 || ((e3 & PTE_PS) !== 0 && (e3 & PDPTE_1G_RSVD_LO) !== 0)) {
    return -(bits | PFERR_PRESENT | PFERR_RSVD) - 1;
  }

  let a2 = -1, e2 = 0, h2 = 0, a1 = -1, e1 = 0, h1 = 0;
  let leaf: number, pa: number;
  if ((e3 & PTE_PS) !== 0) {
    leaf = e3;
    pa = (h3 & PTE_HI_ADDR) * TWO32 + ((e3 & 0xc0000000) >>> 0) + (lo & 0x3fffffff);
  } else {
    // PDE: bits 29:21
    a2 = tableBase(e3, h3) + ((lo >>> 21) & 0x1ff) * 8;
    if (s2) tableRead(c, a2, lin);
    e2 = physRead32(c, a2);
    h2 = physRead32(c, a2 + 4);
    if ((e2 & PTE_P) === 0) return -bits - 1;
    if ((h2 & rsvdHi) !== 0 || ((e2 & PTE_PS) !== 0 && (e2 & PDE_2M_RSVD_LO) !== 0)) {
      return -(bits | PFERR_PRESENT | PFERR_RSVD) - 1;
    }
    if ((e2 & PTE_PS) !== 0) {
      leaf = e2;
      pa = (h2 & PTE_HI_ADDR) * TWO32 + ((e2 & 0xffe00000) >>> 0) + (lo & 0x1fffff);
    } else {
      // PTE: bits 20:12
      a1 = tableBase(e2, h2) + ((lo >>> 12) & 0x1ff) * 8;
      if (s2) tableRead(c, a1, lin);
      e1 = physRead32(c, a1);
      h1 = physRead32(c, a1 + 4);
      if ((e1 & PTE_P) === 0) return -bits - 1;
      if ((h1 & rsvdHi) !== 0) return -(bits | PFERR_PRESENT | PFERR_RSVD) - 1;
      leaf = e1;
      pa = tableBase(e1, h1) + (lo & 0xfff);
    }
  }

  let and = e4 & e3;
  let xd = (h4 | h3) & PTE_HI_XD;
  if (a2 >= 0) {
    and &= e2;
    xd |= h2 & PTE_HI_XD;
  }
  if (a1 >= 0) {
    and &= e1;
    xd |= h1 & PTE_HI_XD;
  }
  const userPage = (and & PTE_US) !== 0;
  const writable = (and & PTE_RW) !== 0;
  const nx = xd !== 0 && c.nxe;
  if (protectionFault(c, access, user, implicit, userPage, writable, nx)) return -(bits | PFERR_PRESENT) - 1;

  let dirty = (leaf & PTE_D) !== 0;
  if (s2) {
    const write = access === ACC_WRITE && !dirty;
    if ((e4 & PTE_A) === 0) updateAllowed(c, a4, lin);
    if ((e3 & PTE_A) === 0 || (a2 < 0 && write)) updateAllowed(c, a3, lin);
    if (a2 >= 0 && ((e2 & PTE_A) === 0 || (a1 < 0 && write))) updateAllowed(c, a2, lin);
    if (a1 >= 0 && ((e1 & PTE_A) === 0 || write)) updateAllowed(c, a1, lin);
    finalAccessAllowed(c, pa, lin, access, userPage, writable, nx);
  }
  if (commit) {
    if ((e4 & PTE_A) === 0) physWrite32(c, a4, e4 | PTE_A);
    if ((e3 & PTE_A) === 0 || (a2 < 0 && access === ACC_WRITE && !dirty)) {
      physWrite32(c, a3, e3 | PTE_A | (a2 < 0 && access === ACC_WRITE ? PTE_D : 0));
    }
    if (a2 >= 0 && ((e2 & PTE_A) === 0 || (a1 < 0 && access === ACC_WRITE && !dirty))) {
      physWrite32(c, a2, e2 | PTE_A | (a1 < 0 && access === ACC_WRITE ? PTE_D : 0));
    }
    if (a1 >= 0 && ((e1 & PTE_A) === 0 || (access === ACC_WRITE && !dirty))) {
      physWrite32(c, a1, e1 | PTE_A | (access === ACC_WRITE ? PTE_D : 0));
    }
    if (access === ACC_WRITE) dirty = true;
  }
  c.walkUser = userPage;
  c.walkWritable = writable;
  c.walkNx = nx;
  c.walkDirty = dirty;
  c.walkGlobal = (leaf & PTE_G) !== 0;
  return pa;
}

/** The walker reads a paging-structure entry at `gpa`: a read at the second stage (qualification bit 8 clear). */
function tableRead(c: CpuCore, gpa: number, lin: number): void {
  const s2 = c.secondStage;
  const p = s2.at(gpa);
  if ((p & S2_READ) === 0) {
    raiseEptViolation(c, gpa, lin, EPT_VIOLATION_ACC_READ | protectionBits(p, s2.mbec) | EPT_VIOLATION_GVA_IS_VALID);
  }
}

/**
 * The walker will set an accessed or dirty bit in the entry at `gpa`: a write at the second
 * stage, reported as an access to a paging-structure entry (bit 8 clear). Without EPT A/D
 * flags (not modelled) the walker's reads stay reads (SDM vol. 3C §29.3.3.2).
 */
function updateAllowed(c: CpuCore, gpa: number, lin: number): void {
  const s2 = c.secondStage;
  const p = s2.at(gpa);
  if ((p & S2_WRITE) === 0) {
    raiseEptViolation(c, gpa, lin, EPT_VIOLATION_ACC_WRITE | protectionBits(p, s2.mbec) | EPT_VIOLATION_GVA_IS_VALID);
  }
}

/** The access itself at `pa`, with the guest paging's view of the page in bits 9-11. */
function finalAccessAllowed(
  c: CpuCore, pa: number, lin: number, access: Access, userPage: boolean, writable: boolean, nx: boolean,
): void {
  const s2 = c.secondStage;
  const p = s2.at(pa);
  const need = access === ACC_READ ? S2_READ : access === ACC_WRITE ? S2_WRITE : fetchPermission(s2.mbec, userPage);
  if ((p & need) !== 0) return;
  const kind = access === ACC_READ ? EPT_VIOLATION_ACC_READ : access === ACC_WRITE ? EPT_VIOLATION_ACC_WRITE : EPT_VIOLATION_ACC_INSTR;
  raiseEptViolation(c, pa, lin, kind | protectionBits(p, s2.mbec) | EPT_VIOLATION_GVA_IS_VALID | EPT_VIOLATION_GVA_TRANSLATED |
    (userPage ? EPT_VIOLATION_GVA_USER : 0) | (writable ? EPT_VIOLATION_GVA_WRITABLE : 0) | (nx ? EPT_VIOLATION_GVA_NX : 0));
}
