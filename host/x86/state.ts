/**
 * The CPU's architectural register state as a hypervisor reads and loads it — the part a VMX
 * guest-state area holds (Intel SDM vol. 3C, "Guest-State Area"; vol. 1 §3.4 for the general
 * registers, vol. 3A §3.4.3 for the segment registers and their descriptor caches). 64-bit
 * quantities are bigint here, at the edge of the core; inside, the core keeps its own fast
 * representation. KVM's ioctl structs over this state are host/kvm's (host/kvm/api/regs.ts).
 */

/** The general-purpose registers, RIP and RFLAGS. */
export interface GeneralRegisters {
  rax: bigint; rbx: bigint; rcx: bigint; rdx: bigint;
  rsi: bigint; rdi: bigint; rsp: bigint; rbp: bigint;
  r8: bigint; r9: bigint; r10: bigint; r11: bigint;
  r12: bigint; r13: bigint; r14: bigint; r15: bigint;
  rip: bigint; rflags: bigint;
}

/** GPR names in encoding order: index i is the register that ModRM/REX number i selects. */
export const GPR_NAMES = [
  'rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15',
] as const;
export type GprName = (typeof GPR_NAMES)[number];

/** GPR numbers in the same order, as GuestCpu.readGpr/writeGpr take them (8..15 are R8..R15). */
export const RAX = 0;
export const RCX = 1;
export const RDX = 2;
export const RBX = 3;
export const RSP = 4;
export const RBP = 5;
export const RSI = 6;
export const RDI = 7;

/** A segment register: the selector plus the descriptor cache loaded from it. */
export interface Segment {
  base: bigint;
  limit: number;
  selector: number;
  /** descriptor type field (4 bits) */
  type: number;
  present: boolean;
  dpl: number;
  /** D/B: default operation size */
  db: boolean;
  /** S: 1 = code/data, 0 = system */
  s: boolean;
  /** L: 64-bit code segment */
  l: boolean;
  /** G: granularity */
  g: boolean;
  avl: boolean;
  unusable: boolean;
}

/** GDTR or IDTR. */
export interface DescriptorTable {
  base: bigint;
  limit: number;
}

/** The system registers: segment registers, TR, LDTR, GDTR, IDTR, CR0–CR4, CR8, EFER, IA32_APIC_BASE. */
export interface SystemRegisters {
  cs: Segment; ds: Segment; es: Segment; fs: Segment; gs: Segment; ss: Segment;
  tr: Segment; ldt: Segment;
  gdt: DescriptorTable;
  idt: DescriptorTable;
  cr0: bigint;
  cr2: bigint;
  cr3: bigint;
  cr4: bigint;
  cr8: bigint;
  efer: bigint;
  apicBase: bigint;
}

/** Segment registers by their encoding number (ES=0, CS=1, SS=2, DS=3, FS=4, GS=5). */
export const SEGMENT_NAMES = ['es', 'cs', 'ss', 'ds', 'fs', 'gs'] as const;
export type SegmentName = (typeof SEGMENT_NAMES)[number];
