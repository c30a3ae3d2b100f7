/**
 * The register structs of the KVM API (arch/x86/include/uapi/asm/kvm.h), as KVM_GET_REGS /
 * KVM_SET_REGS, KVM_GET_SREGS / KVM_SET_SREGS and kvm_run.s.regs carry them; 64-bit fields are
 * bigint. Their fields are the architectural registers the CPU holds (host/x86/state.ts), so the
 * model hands them over as the core reads them.
 */
import type {
  DescriptorTable as DescriptorTableRegister, GeneralRegisters, Segment as SegmentRegister, SystemRegisters,
} from '../../x86/state.js';

/** `struct kvm_regs` */
export type Regs = GeneralRegisters;
/** `struct kvm_segment` */
export type Segment = SegmentRegister;
/** `struct kvm_dtable` */
export type DescriptorTable = DescriptorTableRegister;
/** `struct kvm_sregs`, minus interrupt_bitmap (pinbox models no external interrupts). */
export type Sregs = SystemRegisters;

/** `struct kvm_regs`'s fields in their order: the 16 GPRs, then RIP and RFLAGS. */
export const KVM_REGS_FIELDS = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
export type RegsField = (typeof KVM_REGS_FIELDS)[number];
/** The 16 general-purpose registers of `struct kvm_regs`. */
export type GprField = Exclude<RegsField, 'rip' | 'rflags'>;

/** A copy of any Regs (also of an accessor-backed kvm_run.s.regs) as a plain object. */
export function copyRegs(r: Regs): Regs {
  return {
    rax: r.rax, rbx: r.rbx, rcx: r.rcx, rdx: r.rdx, rsi: r.rsi, rdi: r.rdi, rsp: r.rsp, rbp: r.rbp,
    r8: r.r8, r9: r.r9, r10: r.r10, r11: r.r11, r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
    rip: r.rip, rflags: r.rflags,
  };
}
