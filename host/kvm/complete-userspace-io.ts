/**
 * The one way an exit goes to user space and comes back (docs/kvm-exits.md): the exit handler
 * fills its kvm_run member and calls `VcpuArch.exitToUserSpace(reason, completion)`, which names
 * the exit and stores the completion in `vcpu->arch.complete_userspace_io`, as the kernel's
 * handlers do (kvm_msr_user_space(), kvm_fast_pio(), …). The next KVM_RUN (vcpu.ts run()):
 *
 *   1. calls the completion's `checkReply`, if it has one, before anything changes;
 *   2. loads the dirty sync registers (sync-regs.ts);
 *   3. clears complete_userspace_io and calls the completion — kvm_arch_vcpu_ioctl_run()'s
 *      `cui = vcpu->arch.complete_userspace_io; vcpu->arch.complete_userspace_io = NULL; r = cui(vcpu)`;
 *   4. runs the guest, unless the completion exited to user space again.
 * An INIT (kvm_vcpu_reset()) drops a stored completion unrun.
 */
import type { VcpuArch } from './vcpu-arch.js';

export interface CompleteUserspaceIo {
  /**
   * Finishes the instruction that exited, from what user space left in kvm_run (retire it, load
   * a result, inject a fault). Returns true when it has itself set up another exit to user space
   * (the kernel's cui() returning 0: e.g. a debug exit after the instruction retires), in which
   * case KVM_RUN returns that exit without running the guest.
   */
  (v: VcpuArch): boolean;
  /**
   * MODEL DECISION: the C fields of kvm_run cannot hold what a JavaScript object can, so a
   * completion that reads user space's reply checks it here first — and throws KvmError EINVAL
   * naming the field — before KVM_RUN changes anything (before the dirty sync registers are
   * loaded, too): a refused reply leaves the vCPU, and the stored completion, as they were.
   * It must not change any state.
   */
  checkReply?: (v: VcpuArch) => void;
}
