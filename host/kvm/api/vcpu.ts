/**
 * The vCPU file descriptor (KVM_CREATE_VCPU's fd), in the manner of rust-vmm's kvm-ioctls
 * `VcpuFd`: KVM_RUN and the vCPU ioctls pinbox uses. Refusals are KvmError with the errno.
 */
import type { GuestCpuid, GuestCpuidOptions } from './cpuid.js';
import type { ExceptionEvent } from './memory-fault.js';
import type { RegInterceptSpec } from './cr-hardening.js';
import type { KvmRun, VcpuExit } from './exits.js';
import type { ModelVcpu } from './model.js';
import type { Regs, Sregs } from './regs.js';

/** An MSR for KVM_GET_MSRS / KVM_SET_MSRS (`struct kvm_msr_entry`). */
export interface MsrEntry {
  index: number;
  data: bigint;
}

/** How long one KVM_RUN may go on; with neither, as long as the guest does not exit. */
export interface RunOptions {
  /**
   * The model only (ModelVcpu): guest instructions this call may retire before it returns
   * KVM_EXIT_INTR, as if a signal had interrupted KVM_RUN. A fault the core delivers costs a
   * unit too, and an intercept that spends nothing still costs one, so a run always ends; an
   * exception loop ends it at once (ModelVcpu.exceptionLoop says which). A backend that cannot
   * count instructions refuses it (EINVAL).
   */
  budget?: number;
  /**
   * When KVM_RUN must have returned: CLOCK_MONOTONIC in ns, as `process.hrtime.bigint()` gives
   * it. Once it has passed, run() returns KVM_EXIT_INTR with `timed_out` set. The real backend
   * arms a timer whose signal interrupts KVM_RUN (and gives a run without one a deadline of its
   * own); the model looks at the clock between slices of guest work, each about a millisecond
   * of it (host/kvm/deadline-watch.ts).
   */
  deadline?: bigint;
}

/**
 * KVM_SET_GUEST_DEBUG's `struct kvm_guest_debug` (x86): KVM_GUESTDBG_* flags, and with
 * KVM_GUESTDBG_USE_HW_BP the debug registers the debugger puts in force (DR0-DR3 and DR7 of
 * debugreg[8]; absent: zeros).
 */
export interface GuestDebug {
  readonly control: number;
  readonly debugreg?: readonly bigint[];
}

export type { ExceptionEvent };

export interface KvmVcpu {
  readonly id: number;
  /** kvm_run: what `run()` returns, and where user space writes its replies. */
  readonly kvmRun: KvmRun;
  /** KVM_RUN: finishes the completion the last exit left, runs the guest until an exit to user space. */
  run(options?: RunOptions): VcpuExit;
  /** KVM_GET_REGS / KVM_SET_REGS */
  getRegs(): Regs;
  setRegs(regs: Regs): void;
  /** KVM_GET_SREGS / KVM_SET_SREGS */
  getSregs(): Sregs;
  setSregs(sregs: Sregs): void;
  /** KVM_GET_MSRS: host-initiated reads; stops at the first MSR KVM cannot read. */
  getMsrs(indices: readonly number[]): MsrEntry[];
  /** KVM_SET_MSRS: host-initiated writes; returns how many were written before the first failure. */
  setMsrs(entries: readonly MsrEntry[]): number;
  /** KVM_GET_CPUID2, by features. */
  getCpuid(): GuestCpuid;
  /** KVM_SET_CPUID2 by features: those not named keep their value. */
  setCpuid(options: GuestCpuidOptions): void;
  /**
   * KVM_SET_GUEST_DEBUG: a debugger's breakpoints (INT3 it placed, hardware ones) and single
   * step, which stop the guest with KVM_EXIT_DEBUG instead of reaching its IDT.
   */
  setGuestDebug(debug: GuestDebug): void;
  /**
   * KVM_SET_VCPU_EVENTS, its exception part only: queues `event` for delivery at the next
   * KVM_RUN, in place of any exception queued (the ioctl replaces the vCPU's exception state).
   * How a VMM reflects into the guest the #PF of a KVM_EXIT_MEMORY_FAULT it answered (memory-fault.ts).
   */
  injectException(event: ExceptionEvent): void;
  /**
   * KVM_GET_VCPU_EVENTS, its exception part: the exception queued for delivery at the next
   * KVM_RUN (injected or pending), or undefined. After a KVM_EXIT_MEMORY_FAULT met during an
   * event's delivery, that event (vmx_complete_interrupts() queued it again): a VMM reflecting the
   * fault merges with it as kvm_multiple_exception() does (memory-fault.ts).
   */
  queuedException(): ExceptionEvent | undefined;
  /**
   * KVM_SET_VCPU_EVENTS with KVM_VCPUEVENT_VALID_TRIPLE_FAULT and triple_fault.pending
   * (KVM_CAP_X86_TRIPLE_FAULT_EVENT): the next KVM_RUN returns KVM_EXIT_SHUTDOWN before the guest
   * runs (KVM_REQ_TRIPLE_FAULT). What a reflected fault that meets a #DF becomes.
   */
  injectTripleFault(): void;
  /** KVM_ENABLE_CAP on the vCPU. */
  enableCap(cap: number, args?: readonly (bigint | number)[], flags?: number): void;
  /**
   * PINBOX_SET_REG_INTERCEPTS / _GET_, pinbox's extension (docs/register-intercepts.md), present
   * where KVM_CAP_PINBOX_REG_INTERCEPTS is: this vCPU's secure register intercepts, all checked
   * before any is changed.
   */
  setRegisterIntercepts?(spec: RegInterceptSpec): void;
  getRegisterIntercepts?(): RegInterceptSpec;
  /** What only the model can do; undefined on other backends (model.ts). */
  readonly model?: ModelVcpu;
}
