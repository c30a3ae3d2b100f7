/**
 * The contract between the scenario runner and what it tests. The runner owns the scenario
 * logic (order, writeCrMasked, answers, comparison); a target only performs operations on a
 * VM and reports what happened, without interpreting it. There are two targets:
 *
 *   - in-process: a VM of host/vmm's Vmm (over host/kvm and host/x86) in this process;
 *   - remote: a running `pinbox serve`, through the protocol's control role (VMs, host
 *     operations, how MSR exits are answered, held exits) and guest role (one guest
 *     connection per vCPU).
 *
 * ## Lifetime
 * `createVm(options)` once per scenario, then the scenario's operations on the returned
 * TargetVm in order — never two at a time, except that a guest action's `duringExit` callback
 * makes further calls while that action is pending — then `TargetVm.close()`, even when the
 * scenario failed. `ScenarioTarget.close()` once at the end.
 *
 * ## The VM a scenario starts from
 * `createVm` resolves with a VM in KVM's initial state: no capability enabled (user-space MSR
 * exit mask 0, Heki exit masks 0), no MSR filter, no Heki pins, `options.vcpus` vCPUs each in
 * the VMM's boot state (host/vmm/boot: 64-bit CPL0, CR0 0x80050033, CR4 0x6a0 plus
 * SMEP|SMAP|UMIP|FSGSBASE where the guest CPUID has them, EFER 0xd01, identity paging), with
 * the options' profile, host model, guest CPUID, memory and ignore_msrs. The options are
 * exactly the VM options of the policy compiler (PolicyVmOptions); `scenarioPolicy` turns them
 * into a policy document, which both targets make the VM from. A target that cannot give this
 * VM (a remote server whose VM differs) rejects, naming what differs; the runner then fails the
 * scenario — it never skips it silently.
 *
 * ## Unsupported on this host
 * A target on a real kernel may lack what a scenario needs (Heki, CPL0 hypercalls, a CPUID
 * feature user space cannot take away, …). It says so before the scenario runs
 * (`unsupported(scenario)`, with the reason), or by refusing a step with the error code
 * host_unsupported; the runner reports the scenario as unsupported on this host — a third
 * outcome, never counted as passed — unless a step before had already failed.
 *
 * ## The two targets, operation by operation
 * In-process (over host/vmm's Vmm and host/kvm): `createVm` makes a VM with the options (no
 * policy capabilities, no filter) and boots every vCPU; host operations are the Vm/Vcpu calls of
 * the same names, KvmError passing through; `guest` lowers the action to its instruction as the
 * VMM does for guest clients and runs the vCPU, recording each user-space exit as KVM_RUN
 * returned it, calling `duringExit` at the first, and answering MSR exits with `answer`
 * (writing kvm_run.msr.error and .data, or nothing for 'untouched'); `controlRegisters` is
 * KVM_GET_SREGS.
 *
 * Remote (host/conform/remote: a running `pinbox serve`, reached at its control endpoint with
 * its token; guest connections go to the guest endpoint the control hello names, one per vCPU
 * a scenario uses): `createVm` sends `createVm` with the policy `scenarioPolicy(options)` gives
 * — the in-process target's VM, made by the same policy compiler — under a name of its own, and
 * checks the vCPU count and profile the server reports; `close` sends `destroyVm`. Host
 * operations are the control ops of the same names (`getMsrs` → {nmsrs, entries};
 * `controlRegisters` → `getSregs`; a null bitmap travels as nil). `guest` sends
 * `setMsrExitReply` with the answer ('untouched' included), then the guest op on that vCPU's
 * connection, and maps the result: `fault`, exit names to numbers (per the profile), each MSR
 * exit's `data` as KVM filled it (the protocol's `exitData` where the answer replaced it),
 * `value`/`ret`, exec's `regs` and `stop`, cpuid's eax..edx to rax..rdx. With `duringExit`, it
 * asks the server to hold the vCPU's next exit (`holdExit`), and when the `exit_held` event
 * says the vCPU sits in it — KVM_RUN returned, the exit recorded and not answered — calls
 * `duringExit`, sets the answer again, and lets the exit go on (`releaseExit`).
 *
 * ## Errors
 * Host operations resolve with their result. When KVM refuses one, they reject with an error
 * that names the errno: host/kvm's KvmError as it is thrown (its `code`, "EINVAL", with the
 * number in `errno`), or the protocol's RemoteError for a `kvm_error` (its `errno`,
 * "EINVAL"). Any other rejection — from any method — is a failure of the target itself (lost
 * connection, unsupported feature, internal error): the runner reports it with its message and
 * runs no further step of the scenario. Guest faults are results, never rejections.
 */
