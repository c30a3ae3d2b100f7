/**
 * The VMX basic exit reason of each core intercept, by the name the kernel's kvm_exit
 * tracepoint prints (VMX_EXIT_REASONS, arch/x86/include/uapi/asm/vmx.h): the intercept plays
 * the part of a VM exit (host/x86/intercept.ts), and naming it is KVM's business.
 */
import type { Intercept, InterceptKind } from '../x86/intercept.js';

export const VMX_EXIT_NAMES: Readonly<Record<InterceptKind, string>> = {
  mov_to_cr: 'CR_ACCESS',
  mov_from_cr: 'CR_ACCESS',
  clts: 'CR_ACCESS',
  lmsw: 'CR_ACCESS',
  rdmsr: 'MSR_READ',
  wrmsr: 'MSR_WRITE',
  hypercall: 'VMCALL',
  cpuid: 'CPUID',
  hlt: 'HLT',
  io: 'IO_INSTRUCTION',
  exception: 'EXCEPTION_NMI',
  triple_fault: 'TRIPLE_FAULT',
  ept_violation: 'EPT_VIOLATION',
  // The instruction budget plays the part of the host interrupt that ends a guest's time slice.
  budget: 'EXTERNAL_INTERRUPT',
  invalid_guest_state: 'INVALID_STATE',
  // LGDT/LIDT; LLDT/LTR are LDTR_TR (vmxExitName()).
  descriptor_table: 'GDTR_IDTR',
};

/** The exit reason's name for one intercept: descriptor-table loads split into VMX's two reasons (46, 47). */
export function vmxExitName(ic: Intercept): string {
  if (ic.kind === 'descriptor_table' && (ic.insn === 'lldt' || ic.insn === 'ltr')) return 'LDTR_TR';
  return VMX_EXIT_NAMES[ic.kind];
}
