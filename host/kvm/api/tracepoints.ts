/**
 * KVM's tracepoints (arch/x86/kvm/trace.h) with the kernel's event and field names, plus
 * `kvm_heki_blocked` for Heki's `pr_warn_ratelimited("heki: Blocked CRn update: 0x%lx")` and
 * `kvm_msr_ignored` for ignore_msrs' `kvm_pr_unimpl("ignored rdmsr/wrmsr ...")`, and
 * `kvm_memory_denial` for every guest access a memory protection refused (with Heki's "heki:
 * Creating write/fetch #PF" wording when it is injected). The model fires
 * them (host/kvm/tracepoints.ts); a real kernel's are in tracefs, out of pinbox's reach.
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
  /** handle_ept_violation(): the GPA and the exit qualification, as trace.h's kvm_page_fault. */
  kvm_page_fault: { vcpu_id: number; guest_rip: bigint; fault_address: bigint; error_code: bigint };
  /** pinbox: a refused access, how it was delivered, and where (docs/memory-protection.md §3.3). */
  kvm_memory_denial: {
    vcpu_id: number; gpa: bigint; gva: bigint | undefined; access: 'read' | 'write' | 'fetch'; rip: bigint;
    qualification: number; delivery: 'exit' | 'inject'; message: string;
  };
  kvm_msr_ignored: { vcpu_id: number; write: boolean; ecx: number; data: bigint; message: string };
}

export type TracepointName = keyof TracepointEvents;

/** Where user space listens to tracepoints (the model's Kvm). */
export interface TracepointSource {
  /** True while anyone listens to a tracepoint that fires at ordinary intercepts (not only to kvm_memory_denial, a rare one). */
  readonly active: boolean;
  /** Listens to one tracepoint; returns the function that stops listening. */
  on<K extends TracepointName>(name: K, listener: (event: TracepointEvents[K]) => void): () => void;
}