import type { ErrnoName } from '../../protocol/abi.js';
import type { BackendHost } from '../kvm/api/backend.js';
import { KvmError } from '../kvm/api/errors.js';
import type {
  ControlRegisterName, ExecStop, FilterRange, MsrEntry, MsrExitAnswer, PinboxAnswer, RegisterValues, Scenario, SregsField,
  StopRegister,
  TargetGuestAction,
} from './model.js';
import type { ScenarioVm } from './vm-block.js';

/**
 * One user-space exit, as KVM filled kvm_run when KVM_RUN returned — before user space
 * answered it. Numbers are the kernel's, per the VM's profile.
 */
export interface TargetExit {
  /** kvm_run.exit_reason: KVM_EXIT_X86_RDMSR (29), KVM_EXIT_HEKI_DENIAL (40 in v2)… */
  readonly reason: number;
  /**
   * kvm_run.msr for KVM_EXIT_X86_RDMSR/WRMSR: `reason` is the single KVM_MSR_EXIT_REASON_* bit;
   * `data` is what KVM put there: 0 for a read (KVM zeroes it), the value written for a write.
   * Not the answer: the runner knows the answer, it gave it.
   */
  readonly msr?: { readonly reason: number; readonly index: number; readonly data: bigint };
  /** KVM_EXIT_HEKI_CONFIGURE (cr_pinned) or KVM_EXIT_HEKI_DENIAL (cr_value): `reason` is 1 (CR0) or 2 (CR4). */
  readonly heki?: { readonly reason: number; readonly value: bigint };
  readonly io?: { readonly port: number; readonly size: number; readonly direction: 'in' | 'out'; readonly value: number };
  /** KVM_EXIT_PINBOX_CR_FILTER: kvm_run.cr_filter, the access by name. */
  readonly cr?: { readonly cr: number; readonly access: string; readonly old: bigint; readonly new: bigint };
  /** KVM_EXIT_PINBOX_REG_INTERCEPT: kvm_run.reg_intercept, the intercept by its TLFS name. */
  readonly intercept?: {
    readonly name: string; readonly msr: number; readonly old: bigint; readonly new: bigint; readonly oldLimit: number; readonly newLimit: number;
  };
  /**
   * KVM_EXIT_MEMORY_FAULT: kvm_run.memory_fault — flags (the access kind and GVA_VALID), the page's
   * GPA and size — and pinbox's `gva` (docs/memory-protection.md §3.3).
   */
  readonly memory?: { readonly flags: bigint; readonly gpa: bigint; readonly size: bigint; readonly gva: bigint };
}

export interface TargetFault {
  readonly vector: number;
  /** undefined for a vector that pushes none. */
  readonly errorCode: number | undefined;
}

/** What a guest action did. Output fields are present exactly when `fault` is absent. */
export interface GuestOutcome {
  readonly fault?: TargetFault;
  /**
   * Every user-space exit the action caused, in order — except the ones the target's own
   * machinery causes to run the action (the HLT or done gate after an operation, PROTOCOL.md
   * §5); an exec's HLT shows as `stop: 'hlt'`, not as an exit.
   */
  readonly exits: readonly TargetExit[];
  /** rdmsr, readCr: the value read. */
  readonly value?: bigint;
  /** hypercall: RAX after it. */
  readonly ret?: bigint;
  /**
   * exec: every general register, RIP and RFLAGS when the code stopped — for a fault, as the
   * faulting instruction left them (RIP at it). cpuid: rax, rbx, rcx, rdx as CPUID left them
   * (EAX..EDX zero-extended).
   */
  readonly regs?: RegisterValues<StopRegister>;
  /** exec: why it stopped. */
  readonly stop?: ExecStop;
}

export interface GuestRequest {
  readonly vcpu: number;
  readonly cpl: 0 | 3;
  readonly action: TargetGuestAction;
  /**
   * How user space answers every MSR exit the action causes: `{ error, data }` written to
   * kvm_run.msr before re-entering (a remote target sends it with setMsrExitReply before the
   * action); 'untouched' re-enters without writing kvm_run.msr, leaving
   * what KVM put there. When a scenario gives no answer the runner passes {error: 1, data: 0}:
   * KVM then injects #GP, as a VMM without a handler would. Heki exits need no answer: the
   * target re-enters and KVM completes them (RAX 0 for a configure, #GP for a denial).
   */
  readonly answer: MsrExitAnswer;
  /**
   * How user space answers the action's CR-filter exits (kvm_run.cr_filter) and register
   * intercepts (kvm_run.reg_intercept, as the VM's monitor); a remote target sets them with
   * setCrExitReply and, as the VM's monitor, setInterceptReply. The runner passes deny when the
   * scenario gives none: the VMM's own default.
   */
  readonly crAnswer: PinboxAnswer;
  readonly interceptAnswer: PinboxAnswer;
  /**
   * When present, the target calls it once, at the first user-space exit the action causes,
   * after recording that exit and before answering it, and waits for it; meanwhile the
   * callback may call any other TargetVm method (on other vCPUs for guest actions).
   */
  readonly duringExit?: () => Promise<void>;
}

