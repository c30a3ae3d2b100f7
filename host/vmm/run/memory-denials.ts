/**
 * Accesses a memory protection refused (docs/memory-protection.md §7), as the VMM learns
 * of them by either path — the KVM_EXIT_MEMORY_FAULT it answers (delivery "exit") or KVM's
 * kvm_memory_denial trace when KVM injected the #PF itself (delivery "inject",
 * tracepoint-bridge.ts) — recorded once each as memory_denial, with what the policy's
 * memory.onViolation makes the VMM do.
 */
import { hex } from '../../../protocol/notation.js';
import { kvmMultipleException, memoryFaultPageFault, type ExceptionEvent } from '../../kvm/api/memory-fault.js';
import type { KvmVcpu } from '../../kvm/api/vcpu.js';
import type { KvmVm } from '../../kvm/api/vm.js';
import { KVM_CAP_X86_TRIPLE_FAULT_EVENT } from '../../../protocol/abi.js';
import { VmmError } from '../errors.js';
import type { EventLog } from '../events/index.js';
import { regionName, type MemoryPolicy, type OnDenial } from '../policy/index.js';
import type { MemoryAccess } from './user-space-exit.js';

/** One refused access, whichever path brought it. */
export interface MemoryDenial {
  /** The page, page-aligned (as kvm_run.memory_fault reports it; the bridge aligns the trace's address). */
  readonly gpa: bigint;
  readonly gva?: bigint;
  readonly access: MemoryAccess;
  readonly qualification: number;
}

export class MemoryDenials {
  constructor(
    private readonly vm: string,
    private readonly log: EventLog,
    private readonly policy: MemoryPolicy,
  ) {}

  /** What the VMM does after a denial: the policy's memory.onViolation. */
  get onViolation(): OnDenial {
    return this.policy.onViolation;
  }

  /** Records the memory_denial event (the guest at `rip`, the faulting instruction) and returns the action. */
  record(vcpu: number, d: MemoryDenial, rip: bigint | undefined, path: 'exit' | 'inject'): OnDenial {
    const action = this.policy.onViolation;
    if (this.log.wants('memory_denial', this.vm)) {
      const name = regionName(this.policy, d.gpa);
      this.log.emit('memory_denial', this.vm, {
        gpa: d.gpa, ...(d.gva !== undefined && { gva: d.gva }), access: d.access, path, action, qualification: d.qualification,
        ...(name !== undefined && { name }),
      }, vcpu, rip);
    }
    return action;
  }

  /** The operation's failure under onViolation "kill", naming the page and the access. */
  killed(vcpu: number, d: MemoryDenial): VmmError {
    const name = regionName(this.policy, d.gpa);
    const where = `GPA ${hex(d.gpa)}${name === undefined ? '' : ` ("${name}")`}${d.gva === undefined ? '' : `, linear ${hex(d.gva)}`}`;
    return new VmmError('vm_killed', `VM "${this.vm}" was killed: vCPU ${vcpu}'s ${d.access} at ${where} was refused by a memory protection (memory.onViolation "kill")`);
  }
}

/** The #PF the VMM reflects into the guest after a KVM_EXIT_MEMORY_FAULT: the one KVM would have injected. */
export function reflectedPageFault(d: MemoryDenial): ExceptionEvent {
  return memoryFaultPageFault(d.qualification, d.gva);
}

/**
 * Reflects `event` into the guest as KVM would have queued it itself: KVM_SET_VCPU_EVENTS replaces
 * the vCPU's exception, and after an access refused during an event's delivery KVM has queued that
 * event again (vmx_complete_interrupts()), so the VMM reads it (KVM_GET_VCPU_EVENTS) and merges
 * as kvm_multiple_exception() does — #DF, or a triple fault after #DF (KVM_SET_VCPU_EVENTS takes
 * one once the VM has KVM_CAP_X86_TRIPLE_FAULT_EVENT). Replacing it instead would re-deliver the
 * #PF into the same refused push for ever, where KVM's own #PF ends in a shutdown.
 */
export function reflectException(vm: KvmVm, vcpu: KvmVcpu, event: ExceptionEvent): void {
  const merged = kvmMultipleException(vcpu.queuedException()?.vector, event);
  if (merged === 'triple_fault') {
    vm.enableCap(KVM_CAP_X86_TRIPLE_FAULT_EVENT, [1n]);
    vcpu.injectTripleFault();
  } else {
    vcpu.injectException(merged);
  }
}
