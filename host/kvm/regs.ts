/**
 * The register structs of the KVM API (arch/x86/include/uapi/asm/kvm.h), as KVM_GET_REGS /
 * KVM_SET_REGS, KVM_GET_SREGS / KVM_SET_SREGS and kvm_run.s.regs carry them; 64-bit fields are
 * bigint. Their fields are the architectural registers the CPU holds (host/x86/state.ts), so the
 * model hands them over as the core reads them.
 */
import type {
  DescriptorTable as DescriptorTableRegister, GeneralRegisters, Segment as SegmentRegister, SystemRegisters,
} from '../x86/state.js';

/** `struct kvm_regs` */
export type Regs = GeneralRegisters;
/** `struct kvm_segment` */
export type Segment = SegmentRegister;
/** `struct kvm_dtable` */
export type DescriptorTable = DescriptorTableRegister;
/** `struct kvm_sregs`, minus interrupt_bitmap (pinbox models no external interrupts). */
export type Sregs = SystemRegisters;
