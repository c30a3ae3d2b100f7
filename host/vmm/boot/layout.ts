/**
 * Where the boot image puts things in guest-physical memory. Memory is identity-mapped, so
 * each address here is both the guest-physical and the guest-linear address.
 *
 *   0x0000_0000  null page               not present: a NULL dereference faults
 *   0x0000_1000  PML4
 *   0x0000_2000  PDPT                    one entry per GiB of memory (at most 4)
 *   0x0000_3000  PD0..PD3                2 MiB leaves, except 0-2 MiB (PT0) — 0x3000..0x6fff
 *   0x0000_7000  PT0                     4 KiB leaves for the first 2 MiB
 *   0x0000_8000  GDT                     Linux's selector layout, then one TSS descriptor per vCPU
 *   0x0000_9000  IDT                     256 interrupt gates, all on IST1
 *   0x0000_a000  TSSs                    128 bytes per vCPU (0xa000..0xbfff)
 *   0x0000_d000  read-only data page     supervisor, read-only: what CR0.WP protects
 *   0x0000_e000  IDT stubs               16 bytes per vector (supervisor, read-only, executable)
 *   0x0000_f000  kernel code             the common stub body, the done handler, op templates
 *   0x0001_0000  kernel stacks           4 KiB per vCPU (TSS.RSP0)
 *   0x0005_0000  exception stacks        4 KiB per vCPU (TSS.IST1); the fault record at the top
 *   0x0009_0000  kernel scratch          supervisor RW, NX
 *   0x000f_e000  boot information        the command line, then a 64-byte block per vCPU (pinbox run)
 *   0x0010_0000  kernel exec area        supervisor RWX, one slot per vCPU, for raw CPL0 code
 *   0x0020_0000  user region (2 MiB)     user RWX: user op templates, user exec slots, user stacks
 *   0x0040_0000  the rest of memory      supervisor RW, NX, 2 MiB leaves
 */

export const PAGE = 0x1000;
export const MIB = 0x10_0000;

export const NULL_PAGE = 0x0000;
export const PML4 = 0x1000;
export const PDPT = 0x2000;
export const PD_BASE = 0x3000;
export const PT0 = 0x7000;
export const GDT = 0x8000;
export const IDT = 0x9000;
export const TSS_BASE = 0xa000;
export const TSS_STRIDE = 128;
export const RODATA = 0xd000;
export const STUBS = 0xe000;
export const STUB_STRIDE = 16;
export const KERNEL_TEXT = 0xf000;
export const KERNEL_STACKS = 0x1_0000;
export const EXCEPTION_STACKS = 0x5_0000;
export const KERNEL_SCRATCH = 0x9_0000;
export const KERNEL_SCRATCH_END = 0x10_0000;
export const KERNEL_EXEC = 0x10_0000;
export const KERNEL_EXEC_END = 0x20_0000;
export const USER_REGION = 0x20_0000;
export const USER_REGION_END = 0x40_0000;
/** User op templates live in the first page of the user region. */
export const USER_TEXT = USER_REGION;
export const USER_EXEC = USER_REGION + PAGE;
/** User stacks: 4 KiB per vCPU, taken from the top of the user region. */
export const USER_STACKS_END = USER_REGION_END;
export const USER_EXEC_END = USER_STACKS_END - 64 * PAGE;
export const HIGH_MEMORY = 0x40_0000;

/** Code of the boot image (stubs, kernel text, user text): the VMM's own, not the guest's. */
export function isBootText(address: bigint): boolean {
  return (address >= STUBS && address < KERNEL_TEXT + PAGE) || (address >= USER_TEXT && address < USER_TEXT + PAGE);
}

export const MAX_VCPUS = 64;
/** The boot image needs everything up to the end of the user region. */
export const MIN_MEMORY = HIGH_MEMORY;
/** Four page directories map 4 GiB, the most PhysicalMemory holds. */
export const MAX_MEMORY = 4 * 1024 * MIB;

/**
 * GDT selectors, as Linux lays them out (arch/x86/include/asm/segment.h), so that STAR can be
 * programmed as Linux does: SYSCALL loads CS = 0x10, SS = 0x18; SYSRET64 loads CS = 0x23 + 16
 * = 0x33 and SS = 0x23 + 8 = 0x2b.
 */
export const SELECTORS = {
  /**
   * A second 64-bit kernel code descriptor, in the place the conventional kernel GDT (null,
   * code 0x08, data 0x10) has its code: the boot IDT's gates name it, so a guest that installs a
   * GDT of that layout keeps the boot IDT, its fault record and its fix-ups (docs/boot.md §1.1).
   */
  idtCs: 0x08,
  kernelCs: 0x10,
  kernelDs: 0x18,
  user32Cs: 0x23,
  userDs: 0x2b,
  userCs: 0x33,
  /** TSS descriptors (16 bytes each) start at GDT entry 8. */
  firstTss: 0x40,
} as const;

export function tssSelector(vcpu: number): number {
  return SELECTORS.firstTss + 16 * vcpu;
}

/** The GDT limit for `vcpus` TSS descriptors. */
export function gdtLimit(vcpus: number): number {
  return SELECTORS.firstTss + 16 * vcpus - 1;
}

export function tssAddress(vcpu: number): number {
  return TSS_BASE + TSS_STRIDE * vcpu;
}

export function kernelStackTop(vcpu: number): number {
  return KERNEL_STACKS + (vcpu + 1) * PAGE;
}

export function userStackTop(vcpu: number): number {
  return USER_STACKS_END - vcpu * PAGE;
}

/**
 * The fault record sits at the top of each vCPU's exception stack; TSS.IST1 points just below
 * it, so the stubs find it at a fixed offset from the stack they run on, whatever the guest did
 * to RSP, GS or anything else before the fault (see stubs.ts).
 */
export const FAULT_RECORD_SIZE = 64;
export const FAULT_RECORD = {
  /** u64: incremented by every exception or interrupt the stubs record */
  count: 0,
  /** u64: vector of the last one */
  vector: 8,
  /** u64: its error code (0 for vectors that push none) */
  errorCode: 16,
  /** u64: where the stub resumes the interrupted context; 0 = halt in the stub instead */
  fixup: 24,
  /** u64: RIP of the interrupted context (the faulting instruction for a fault) */
  rip: 32,
} as const;

export function faultRecordAddress(vcpu: number): number {
  return EXCEPTION_STACKS + (vcpu + 1) * PAGE - FAULT_RECORD_SIZE;
}

/** IST1 for a vCPU: the exception stack grows down from just below its fault record. */
export function exceptionStackTop(vcpu: number): number {
  return faultRecordAddress(vcpu);
}

/** A per-vCPU slot of an exec area: raw code of one request is copied there. */
export interface CodeSlot {
  readonly base: number;
  readonly size: number;
}

function slot(start: number, end: number, vcpus: number, vcpu: number): CodeSlot {
  const size = Math.floor((end - start) / vcpus / PAGE) * PAGE;
  return { base: start + vcpu * size, size };
}

export function kernelExecSlot(vcpus: number, vcpu: number): CodeSlot {
  return slot(KERNEL_EXEC, KERNEL_EXEC_END, vcpus, vcpu);
}

export function userExecSlot(vcpus: number, vcpu: number): CodeSlot {
  return slot(USER_EXEC, USER_EXEC_END, vcpus, vcpu);
}