export interface CheckExtensionResult {
  /** KVM_CHECK_EXTENSION's return value. */
  readonly value: number;
}

export interface MsrsResult {
  /** KVM_GET_MSRS/KVM_SET_MSRS's return value: entries processed (they stop at the first failure). */
  readonly nmsrs: number;
  /** getMsrs: the entries read, in order (the first nmsrs of those asked). */
  readonly entries?: readonly MsrEntry[];
}

export interface TargetVm {
  /** KVM_ENABLE_CAP on the VM. */
  enableCap(cap: number, args: readonly bigint[], flags: number): Promise<void>;
  /** KVM_CHECK_EXTENSION on the VM. */
  checkExtension(cap: number): Promise<CheckExtensionResult>;
  /**
   * KVM_X86_SET_MSR_FILTER, with the ranges exactly as given (more than 16 included: KVM
   * refuses them). A null bitmap is no bitmap, a NULL pointer (the protocol's nil).
   */
  setMsrFilter(flags: number, ranges: readonly FilterRange[]): Promise<void>;
  getMsrs(vcpu: number, indices: readonly number[]): Promise<MsrsResult>;
  setMsrs(vcpu: number, entries: readonly MsrEntry[]): Promise<MsrsResult>;
  /** KVM_SET_SREGS with the given fields changed and every other one as it is. */
  setSregs(vcpu: number, sregs: RegisterValues<SregsField>): Promise<void>;
  /** The VMM's VM reset (protocol `resetVm`). */
  resetVm(): Promise<void>;
  /** The VMM's vCPU INIT into the boot state (protocol `initVcpu`). */
  initVcpu(vcpu: number): Promise<void>;
  /** Optional: an opaque snapshot of the whole VM, and restoring one. */
  snapshot?(): Promise<unknown>;
  restore?(snapshot: unknown): Promise<void>;
  /** Optional: pinbox's CR filter (PINBOX_SET_CR_FILTER, control op setCrFilter). */
  setCrFilter?(filter: { flags: number; cr0Mask: bigint; cr4Mask: bigint; xcr0Mask?: bigint }): Promise<void>;
  /**
   * Optional: KVM_SET_MEMORY_ATTRIBUTES with the values as given, flags 0 (the VMM's
   * setMemoryAttributes, control op setMemoryAttributes), for KVM to check (docs/memory-protection.md §3.2).
   */
  setMemoryAttributes?(attributes: { address: bigint; size: bigint; attributes: bigint }): Promise<void>;
  /** Optional: the register intercepts of one vCPU or all (PINBOX_SET_REG_INTERCEPTS, as the VM's monitor). */
  setRegisterIntercepts?(vcpu: number | undefined, spec: { control: bigint; cr0Mask: bigint; cr4Mask: bigint; miscEnableMask: bigint }): Promise<void>;
  guest(request: GuestRequest): Promise<GuestOutcome>;
  /** The vCPU's control registers now (KVM_GET_SREGS), for `expect.cr`. */
  controlRegisters(vcpu: number): Promise<Record<ControlRegisterName, bigint>>;
  close(): Promise<void>;
}

export interface ScenarioTarget {
  /** Names the target in reports: "in-process", "tcp:127.0.0.1:7001". */
  readonly description: string;
  /** The KVM the target runs on, where it knows (the in-process target: its backend's describe()). */
  readonly host?: BackendHost;
  /**
   * Why this target's host cannot run `scenario` — what the scenario needs that the host lacks
   * (requirements.ts) — or undefined to run it. Asked before the scenario's VM is made; the
   * runner then reports the scenario as unsupported with the reason, never as passed.
   */
  unsupported?(scenario: Scenario): Promise<string | undefined>;
  createVm(options: ScenarioVm): Promise<TargetVm>;
  close(): Promise<void>;
}

const ERRNO_NAME = /^E[A-Z0-9]+$/;

/** The errno name of a KVM refusal as targets report it (see "Errors" above), or undefined
 * for any other error. */
export function errnoOf(error: unknown): ErrnoName | string | undefined {
  if (error instanceof KvmError) return error.code;
  // Not Node's system errors, whose errno is a number and whose code ("ECONNRESET") is no KVM
  // refusal: only a string errno counts.
  if (typeof error !== 'object' || error === null) return undefined;
  const { errno } = error as { errno?: unknown };
  return typeof errno === 'string' && ERRNO_NAME.test(errno) ? errno : undefined;
}
