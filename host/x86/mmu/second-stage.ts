/**
 * The second stage of translation, as EPT is to VMX (SDM vol. 3C §29.3): per guest-physical
 * frame, whether the guest may read, write, and execute it, with mode-based execute control
 * (MBEC, secondary control bit 22) splitting execute into supervisor-mode and user-mode
 * execute (EPT entry bits 2 and 10). The model's guest-physical space maps 1:1 onto its memory,
 * so the second stage holds permissions only: one byte per frame (docs/memory-protection.md §2).
 *
 * Every guest access is checked against it — data, instruction fetches, the page walker's reads
 * of paging-structure entries and its accessed/dirty-bit writes — and a refused access stops the
 * core with an `ept_violation` intercept carrying the EPT-violation exit qualification (SDM vol.
 * 3C table 28-7, "Exit Qualification for EPT Violations"). Accesses the host makes (KVM reading a
 * hypercall's arguments) are not guest accesses and are not checked, as kvm_read_guest() is not.
 *
 * The TLB caches a translation only with the rights both stages give (tlb.ts), so the TLB-hit
 * paths of the interpreter and of translated code never look here; a change of permissions
 * flushes every TLB over the memory, as INVEPT does.
 */

/** EPT entry bit 0: reads allowed. */
export const S2_READ = 1 << 0;
/** EPT entry bit 1: writes allowed. */
export const S2_WRITE = 1 << 1;
/** EPT entry bit 2: instruction fetches allowed; with MBEC, from supervisor-mode linear addresses only. */
export const S2_EXEC = 1 << 2;
/** EPT entry bit 10 under MBEC: fetches from user-mode linear addresses allowed (ignored without MBEC). */
export const S2_USER_EXEC = 1 << 3;
export const S2_ALL = S2_READ | S2_WRITE | S2_EXEC | S2_USER_EXEC;

// The EPT-violation exit qualification (SDM vol. 3C table 28-7; Linux arch/x86/include/asm/vmx.h).
/** Bit 0: the access was a data read (including the walker's reads of paging-structure entries). */
export const EPT_VIOLATION_ACC_READ = 1 << 0;
/** Bit 1: the access was a data write (including accessed/dirty-bit updates). */
export const EPT_VIOLATION_ACC_WRITE = 1 << 1;
/** Bit 2: the access was an instruction fetch. */
export const EPT_VIOLATION_ACC_INSTR = 1 << 2;
/** Bits 3, 4, 5: the frame's read, write, (supervisor-)execute permission. */
export const EPT_VIOLATION_PROT_READ = 1 << 3;
export const EPT_VIOLATION_PROT_WRITE = 1 << 4;
export const EPT_VIOLATION_PROT_EXEC = 1 << 5;
/** Bit 6 (MBEC only): the frame's user-mode execute permission. */
export const EPT_VIOLATION_PROT_USER_EXEC = 1 << 6;
/** Bit 7: the guest-linear-address field is valid. */
export const EPT_VIOLATION_GVA_IS_VALID = 1 << 7;
/** Bit 8 (with bit 7): the access was to the final translation, not to a paging-structure entry or an A/D update. */
export const EPT_VIOLATION_GVA_TRANSLATED = 1 << 8;
/** Bits 9, 10, 11 (with bits 7 and 8; "advanced VM-exit information"): user-mode linear address, writable, execute-disable. */
export const EPT_VIOLATION_GVA_USER = 1 << 9;
export const EPT_VIOLATION_GVA_WRITABLE = 1 << 10;
export const EPT_VIOLATION_GVA_NX = 1 << 11;

export class SecondStage {
  /** Permissions per frame (S2_* bits); all frames start with S2_ALL. */
  readonly perms: Uint8Array;
  /** Mode-based execute control. */
  mbec = false;
  /** Whether any frame has less than S2_ALL: when false the slow paths skip every check. */
  active = false;
  /** Called after every change of permissions or of MBEC (each CPU over the memory flushes its TLB). */
  readonly onChange: (() => void)[] = [];
  private restricted = 0;

  constructor(frameCount: number) {
    this.perms = new Uint8Array(frameCount).fill(S2_ALL);
  }

  /** Sets `count` frames from `first` (clipped to memory) to `perms`. */
  protect(first: number, count: number, perms: number): void {
    checkPerms(perms);
    this.update(first, count, () => perms);
  }

  /** Sets each of `count` frames from `first` (clipped to memory) to `permsOf(frame)`, with one flush. */
  update(first: number, count: number, permsOf: (frame: number) => number): void {
    if (!Number.isInteger(first) || !Number.isInteger(count) || first < 0 || count < 0) {
      throw new RangeError(`second stage: frames must be non-negative integers, got ${first}+${count}`);
    }
    const p = this.perms;
    const end = Math.min(first + count, p.length);
    for (let f = first; f < end; f++) {
      const perms = permsOf(f);
      checkPerms(perms);
      const was = p[f]!;
      if (was === perms) continue;
      if (was === S2_ALL) this.restricted++;
      else if (perms === S2_ALL) this.restricted--;
      p[f] = perms;
    }
    this.active = this.restricted !== 0;
    this.changed();
  }

  setMbec(on: boolean): void {
    if (this.mbec === on) return;
    this.mbec = on;
    this.changed();
  }

  /** Permissions of the frame holding `gpa`; addresses beyond memory (the unbacked bus) are unrestricted. */
  at(gpa: number): number {
    return this.perms[Math.floor(gpa / 4096)] ?? S2_ALL;
  }

  private changed(): void {
    for (const listener of this.onChange) listener();
  }
}

function checkPerms(perms: number): void {
  if (!Number.isInteger(perms) || perms < 0 || perms > S2_ALL) {
    throw new RangeError(`second stage: permissions must be a combination of R, W, X, UX (0..15), got ${perms}`);
  }
}

/**
 * Bits 3..6 of the qualification for a frame's permissions. Without MBEC, bit 6 is undefined by
 * the SDM; the model reports 0 there (as the pre-MBEC SDM's "reserved" reads).
 */
export function protectionBits(perms: number, mbec: boolean): number {
  return (perms & S2_READ ? EPT_VIOLATION_PROT_READ : 0) |
    (perms & S2_WRITE ? EPT_VIOLATION_PROT_WRITE : 0) |
    (perms & S2_EXEC ? EPT_VIOLATION_PROT_EXEC : 0) |
    (mbec && (perms & S2_USER_EXEC) !== 0 ? EPT_VIOLATION_PROT_USER_EXEC : 0);
}

/**
 * The permission a fetch needs: without MBEC, X; with MBEC, X for a supervisor-mode linear
 * address (U/S = 0 in some paging-structure entry of the walk) and UX for a user-mode one —
 * the page's classification, not the CPL (SDM vol. 3C §29.3.3.2; docs/memory-protection.md §2.2).
 */
export function fetchPermission(mbec: boolean, userPage: boolean): number {
  return mbec && userPage ? S2_USER_EXEC : S2_EXEC;
}
