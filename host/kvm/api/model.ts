/**
 * What only the model can do, as extensions a VMM looks for: each fd of the model has a `model`
 * member (undefined on any other backend) with the calls no kernel offers — because the model
 * can count guest instructions, because Heki's pins have no ioctl, because its tracepoints fire
 * in the same process. A VMM that uses them checks for them and does without elsewhere.
 */
import type { ChainedException as CoreChainedException, IdtGateView as CoreIdtGateView } from '../../x86/intercept.js';

/** One exception of the chain that ended in a triple fault, with the IDT gate its delivery read. */
export type ChainedException = CoreChainedException;
/** An IDT entry as a debugger shows it, or why there is none. */
export type IdtGateView = CoreIdtGateView;
import type { TracepointSource } from './tracepoints.js';

/** The model's system fd. */
export interface ModelKvm {
  /** KVM's tracepoints, for every VM made from this Kvm. */
  readonly tracepoints: TracepointSource;
}

/** The Heki state of one VM, as saved and restored for snapshots (migration). */
export interface HekiSnapshot {
  readonly pinnedCr0: bigint;
  readonly pinnedCr4: bigint;
  readonly configureExitReason: number;
  readonly denialExitReason: number;
}

/** The model's VM fd: Heki's per-VM state, which the RFC gives no ioctl (as debugfs would show it). */
export interface ModelVm {
  /** The pinned CR0/CR4 bits, read-only. */
  readonly hekiPins: { readonly cr0: bigint; readonly cr4: bigint };
  /** What a VM reset asked for by user space does to Heki: the pins are cleared (docs/heki.md §5.4, §7.5). */
  resetHekiPins(): void;
  getHekiState(): HekiSnapshot;
  /** Restores a snapshot's Heki state (all fields checked first). */
  setHekiState(state: HekiSnapshot): void;
}

/** The model's vCPU fd. */
export interface ModelVcpu {
  /**
   * Guest instructions the vCPU has retired since it was made, which `run()`'s instruction budget
   * (RunOptions.budget) counts: a VMM spreads one budget over the KVM_RUNs of an operation with
   * it, as a real VMM would count with a perf counter on the vCPU thread.
   */
  readonly instructionsRetired: number;
  /**
   * An INIT signal: kvm_vcpu_reset(init_event = true). The vCPU is left in real mode, which the
   * model's long-mode core cannot run, for the VMM to boot again; Heki pins (per VM) survive; a
   * completion still pending and an exception queued but not delivered are dropped.
   */
  init(): void;
  /**
   * The exceptions that led to the last KVM_EXIT_SHUTDOWN, each with the IDT gate its delivery
   * read (the core's report: a real kernel gives user space nothing of it).
   */
  readonly shutdownChain: readonly ChainedException[] | undefined;
}
