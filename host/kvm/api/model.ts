/**
 * What only the model can do, as extensions a VMM looks for: each fd of the model has a `model`
 * member (undefined on any other backend) with the calls no kernel offers — because the model
 * can count guest instructions, because Heki's pins have no ioctl, because its tracepoints fire
 * in the same process. A VMM that uses them checks for them and does without elsewhere.
 */
import type { ExceptionLoop as CoreExceptionLoop } from '../../x86/exceptions/delivery-loop.js';
import type { ChainedException as CoreChainedException, IdtGateView as CoreIdtGateView } from '../../x86/intercept.js';

/** One exception of the chain that ended in a triple fault, with the IDT gate its delivery read. */
export type ChainedException = CoreChainedException;
/** An IDT entry as a debugger shows it, or why there is none. */
export type IdtGateView = CoreIdtGateView;
import type { TracepointSource } from './tracepoints.js';

/**
 * An exception loop the core found (host/x86/exceptions/delivery-loop.ts): the same fault
 * delivered to the same handler from the same state, again and again, with nothing retired.
 */
export type ExceptionLoop = CoreExceptionLoop;

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
export interface ModelVm extends ModelMemoryProtection {
  /** The pinned CR0/CR4 bits, read-only. */
  readonly hekiPins: { readonly cr0: bigint; readonly cr4: bigint };
  /** What a VM reset asked for by user space does to Heki: the pins are cleared (docs/heki.md §5.4, §7.5). */
  resetHekiPins(): void;
  getHekiState(): HekiSnapshot;
  /** Restores a snapshot's Heki state (all fields checked first). */
  setHekiState(state: HekiSnapshot): void;
  /**
   * What a VM reset asked for by user space does to memory: every protection is cleared — the
   * attributes, Heki's v1 and v2 locks — and MBEC and the delivery are the VM's defaults again.
   */
  resetMemoryProtection(): void;
  /** The memory protections, for a snapshot. */
  getMemoryProtectionState(): MemoryProtectionSnapshot;
  /** Loads a snapshot's memory protections in place of the VM's (all fields checked first). */
  setMemoryProtectionState(state: MemoryProtectionSnapshot): void;
}

/** Every memory protection of a VM and its settings, as a snapshot carries them. */
export interface MemoryProtectionSnapshot {
  readonly mbec: boolean;
  /** KVM_CAP_PINBOX_MEMORY_FAULT_POLICY: 0 exit, 1 inject #PF. */
  readonly faultPolicy: number;
  readonly attributes: readonly MemoryAttributeRange[];
  readonly hekiV1: { readonly nowrite: readonly { start: bigint; end: bigint }[]; readonly exec: readonly { start: bigint; end: bigint }[] };
  readonly hekiV2: readonly { readonly address: bigint; readonly size: bigint; readonly permissions: bigint }[];
}

/** Guest-physical pages and what the second stage lets the guest do with them (docs/memory-protection.md). */
export interface MemoryPermissionRange {
  readonly address: bigint;
  readonly size: bigint;
  readonly read: boolean;
  readonly write: boolean;
  /** Execute; with MBEC, from supervisor-mode linear addresses. */
  readonly exec: boolean;
  /** With MBEC: execute from user-mode linear addresses (without MBEC, equal to `exec`). */
  readonly userExec: boolean;
}

/** One range of KVM_SET_MEMORY_ATTRIBUTES attributes as user space set them. */
export interface MemoryAttributeRange {
  readonly address: bigint;
  readonly size: bigint;
  readonly attributes: bigint;
}

/** The model's memory-protection view of a VM: what user space set, what the guest locked, what holds. */
export interface ModelMemoryProtection {
  /**
   * The attributes set by KVM_SET_MEMORY_ATTRIBUTES, as maximal ranges (KVM has no GET ioctl):
   * those in [address, address + size) (page-aligned; all memory unless given), the first `limit` of them.
   */
  getMemoryAttributes(address?: bigint, size?: bigint, limit?: number): MemoryAttributeRange[];
  /** The effective permissions of [address, address + size), page-aligned, as maximal ranges of equal rights: the first `limit`. */
  memoryPermissions(address: bigint, size: bigint, limit?: number): MemoryPermissionRange[];
  /** KVM_CAP_PINBOX_MBEC and KVM_CAP_PINBOX_MEMORY_FAULT_POLICY as they stand: MBEC on, and "exit" or "inject". */
  readonly memoryFaultSettings: { readonly mbec: boolean; readonly delivery: 'exit' | 'inject' };
  /** Heki's locks: v1's ranges (inclusive GFNs) and v2's pages with their MEM_ATTR_* permissions. */
  readonly hekiMemoryLocks: {
    readonly v1: { readonly nowrite: readonly { start: bigint; end: bigint }[]; readonly exec: readonly { start: bigint; end: bigint }[] };
    readonly v2: readonly { readonly address: bigint; readonly size: bigint; readonly permissions: bigint }[];
  };
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
   * Faults raised by guest instructions and delivered through the guest's IDT since the vCPU was
   * made. Each costs the run budget a unit, as an instruction does, so that a storm of deliveries
   * in which nothing retires still ends: a VMM spreading one budget over several runs counts both.
   */
  readonly eventsDelivered: number;
  /**
   * The exception loop that ended the last run() — it returned KVM_EXIT_INTR with budget left,
   * `timed_out` clear — or null. A real CPU would spin in it for ever and KVM_RUN return only on a
   * signal; ending it is the VMM's watchdog's job, and this is what the watchdog reports.
   */
  readonly exceptionLoop: ExceptionLoop | null;
  /**
   * An INIT signal: kvm_vcpu_reset(init_event = true). The vCPU is left in real mode, which the
   * model's long-mode core cannot run, for the VMM to boot again; Heki pins (per VM) survive; a
   * completion still pending and an exception queued but not delivered are dropped.
   */
  init(): void;
  /**
   * A VMM's signal to the vCPU thread (pthread_kill; kvm_vcpu_kick()): the KVM_RUN under way
   * returns KVM_EXIT_INTR once the intercept KVM is handling is done, before the guest runs on.
   * For a VMM acting on a tracepoint from inside KVM_RUN (a memory denial KVM injected).
   */
  kick(): void;
  /**
   * The exceptions that led to the last KVM_EXIT_SHUTDOWN, each with the IDT gate its delivery
   * read (the core's report: a real kernel gives user space nothing of it).
   */
  readonly shutdownChain: readonly ChainedException[] | undefined;
}
