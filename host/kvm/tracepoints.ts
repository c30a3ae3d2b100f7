/**
 * KVM's tracepoints (arch/x86/kvm/trace.h), with the kernel's event and field names, plus
 * `kvm_heki_blocked` for Heki's `pr_warn_ratelimited("heki: Blocked CRn update: 0x%lx")`
 * and `kvm_msr_ignored` for ignore_msrs' `kvm_pr_unimpl("ignored rdmsr/wrmsr ...")`.
 *
 * Zero cost when nobody listens: emitters test `active` (one property load) before they
 * build the event object.
 */

export interface TracepointEvents {
  /** exit_reason: the VMX basic exit reason's name (vmx-exit-reasons.ts), as trace.h prints it. */
  kvm_exit: { vcpu_id: number; exit_reason: string; guest_rip: bigint };
  kvm_userspace_exit: { vcpu_id: number; reason: number; errno: number };
  kvm_msr: { vcpu_id: number; write: boolean; ecx: number; data: bigint; exception: boolean };
  kvm_cr: { vcpu_id: number; rw: 'read' | 'write'; cr: number; val: bigint };
  kvm_hypercall: { vcpu_id: number; nr: bigint; a0: bigint; a1: bigint; a2: bigint; a3: bigint };
  kvm_cpuid: { vcpu_id: number; function: number; index: number; rax: number; rbx: number; rcx: number; rdx: number };
  kvm_pio: { vcpu_id: number; rw: 'in' | 'out'; port: number; size: number; count: number; val: number };
  kvm_inj_exception: { vcpu_id: number; exception: number; has_error: boolean; error_code: number };
  kvm_heki_blocked: { vcpu_id: number; cr: number; val: bigint; message: string };
  kvm_msr_ignored: { vcpu_id: number; write: boolean; ecx: number; data: bigint; message: string };
}

export type TracepointName = keyof TracepointEvents;
type Listener<K extends TracepointName> = (event: TracepointEvents[K]) => void;

export class Tracepoints {
  /** True while anyone listens to any tracepoint. */
  active = false;
  private readonly listeners = new Map<TracepointName, Set<Listener<never>>>();

  /** Listens to one tracepoint; returns the function that stops listening. */
  on<K extends TracepointName>(name: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    this.active = true;
    return () => {
      set.delete(listener as Listener<never>);
      if (set.size === 0) this.listeners.delete(name);
      this.active = this.listeners.size > 0;
    };
  }

  /** Whether `name` has a listener (to skip building an event nobody reads). */
  enabled(name: TracepointName): boolean {
    return this.active && this.listeners.has(name);
  }

  emit<K extends TracepointName>(name: K, event: TracepointEvents[K]): void {
    const set = this.listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) (listener as Listener<K>)(event);
  }
}
