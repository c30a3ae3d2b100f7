/**
 * Exits held for control clients (PROTOCOL.md §6, holdExit / releaseExit): what a VMM does when
 * the thread of a vCPU whose KVM_RUN returned waits before it fills in kvm_run and calls
 * KVM_RUN again, while other threads act on the VM — install a new MSR filter, run another
 * vCPU. docs/msr-filter.md §7 case 32 is such a moment: the filter changes while the vCPU is
 * inside KVM_EXIT_X86_RDMSR, and user space's reply still completes the read (§2.4: the filter
 * is not checked again at completion). Nothing is simulated: the vCPU's operation really is
 * suspended inside that exit, exactly where VcpuRunner asks user space for its answer.
 *
 *   holdExit     arms a hold on (VM, vCPU): the next user-space exit of the guest operations
 *                that vCPU receives from then on is held, after the VMM has recorded it and
 *                before it answers it; the `exit_held` event says so;
 *   releaseExit  the held operation goes on: the exit is answered as any exit is (the reply
 *                setMsrExitReply set, or the policy) and the vCPU runs again. Releasing a hold
 *                that has not caught an exit yet drops it.
 *
 * A hold belongs to the control connection that made it: when that connection closes, its
 * holds are dropped and its held exits go on, so a client that dies cannot leave a vCPU parked
 * for ever. Destroying or replacing the VM does the same for the VM's holds.
 */
import type { Machine } from '../machine.js';
import type { PerformOptions } from '../run/vcpu-runner.js';
import type { UserSpaceExit } from '../run/user-space-exit.js';

export type ReleaseCause = 'control' | 'disconnected' | 'vm_removed';

/** The holds of one vCPU: one armed for its next exit, and the exit held now. */
interface VcpuHolds {
  /** The control connection that armed a hold not yet caught. */
  armedBy?: number;
  held?: { readonly owner: number; readonly reason: string; readonly resume: () => void };
}

export class ExitHolds {
  private readonly holds = new Map<Machine, Map<number, VcpuHolds>>();
  /** One PerformOptions per (VM, vCPU), made once: its hook looks the hold up when an exit comes. */
  private readonly options = new Map<Machine, Map<number, PerformOptions>>();

  /** Arms a hold for the next exit on (VM, vCPU), by control connection `owner`. */
  arm(machine: Machine, vcpu: number, owner: number): void {
    machine.vcpu(vcpu); // not_found for a vCPU the VM lacks
    let vm = this.holds.get(machine);
    if (vm === undefined) this.holds.set(machine, (vm = new Map()));
    let holds = vm.get(vcpu);
    if (holds === undefined) vm.set(vcpu, (holds = {}));
    holds.armedBy = owner;
  }

  /**
   * The options a guest operation on (VM, vCPU) runs with: undefined unless a hold is armed
   * there — the guest endpoint's hot path pays a size check while nobody holds anything.
   */
  optionsFor(machine: Machine, vcpu: number): PerformOptions | undefined {
    if (this.holds.size === 0 || this.holds.get(machine)?.get(vcpu)?.armedBy === undefined) return undefined;
    let byVcpu = this.options.get(machine);
    if (byVcpu === undefined) this.options.set(machine, (byVcpu = new Map()));
    let options = byVcpu.get(vcpu);
    if (options === undefined) byVcpu.set(vcpu, (options = { onExit: (exit) => this.catchExit(machine, vcpu, exit) }));
    return options;
  }

  /** Lets the exit held on (VM, vCPU) go on — true — or, with none held, drops an armed hold: false. */
  release(machine: Machine, vcpu: number, cause: ReleaseCause): boolean {
    const holds = this.holds.get(machine)?.get(vcpu);
    if (holds === undefined) return false;
    const held = holds.held;
    if (held === undefined) holds.armedBy = undefined;
    else holds.held = undefined;
    this.forgetIfEmpty(machine, vcpu, holds);
    if (held === undefined) return false;
    const log = machine.log;
    if (log.wants('exit_released', machine.name)) log.emit('exit_released', machine.name, { reason: held.reason, cause }, vcpu);
    held.resume();
    return true;
  }

  /** The VM is going away: every hold on it ends. */
  releaseVm(machine: Machine): void {
    for (const [vcpu, holds] of [...(this.holds.get(machine) ?? [])]) {
      holds.armedBy = undefined;
      this.release(machine, vcpu, 'vm_removed');
    }
    this.options.delete(machine);
  }

  /** A control connection closed: the holds it made end. */
  releaseOwner(owner: number): void {
    for (const [machine, vm] of [...this.holds]) {
      for (const [vcpu, holds] of [...vm]) {
        if (holds.armedBy === owner) holds.armedBy = undefined;
        if (holds.held?.owner === owner) this.release(machine, vcpu, 'disconnected');
        else this.forgetIfEmpty(machine, vcpu, holds);
      }
    }
  }

  /** The runner's hook at a user-space exit: parks the operation if a hold is armed. */
  private catchExit(machine: Machine, vcpu: number, exit: UserSpaceExit): Promise<void> | undefined {
    const holds = this.holds.get(machine)?.get(vcpu);
    const owner = holds?.armedBy;
    if (holds === undefined || owner === undefined) return undefined;
    holds.armedBy = undefined;
    return new Promise<void>((resume) => {
      holds.held = { owner, reason: exit.reason, resume };
      const log = machine.log;
      if (log.wants('exit_held', machine.name)) {
        const rip = machine.vcpu(vcpu).vcpu.kvmRun.s.regs.rip;
        log.emit('exit_held', machine.name, { reason: exit.reason, exit_reason: exit.exitReason }, vcpu, rip);
      }
      log.flush();
    });
  }

  private forgetIfEmpty(machine: Machine, vcpu: number, holds: VcpuHolds): void {
    if (holds.armedBy !== undefined || holds.held !== undefined) return;
    const vm = this.holds.get(machine);
    if (vm?.get(vcpu) !== holds) return;
    vm.delete(vcpu);
    if (vm.size === 0) this.holds.delete(machine);
  }
}
