/**
 * The #PF KVM makes of a refused access (docs/memory-protection.md §3.3): KVM injects it itself
 * under the inject policy (handle-ept-violation.ts), and a VMM that answered a
 * KVM_EXIT_MEMORY_FAULT reflects the same one into the guest (KvmVcpu.injectException), so that
 * both paths leave the guest in one state. Both Heki RFCs: the error code __vmx_handle_ept_violation()
 * derives from the qualification, and CR2 = the guest linear address, or ~0 when there is none
 * (vmx_fault_gva(), 20230505152046.6575-2-mic@digikod.net).
 */
import * as abi from '../../../protocol/abi.js';
import {
  EPT_VIOLATION_ACC_INSTR, EPT_VIOLATION_ACC_READ, EPT_VIOLATION_ACC_WRITE, EPT_VIOLATION_PROT_EXEC,
  EPT_VIOLATION_PROT_READ, EPT_VIOLATION_PROT_WRITE,
} from '../../x86/mmu/second-stage.js';

/** CR2 when the violation has no guest linear address (a page walk's own access): vmx_fault_gva()'s ~0. */
export const NO_GVA = 0xffff_ffff_ffff_ffffn;

/**
 * The #PF error code KVM makes of an EPT-violation qualification: a read becomes U/S (a historic
 * quirk of __vmx_handle_ept_violation()), a write W, a fetch I/D, any permission present P. The
 * GUEST_FINAL/GUEST_PAGE bits (32, 33) do not fit the 16-bit x86_exception.error_code of the
 * kernels Heki was built on, so the injected code never has them.
 */
export function eptViolationErrorCode(qualification: number): number {
  return ((qualification & EPT_VIOLATION_ACC_READ) !== 0 ? abi.PFERR_USER : 0) |
    ((qualification & EPT_VIOLATION_ACC_WRITE) !== 0 ? abi.PFERR_WRITE : 0) |
    ((qualification & EPT_VIOLATION_ACC_INSTR) !== 0 ? abi.PFERR_FETCH : 0) |
    ((qualification & (EPT_VIOLATION_PROT_READ | EPT_VIOLATION_PROT_WRITE | EPT_VIOLATION_PROT_EXEC)) !== 0 ? abi.PFERR_PRESENT : 0);
}

/** An exception as KVM_SET_VCPU_EVENTS queues it: vector, error code, and the payload (CR2 for #PF). */
export interface ExceptionEvent {
  readonly vector: number;
  readonly errorCode?: number;
  /** exception_payload (KVM_CAP_EXCEPTION_PAYLOAD): for #PF, the CR2 the delivery loads. */
  readonly payload?: bigint;
}

/** Contributory exceptions (SDM vol. 3A table 6-4; KVM's exception_class()): #DE, #TS, #NP, #SS, #GP. */
function contributory(vector: number): boolean {
  return vector === 0 || (vector >= 10 && vector <= 13);
}

/**
 * kvm_multiple_exception(): what exception `next` becomes when it is raised while `queued` (by
 * vector) is being delivered — SDM vol. 3A table 6-5. Anything meeting #DF is a triple fault; #PF
 * meeting #PF or a contributory one, or contributory meeting contributory, is #DF(0); otherwise
 * `next` replaces `queued` (re-executing the instruction raises the lost one again). Both the
 * inject path (handle-ept-violation.ts) and a VMM reflecting the #PF of a KVM_EXIT_MEMORY_FAULT
 * (KVM queued the event whose delivery met it again, vmx_complete_interrupts()) go through this.
 */
export function kvmMultipleException(queued: number | undefined, next: ExceptionEvent): ExceptionEvent | 'triple_fault' {
  if (queued === undefined) return next;
  if (queued === abi.DF_VECTOR) return 'triple_fault';
  const first = queued === abi.PF_VECTOR ? 'pf' : contributory(queued) ? 'contributory' : 'benign';
  const second = next.vector === abi.PF_VECTOR ? 'pf' : contributory(next.vector) ? 'contributory' : 'benign';
  if ((first === 'contributory' && second === 'contributory') || (first === 'pf' && second !== 'benign')) return { vector: abi.DF_VECTOR, errorCode: 0 };
  return next;
}

/** The #PF for a refused access with this qualification and guest linear address (undefined: none). */
export function memoryFaultPageFault(qualification: number, gva: bigint | undefined): ExceptionEvent {
  return { vector: abi.PF_VECTOR, errorCode: eptViolationErrorCode(qualification), payload: gva ?? NO_GVA };
}
