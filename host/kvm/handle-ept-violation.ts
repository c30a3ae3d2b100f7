/**
 * EPT-violation intercepts (VMX exit 48; the core's `ept_violation`): an access the second
 * stage refused because of a memory attribute or a Heki lock (memory-protection.ts). What KVM
 * does with it is the VM's policy (KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, docs/memory-protection.md §3.3):
 *   - exit (default): KVM_EXIT_MEMORY_FAULT with the page, its size and the access kind, as the
 *     VSM proposals do (kvm_mmu_prepare_memory_fault_exit(); 20240609154945.55332-17-nsaenz@amazon.com).
 *     Nothing is completed: re-entering KVM_RUN retries the access (api.rst). On a real kernel
 *     KVM_RUN returns -1 with errno EFAULT for this exit; the model's run() returns kvm_run as for
 *     every exit (docs/kvm-exits.md);
 *   - inject: a #PF into the guest, as both Heki RFCs did — the error code KVM derives from the
 *     qualification (__vmx_handle_ept_violation()) and CR2 = the guest linear address, or ~0 when
 *     there is none (vmx_fault_gva(), 20230505152046.6575-2-mic@digikod.net).
 * Either way the denial is traced (kvm_memory_denial), so that it reaches the VMM.
 */
import * as abi from '../../protocol/abi.js';
import type { Intercept } from '../x86/intercept.js';
import { kvmMultipleException, memoryFaultPageFault } from './api/memory-fault.js';
import type { VcpuArch } from './vcpu-arch.js';

type EptViolation = Extract<Intercept, { kind: 'ept_violation' }>;

const PAGE_SIZE = 4096n;

const ACCESS_FLAG = {
  read: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_READ,
  write: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE,
  fetch: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC,
} as const;

/** handle_ept_violation(): true when the violation goes to user space. */
export function handleEptViolation(v: VcpuArch, ic: EptViolation): boolean {
  const rip = v.cpu.getRip();
  const trace = v.vm.trace;
  if (trace.active) {
    trace.emit('kvm_page_fault', { vcpu_id: v.id, guest_rip: rip, fault_address: ic.gpa, error_code: BigInt(ic.qualification) });
  }
  const inject = v.vm.memoryProtection.faultPolicy === abi.PINBOX_MEMORY_FAULT_INJECT_PF;
  if (trace.enabled('kvm_memory_denial')) {
    const at = `0x${(ic.gva ?? ic.gpa).toString(16)}`;
    trace.emit('kvm_memory_denial', {
      vcpu_id: v.id, gpa: ic.gpa, gva: ic.gva, access: ic.access, rip, qualification: ic.qualification,
      delivery: inject ? 'inject' : 'exit',
      message: inject ? `heki: Creating ${ic.access} #PF at ${at}` : `memory fault: ${ic.access} at ${at} refused`,
    });
  }
  const vec = ic.vectoring;
  if (!inject) {
    // vmx_complete_interrupts(): an event whose delivery met the violation is queued again.
    if (vec !== undefined) v.injectException(vec.vector, vec.errorCode, vec.vector === abi.PF_VECTOR ? vec.address : undefined);
    const m = v.run.memory_fault;
    m.flags = ACCESS_FLAG[ic.access] | (ic.gva !== undefined ? abi.KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID : 0n);
    m.gpa = ic.gpa - (ic.gpa % PAGE_SIZE);
    m.size = PAGE_SIZE;
    m.gva = ic.gva ?? 0n;
    m.qualification = ic.qualification;
    return v.exitToUserSpace('KVM_EXIT_MEMORY_FAULT');
  }
  // kvm_multiple_exception(): the #PF meets the event being delivered, if any.
  const pf = kvmMultipleException(vec?.vector, memoryFaultPageFault(ic.qualification, ic.gva));
  if (pf === 'triple_fault') return v.exitToUserSpace('KVM_EXIT_SHUTDOWN');
  v.injectException(pf.vector, pf.errorCode, pf.payload);
  return false;
}
