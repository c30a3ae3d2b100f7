/**
 * Runs guest operations on one vCPU, one at a time (later requests queue), as real
 * instructions (docs/architecture.md, "Inside the VMM: running and answering"):
 *
 *   1. lower the request to its boot template (operations.ts) or, for exec, copy the code into
 *      the vCPU's exec slot followed by the epilogue (exec.ts);
 *   2. put the inputs in the registers the instruction reads, RIP at the template (CPL3: at the
 *      IRETQ that enters it, privilege.ts), RSP at the stack; arm the fault record with the
 *      template's epilogue as fix-up (fault-record.ts);
 *   3. KVM_RUN, answering every user-space exit on the way (exit-answers.ts) until the vCPU
 *      halts — within the request's allowance of instructions (on the model, which counts them:
 *      RunOptions.budget), exits and time (allowance.ts), and in turns that let other clients be
 *      answered in between (pacer.ts): each KVM_RUN's deadline is the end of the request's time
 *      or of its turn, whichever comes first, on either backend;
 *   4. read the outcome: the fault record says whether the instruction faulted; the registers
 *      hold the results.
 *
 * Registers travel through KVM_CAP_SYNC_REGS (host/kvm/sync-regs.ts): KVM stores them in
 * kvm_run.s.regs at every exit; the runner edits the few an operation needs and marks them
 * dirty, so an operation costs no KVM_GET_REGS / KVM_SET_REGS.
 *
 * An operation that ends part-way — budget spent, a refusal after guest code ran, a handler
 * that failed — leaves the vCPU mid-instruction stream, perhaps at CPL3 or with a completion
 * pending in KVM: the vCPU is then booted again (INIT, then the boot state; Heki pins are per
 * VM and stay).
 */
import {
  ANDERSEN_PINNED_MSRS, KVM_INTERNAL_ERROR_EMULATION, KVM_SYNC_X86_REGS, MSR_KVM_CR0_PINNED_HIGH, MSR_KVM_CR0_PINNED_LOW,
  MSR_KVM_CR4_PINNED_HIGH, MSR_KVM_CR4_PINNED_LOW, PF_VECTOR, PFERR_PRESENT, PFERR_WRITE,
} from '../../../protocol/abi.js';
import { ProtocolError } from '../../../protocol/errors.js';
import { KvmError } from '../../kvm/api/errors.js';
import type { KvmRun, VcpuExit } from '../../kvm/api/exits.js';
import type { ExceptionLoop, ModelVcpu } from '../../kvm/api/model.js';
import { copyRegs } from '../../kvm/api/regs.js';
import type { ChainedException } from '../../kvm/api/model.js';
import { debugEnding, type RunDebugHook } from './run-debug.js';
import type { KvmVcpu, RunOptions } from '../../kvm/api/vcpu.js';
import type { GuestMemory } from '../../kvm/api/guest-memory.js';
import type { Regs } from '../../kvm/api/regs.js';
import { bootVcpu, type BootLayout, type OperationName } from '../boot/index.js';
import { isBootText, kernelStackTop } from '../boot/layout.js';
import { pushesErrorCode } from '../boot/stubs.js';
import type { EventLog } from '../events/index.js';
import { limitError, VmmError } from '../errors.js';
import type { OnShutdown } from '../policy/index.js';
import type { RunState } from '../run-state.js';
import { RequestAllowance, type RequestLimits } from './allowance.js';
import { ExecPlacement, execStop, type ExecOutcome, type ExecRequest, type InPlaceCode } from './exec.js';
import type { AnsweredOperation, ExitAnswers, ExitHook } from './exit-answers.js';
import { FaultRecord } from './fault-record.js';
import { lowering, type GuestRequest, type Lowering, type TemplateOp } from './operations.js';
import { OneAtATime } from './one-at-a-time.js';
import type { Pacer } from './pacer.js';
import { PrivilegeEntry } from './privilege.js';
import { userSpaceExit } from './user-space-exit.js';
import type { GuestResult } from './result.js';
import { hex } from '../../../protocol/notation.js';
import { consoleText } from '../devices/index.js';

/** The watchdog's words for an exception loop: which exception, where, and what it means. */
export function describeExceptionLoop(loop: ExceptionLoop): string {
  const code = loop.errorCode === undefined ? '' : ` error code ${hex(loop.errorCode)}`;
  return `is stuck in an exception loop: vector ${loop.vector}${code} is delivered to ${hex(loop.rip)} over and over, ` +
    'and the handler faults again before its first instruction retires (guest code broke its IDT, its handler page or the page tables)';
}

/** Per-request options for in-process callers. */
export interface PerformOptions {
  /** Instructions the request may retire (default: the VMM's per-request budget). */
  readonly budget?: number;
  /**
   * What the request may still cost, shared by the ops of a batch (default: a fresh allowance
   * of the VMM's limits for this op alone).
   */
  readonly allowance?: RequestAllowance;
  /**
   * Called at each user-space exit the request causes, before the VMM answers it; it may
   * answer an MSR exit itself (or return 'untouched'), and may await (other vCPUs run meanwhile).
   */
  readonly onExit?: ExitHook;
  /**
   * Wall-clock time, in ms, each KVM_RUN of the request may take before it ends as a spent
   * budget (RunOptions.deadline, on either backend). Default: TEMPLATE_RUN_MS for an operation
   * on a backend that counts no instructions; none otherwise (the budget, or the backend's own
   * deadline, bounds it).
   */
  readonly runTimeoutMs?: number;
  /** A debugger attached to the vCPU for this request (`pinbox run --gdb`): run-debug.ts. */
  readonly debug?: RunDebugHook;
}

/** What a runner needs from its VM (machine.ts). */
export interface RunnerHost {
  readonly name: string;
  readonly log: EventLog;
  readonly layout: BootLayout;
  readonly memory: GuestMemory;
  readonly state: RunState;
  readonly answers: ExitAnswers;
  readonly onShutdown: OnShutdown;
  /** The VMM's per-request limits: instructions, user-space exits, time. */
  readonly limits: RequestLimits;
  /** Turns on the event loop, shared by every runner of the VMM. */
  readonly pacer: Pacer;
  /** Keeps KVM's tracepoint listeners in step with what the event log wants. */
  prepareTracing(): void;
  /** The VM's Heki pins (KVM's per-VM state, read through pinbox's debugfs-like view). */
  readonly hekiPins: { readonly cr0: bigint; readonly cr4: bigint };
  /** The VM speaks John Andersen's CR-pinning ABI: its vCPUs' pins are their MSRs 0x4b564d0a-0d. */
  readonly andersen: boolean;
  /** Whether the host's KVM completes a CPL0 hypercall (HostFacts; true unless told otherwise), and how that was found. */
  readonly hypercallsComplete: boolean;
  readonly hypercallsDetail: string;
  /** Flushes traces: called before a request's answer is handed back. */
  flush(): void;
  pause(cause: string): void;
  kill(cause: string): void;
  reset(cause: string): void;
}

/**
 * Instructions retired and faults delivered by the vCPU, which the VMM reads to spread a
 * request's budget over the KVM_RUNs it takes — as a real VMM would count guest instructions
 * with a perf counter (perf_event_open, exclude_host) on the vCPU thread — and the exception loop
 * that ended a run, which the VMM names instead of a spent budget. The model's vCPUs have them
 * (ModelVcpu); on a backend that has not, a request is bounded by time and exits alone.
 */
export type InstructionCounter = Pick<ModelVcpu, 'instructionsRetired' | 'eventsDelivered' | 'exceptionLoop'>;

/**
 * How long one KVM_RUN of a template operation may take on a backend that counts no guest
 * instructions (a real kernel): the operation is a handful of instructions (≈ 1.4 µs each where
 * CPL0 code is emulated), so a run this long will not end by itself — a CPL0 hypercall on a PVM
 * host, whose VMCALL never completes (docs/real-kvm.md). exec and pinbox run take the backend's
 * own deadline.
 */
export const TEMPLATE_RUN_MS = 2_000;

interface TemplateEntry {
  readonly user: boolean;
  /** The operation's instruction. */
  readonly entry: bigint;
  /** The fix-up for a fault: the epilogue right after the instruction. */
  readonly epilogue: number;
  /** RIP when the vCPU halts at the end: past the HLT of the epilogue, or of the done gate. */
  readonly haltRip: bigint;
}

interface OpContext extends AnsweredOperation {
  readonly request: GuestRequest;
  /** The vCPU's INIT count when the operation started. */
  readonly inits: number;
  /** The request's instruction budget, and what is left of it. */
  readonly budget: number;
  remaining: number;
  /** What the request (the batch, for an op of one) may still cost. */
  readonly allowance: RequestAllowance;
  /** The vCPU has been booted again already (budget spent, shutdown). */
  rebooted: boolean;
  /** For templates: the lowering, the instruction's address and where the vCPU halts when the op is done. */
  readonly lower: Lowering<TemplateOp> | undefined;
  readonly insnRip: bigint;
  readonly haltRip: bigint;
  /** For exec: where the code was placed. */
  readonly exec: ExecPlacement | undefined;
  /** A slice of an in-place run: a spent budget leaves the vCPU as it is, to go on. */
  readonly slice: boolean;
  /** How long each KVM_RUN may take (PerformOptions.runTimeoutMs); undefined: no deadline of ours. */
  readonly runMs: number | undefined;
  /** performance.now() when runMs ends (armRunLimit); Infinity without one. */
  runUntil: number;
  readonly debug: RunDebugHook | undefined;
  /** The debugger has seen the request's first instruction (RunDebugHook.started). */
  debugStarted: boolean;
}

const NO_OPTIONS: PerformOptions = {};

/** The marker code of an in-place run (runInPlace): nothing is copied. */
const IN_PLACE = new Uint8Array(0);

function isPromise<T>(v: unknown): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

export class VcpuRunner {
  /**
   * One request at a time; before each answer is handed back the trace must hold every event
   * the request caused (the crash guarantee of events/trace-writer.ts: nothing a guest has
   * seen answered is missing from the trace) — a trace that cannot be written fails the request.
   */
  private readonly queue = new OneAtATime(() => this.host.flush());
  private readonly run: KvmRun;
  private readonly faults: FaultRecord;
  private readonly entry: PrivilegeEntry;
  /** s.regs does not hold the vCPU's registers (never stored yet, or changed since). */
  private regsStale = true;
  /**
   * The last operation ended part-way: the vCPU is booted again before the next one runs (not
   * at once, so that the state it stopped in can still be read: `pinbox run`'s final dump).
   */
  private rebootBefore: 'shutdown' | 'abort' | undefined;
  /** INITs so far: an operation that waited across one is abandoned (`vcpu_init`). */
  private inits = 0;
  private kernelTemplates: Readonly<Record<OperationName, TemplateEntry>> | undefined;
  private userTemplates: Readonly<Record<OperationName, TemplateEntry>> | undefined;
  private readonly kernelRsp: bigint;
  /** Where a CPL3 operation halts: past the HLT of the done gate's handler. */
  private readonly doneHaltRip: bigint;
  /**
   * RSP is at the top of the kernel stack: a CPL0 template that ran to its end leaves it there
   * (its instruction does not touch RSP, and a fault's IRET restores it), so the next one need
   * not load it.
   */
  private kernelRspInPlace = false;
  /** The HLT that ends the current exec's copied code (its epilogue), if any. */
  private execEpilogue: bigint | undefined;
  /**
   * KVM_RUN's options, reused: the deadline of the request's turn on every backend, and where
   * instructions are counted (the model), what is left of the request's budget.
   */
  private readonly runOptions: RunOptions = {};
  private readonly counter: InstructionCounter | undefined;
  /** Why the operation under way must stop when KVM_RUN returns (interrupt). */
  private interrupted: VmmError | 'pause' | undefined;
  /** KVM_RUN last returned a user-space exit whose completion the next KVM_RUN will run. */
  private exitPending = false;
  /** performance.now() when the last KVM_RUN returned (or the loop was entered). */
  private lastRunEnd = 0;
  /** The whole millisecond (performance.now()) runOptions.deadline stands for (setDeadline). */
  private deadlineAt = NaN;

  constructor(
    readonly id: number,
    readonly vcpu: KvmVcpu,
    private readonly host: RunnerHost,
  ) {
    this.counter = vcpu.model;
    this.run = vcpu.kvmRun;
    this.run.kvm_valid_regs = KVM_SYNC_X86_REGS;
    this.faults = new FaultRecord(host.memory, id);
    this.entry = new PrivilegeEntry(host.memory, host.layout, id);
    this.kernelRsp = BigInt(kernelStackTop(id));
    this.doneHaltRip = BigInt(host.layout.text.doneHalt + 1);
  }

  /** Something outside the runner (a control op, INIT, reset) changed the registers. */
  forgetRegisters(): void {
    this.regsStale = true;
    this.kernelRspInPlace = false;
    this.run.kvm_dirty_regs = 0;
  }

  /**
   * Boots the vCPU again: INIT, then the boot state. Heki pins are per VM and stay — and the boot
   * state honours them: KVM does not check host writes (KVM_SET_SREGS bypasses the pins, as in the
   * RFC), so it is the VMM that must never bring a vCPU back with a pinned bit clear, or a guest
   * could shed a pin by triple-faulting or spending its budget.
   */
  reboot(cause: 'create' | 'reset' | 'init' | 'shutdown' | 'abort'): void {
    this.rebootBefore = undefined;
    if (cause === 'init') this.inits++;
    // Andersen's pins are cleared by kvm_vcpu_reset(), INIT included. A reboot the guest did not
    // ask for — its triple fault under onShutdown "reboot", an operation stopped part-way — is
    // the VMM's own doing, and the VMM keeps them, as it keeps Heki's (docs/transitions.md):
    // read before INIT, written back after it (host writes assign).
    const keep = (cause === 'shutdown' || cause === 'abort') && this.host.andersen ? this.vcpu.getMsrs(ANDERSEN_PINNED_MSRS) : [];
    // INIT is the model's (ModelVcpu), and drops a completion still pending; elsewhere the
    // completion is run out first, then the boot state alone brings the vCPU back.
    if (cause !== 'create') {
      if (this.vcpu.model !== undefined) this.vcpu.model.init();
      else if (this.exitPending) this.drainPendingExit();
    }
    this.exitPending = false;
    bootVcpu(this.vcpu, this.host.layout, this.id);
    if (keep.length > 0) this.vcpu.setMsrs(keep);
    this.setPinnedBits();
    this.forgetRegisters();
    const { log, name } = this.host;
    if (log.wants('vcpu_init', name)) log.emit('vcpu_init', name, { cause }, this.id);
  }

  /** The bits the booted CR0/CR4 must have set and clear: Heki's pins, and this vCPU's Andersen pins high and low. */
  private pinnedBits(): { cr0: bigint; cr4: bigint; cr0Low: bigint; cr4Low: bigint } {
    const heki = this.host.hekiPins;
    const pins = { cr0: heki.cr0, cr4: heki.cr4, cr0Low: 0n, cr4Low: 0n };
    if (!this.host.andersen) return pins;
    const msr = new Map(this.vcpu.getMsrs(ANDERSEN_PINNED_MSRS).map((e) => [e.index, e.data]));
    pins.cr0 |= msr.get(MSR_KVM_CR0_PINNED_HIGH) ?? 0n;
    pins.cr4 |= msr.get(MSR_KVM_CR4_PINNED_HIGH) ?? 0n;
    pins.cr0Low = msr.get(MSR_KVM_CR0_PINNED_LOW) ?? 0n;
    pins.cr4Low = msr.get(MSR_KVM_CR4_PINNED_LOW) ?? 0n;
    return pins;
  }

  /**
   * A real kernel has no INIT ioctl, and keeps the completion of the last user-space exit
   * (vcpu->arch.complete_userspace_io) until the next KVM_RUN, which would run it on whatever
   * RIP the boot state gives — retiring, say, the next operation's RDMSR with the abandoned
   * one's data. So the exit is answered harmlessly (an MSR access succeeds with 0) and KVM_RUN
   * with immediate_exit lets KVM finish it without entering the guest (kvm_arch_vcpu_ioctl_run()
   * completes before it looks at immediate_exit); the boot state then overwrites what it did.
   */
  private drainPendingExit(): void {
    const run = this.run;
    if (run.reason === 'KVM_EXIT_X86_RDMSR' || run.reason === 'KVM_EXIT_X86_WRMSR') {
      run.msr.error = 0;
      run.msr.data = 0n;
    }
    run.kvm_dirty_regs = 0;
    run.immediate_exit = true;
    try {
      this.vcpu.run({ deadline: process.hrtime.bigint() + BigInt(TEMPLATE_RUN_MS) * 1_000_000n });
    } catch (e) {
      // A reply the kernel refuses leaves nothing to finish.
      if (!(e instanceof KvmError)) throw e;
    } finally {
      run.immediate_exit = false;
    }
  }

  /**
   * Puts the pinned CR0/CR4 bits into the booted state: bits pinned to 1 set, bits pinned to 0
   * (Andersen's low pins) clear. A pinned bit this vCPU cannot hold (its CPUID lacks the feature,
   * so KVM_SET_SREGS refuses it) stays clear: the guest could never set it either, and every CR
   * write that leaves it clear still #GPs.
   */
  private setPinnedBits(): void {
    const pins = this.pinnedBits();
    if (pins.cr0 === 0n && pins.cr4 === 0n && pins.cr0Low === 0n && pins.cr4Low === 0n) return;
    const sregs = this.vcpu.getSregs();
    const boot = { cr0: sregs.cr0 & ~pins.cr0Low, cr4: sregs.cr4 & ~pins.cr4Low };
    const tryLoad = (cr0: bigint, cr4: bigint): boolean => {
      try {
        this.vcpu.setSregs({ ...sregs, cr0, cr4 });
        return true;
      } catch (e) {
        if (e instanceof KvmError) return false;
        throw e;
      }
    };
    if (tryLoad(boot.cr0 | pins.cr0, boot.cr4 | pins.cr4)) return;
    let { cr0, cr4 } = boot;
    for (let bit = 1n; bit <= pins.cr0; bit <<= 1n) if (pins.cr0 & bit && tryLoad(cr0 | bit, cr4)) cr0 |= bit;
    for (let bit = 1n; bit <= pins.cr4; bit <<= 1n) if (pins.cr4 & bit && tryLoad(cr0, cr4 | bit)) cr4 |= bit;
    tryLoad(cr0, cr4);
  }

  /**
   * Runs code already in guest memory from `entry` at CPL0 until it halts, faults (the boot
   * IDT records it), shuts down or spends its budget — `pinbox run` — after the requests
   * already queued on this vCPU. The outcome is exec's, without an 'end'.
   */
  runInPlace(code: InPlaceCode, options: PerformOptions = NO_OPTIONS): Promise<ExecOutcome & GuestResult> {
    return this.perform({ op: 'exec', code: IN_PLACE, inPlace: code } as unknown as GuestRequest, options) as Promise<ExecOutcome & GuestResult>;
  }

  /** Runs one guest request after the ones already queued on this vCPU. */
  perform(request: GuestRequest, options: PerformOptions = NO_OPTIONS): Promise<GuestResult> {
    try {
      return Promise.resolve(this.performNow(request, options));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * As perform(), but the result comes back as a value — or a refusal is thrown — when the
   * request could run and finish at once (the vCPU was free and nothing had to be awaited): a
   * server's handler saves a promise per operation. A promise otherwise.
   */
  performNow(request: GuestRequest, options: PerformOptions = NO_OPTIONS): GuestResult | Promise<GuestResult> {
    return this.queue.run(this.runnable, request, options);
  }

  /** whenRunnable as the queue's task, made once. */
  private readonly runnable = (request: GuestRequest, options: PerformOptions): GuestResult | Promise<GuestResult> =>
    this.whenRunnable(request, options);

  private whenRunnable(request: GuestRequest, options: PerformOptions): GuestResult | Promise<GuestResult> {
    const gate = this.host.state.beforeStart();
    if (gate !== undefined) return gate.then(() => this.whenRunnable(request, options));
    return this.begin(request, options);
  }

  private begin(request: GuestRequest, options: PerformOptions): GuestResult | Promise<GuestResult> {
    const host = this.host;
    host.prepareTracing();
    this.interrupted = undefined;
    if (this.rebootBefore !== undefined) this.reboot(this.rebootBefore);
    const regs = this.registers();
    const allowance = options.allowance ?? new RequestAllowance(host.limits);
    const budget = Math.min(options.budget ?? host.limits.budget, allowance.instructions);
    const rspInPlace = this.kernelRspInPlace;
    this.kernelRspInPlace = false;
    let ctx: OpContext;
    if (request.op === 'exec') {
      const inPlace = (request as { inPlace?: InPlaceCode }).inPlace;
      const placed = inPlace !== undefined ? ExecPlacement.inPlace(inPlace) : ExecPlacement.copied(host.memory, host.layout, this.id, request as ExecRequest);
      // A later slice of an in-place run goes on where the last one stopped.
      if (inPlace?.slice !== 'resume') {
        placed.load(regs, this.entry);
        this.faults.arm(0);
      }
      this.execEpilogue = placed.cpl3 ? undefined : placed.end;
      const own = inPlace?.budget ?? (request as ExecRequest).budget ?? budget;
      ctx = this.context(request, options, allowance, Math.min(budget, own), undefined, 0n, 0n, placed, inPlace?.slice !== undefined);
    } else {
      const lower = lowering(request.op);
      const t = this.templates(request.cpl === 3)[lower.template(request)];
      lower.load(regs, request);
      if (t.user) {
        const e = this.entry.user(t.entry);
        regs.rip = e.rip;
        regs.rsp = e.rsp;
      } else {
        regs.rip = t.entry;
        if (!rspInPlace) regs.rsp = this.kernelRsp;
      }
      this.faults.arm(t.epilogue);
      ctx = this.context(request, options, allowance, budget, lower, t.entry, t.haltRip, undefined);
    }
    this.run.kvm_dirty_regs |= KVM_SYNC_X86_REGS;
    this.armRunLimit(ctx);
    try {
      const r = this.loop(ctx);
      return isPromise<GuestResult>(r) ? r.catch((e: unknown) => this.recover(ctx, e)) : r;
    } catch (e) {
      return this.recover(ctx, e);
    }
  }

  /**
   * Whether a HLT at `rip` is the VMM's ending of an operation rather than the guest's own:
   * a HLT of the boot text (templates, stubs, the done gate) or the epilogue after exec code.
   */
  isCompletion(rip: bigint): boolean {
    return rip === this.execEpilogue || isBootText(rip);
  }

  /** Where each template starts and where the vCPU halts when it is done, at CPL0 or CPL3. */
  private templates(user: boolean): Readonly<Record<OperationName, TemplateEntry>> {
    const cached = user ? this.userTemplates : this.kernelTemplates;
    if (cached !== undefined) return cached;
    const text = this.host.layout.text;
    const made = Object.fromEntries(
      Object.entries(user ? text.userOps : text.kernelOps).map(([name, t]) => [
        name,
        { user, entry: BigInt(t.entry), epilogue: t.epilogue, haltRip: BigInt(user ? text.doneHalt + 1 : t.epilogue + 1) },
      ]),
    ) as Record<OperationName, TemplateEntry>;
    if (user) this.userTemplates = made;
    else this.kernelTemplates = made;
    return made;
  }

  private context(
    request: GuestRequest, options: PerformOptions, allowance: RequestAllowance, remaining: number,
    lower: Lowering<TemplateOp> | undefined, insnRip: bigint, haltRip: bigint, exec: ExecPlacement | undefined, slice = false,
  ): OpContext {
    const runMs = options.runTimeoutMs ?? (this.counter === undefined && exec === undefined ? TEMPLATE_RUN_MS : undefined);
    return {
      request, hook: options.onExit, epoch: this.host.state.epoch, inits: this.inits, exits: [], dropped: 0, budget: remaining, remaining,
      allowance, rebooted: false, lower, insnRip, haltRip, exec, runMs, runUntil: Infinity, slice, debug: options.debug, debugStarted: false,
    };
  }

  /**
   * The operation's own run limit, `runMs` from now: set when the operation starts and again
   * after every wait for an exit's answer (an exit hook may take its time). KVM_RUN's deadline is
   * the soonest of it, the request's time limit and the end of its turn (runFrom).
   */
  private armRunLimit(ctx: OpContext): void {
    ctx.runUntil = ctx.runMs === undefined ? Infinity : performance.now() + ctx.runMs;
  }

  /** kvm_run.s.regs, refreshed with KVM_GET_REGS when something else changed the registers. */
  private registers(): Regs {
    const regs = this.run.s.regs;
    if (this.regsStale) {
      Object.assign(regs, this.vcpu.getRegs());
      this.regsStale = false;
    }
    return regs;
  }

  /**
   * An operation failed after guest code ran: the vCPU is booted again before the next one, so
   * that nothing of the abandoned operation lingers. A killed or reset VM needs no reboot here.
   */
  private recover(ctx: OpContext, e: unknown): never {
    const code = (e as { code?: unknown }).code;
    const vmGone = code === 'vm_killed' || code === 'vm_reset' || code === 'vcpu_init' || ctx.epoch !== this.host.state.epoch;
    if (!vmGone && !ctx.rebooted && code !== 'invalid_guest_state') this.rebootBefore = 'abort';
    this.forgetRegisters();
    throw e;
  }

  /**
   * KVM_RUN until the operation is over; returns a promise only when something must be awaited.
   * The time from here to the end of its last KVM_RUN is what the request spent (allowance.ts):
   * the clock is read once on entry and once after each KVM_RUN, nowhere else on this path.
   */
  private loop(ctx: OpContext): GuestResult | Promise<GuestResult> {
    const entered = performance.now();
    this.lastRunEnd = entered;
    if (ctx.allowance.started < 0) ctx.allowance.started = entered;
    try {
      return this.runFrom(ctx, entered);
    } finally {
      ctx.allowance.spentMs += this.lastRunEnd - entered;
    }
  }

  private runFrom(ctx: OpContext, entered: number): GuestResult | Promise<GuestResult> {
    const vcpu = this.vcpu;
    // Re-entered after every wait: an INIT meanwhile dropped KVM's pending completion and booted
    // the vCPU again, so nothing of this operation may run on.
    if (ctx.inits !== this.inits) {
      throw new VmmError('vcpu_init', `vCPU ${this.id} of VM "${this.host.name}" got INIT (initVcpu) while this ${ctx.request.op} waited; it was abandoned`);
    }
    const debug = ctx.debug;
    if (debug !== undefined && !ctx.debugStarted) {
      ctx.debugStarted = true;
      // The debugger reads and writes the registers with KVM_GET/SET_REGS: the request's go in
      // that way now, rather than with the first KVM_RUN (kvm_run.s.regs).
      if ((this.run.kvm_dirty_regs & KVM_SYNC_X86_REGS) !== 0) {
        const regs = copyRegs(this.run.s.regs);
        this.run.kvm_dirty_regs &= ~KVM_SYNC_X86_REGS;
        vcpu.setRegs(regs);
      }
      return debug.started().then(() => this.loop(ctx));
    }
    const allowance = ctx.allowance;
    const counter = this.counter;
    // When the request's time is up; KVM_RUN's deadline is that or, sooner, the end of this turn
    // (at least a step away), so that a guest that never exits gives others their turn too — on
    // either backend.
    // A template's own run limit on a backend that counts no instructions (TEMPLATE_RUN_MS) may
    // come first.
    const requestTimeUp = entered + (allowance.limits.maxRequestMs - allowance.spentMs);
    const timeUp = ctx.runUntil < requestTimeUp ? ctx.runUntil : requestTimeUp;
    const turnEnd = this.host.pacer.runUntil(allowance.started, entered);
    this.setDeadline(timeUp < turnEnd ? timeUp : turnEnd, entered);
    for (;;) {
      if (ctx.exitValue !== undefined) return this.exitPort(ctx);
      if (ctx.remaining < 1) return this.budgetSpent(ctx);
      if (allowance.owner?.closed === true) {
        throw new ProtocolError('connection_closed', `${ctx.request.op} was abandoned: the connection that asked for it is closed`);
      }
      if (this.lastRunEnd >= timeUp) return this.timeUp(ctx);
      let before = 0;
      if (counter !== undefined) {
        before = counter.instructionsRetired + counter.eventsDelivered;
        this.runOptions.budget = debug === undefined ? ctx.remaining : Math.min(ctx.remaining, debug.slice);
      }
      if (this.interrupted !== undefined) return this.afterInterrupt(ctx);
      this.exitPending = false;
      const exit = this.enter();
      this.lastRunEnd = performance.now();
      if (counter !== undefined) {
        const spent = Math.max(1, counter.instructionsRetired + counter.eventsDelivered - before);
        ctx.remaining -= spent;
        allowance.instructions -= spent;
      }
      // A kill from inside KVM_RUN (a denial KVM injected) ends the operation whatever exit the run
      // then ended with: the kick is not the only way out — the injected #PF may meet a #DF and
      // end the run in KVM_EXIT_SHUTDOWN first.
      // (Set during enter(), by a tracepoint listener: TypeScript's narrowing above cannot see that.)
      if ((this.interrupted as VmmError | 'pause' | undefined) instanceof Error) return this.afterInterrupt(ctx);
      switch (exit.reason) {
        case 'KVM_EXIT_HLT':
          return debug === undefined ? this.halted(ctx) : debugEnding(debug, () => this.halted(ctx));
        case 'KVM_EXIT_INTR':
          // The VMM kicked the vCPU out (interrupt): a memory denial it acts on.
          if (this.interrupted !== undefined) return this.afterInterrupt(ctx);
          // The deadline passed: the request's time is up, or its turn is over.
          if (exit.timed_out && this.lastRunEnd >= timeUp) return this.timeUp(ctx);
          // With a debugger, a slice ends here: it may stop the guest (Ctrl-C), and other VMs run.
          if (debug !== undefined && (exit.timed_out || (ctx.remaining > 0 && counter?.exceptionLoop == null))) {
            return debug.between().then(() => this.loop(ctx));
          }
          if (exit.timed_out) return this.yieldTurn(ctx);
          // Else, on the model, the budget is spent or the core found an exception loop. (The real
          // backend returns no other KVM_EXIT_INTR unless immediate_exit is set, which the VMM never sets.)
          if (counter !== undefined) return this.budgetSpent(ctx);
          break;
        case 'KVM_EXIT_DEBUG':
          if (debug === undefined) throw new ProtocolError('internal', `vCPU ${this.id} returned KVM_EXIT_DEBUG with no debugger attached`);
          return debug.debugExit(exit.debug).then(() => this.loop(ctx));
        case 'KVM_EXIT_SHUTDOWN':
          // A pause from inside the same KVM_RUN (a denial under onViolation "pause" whose #PF
          // ended in a triple fault) holds the shutdown too: nothing of it — onShutdown's reboot,
          // reset or kill — happens until the VM is resumed, as nothing of the guest runs on.
          if ((this.interrupted as VmmError | 'pause' | undefined) === 'pause') {
            this.interrupted = undefined;
            return this.host.state.beforeContinuing(ctx.epoch).then(() => this.shutdownExit(ctx, debug));
          }
          return this.shutdownExit(ctx, debug);
        case 'KVM_EXIT_FAIL_ENTRY':
          throw new VmmError('invalid_guest_state', `vCPU ${this.id} of VM "${this.host.name}" cannot enter the guest: ${exit.fail_entry.detail} (initVcpu or resetVm boots it again)`);
        case 'KVM_EXIT_INTERNAL_ERROR':
          // A real kernel that cannot go on with the guest — a PVM host's emulator meeting an
          // instruction it does not do (INT3 at CPL0) — is a host that lacks something, not a guest fault.
          throw new VmmError(
            'host_unsupported',
            `the host's KVM could not go on with vCPU ${this.id} at ${hex(this.run.s.regs.rip)}: KVM_EXIT_INTERNAL_ERROR, ` +
              `${exit.internal.suberror === KVM_INTERNAL_ERROR_EMULATION ? 'its instruction emulator failed (KVM_INTERNAL_ERROR_EMULATION)' : `suberror ${exit.internal.suberror}`} (docs/real-kvm.md)`,
          );
        default: {
          this.exitPending = true;
          if (--allowance.exits < 0) {
            this.host.answers.unanswered(this.id, this.run, ctx, userSpaceExit(exit));
            return this.limitReached(ctx, 'exits');
          }
          const next = this.host.answers.answer(this.id, this.run, ctx, userSpaceExit(exit));
          if (next !== undefined) {
            return next.then(() => {
              this.armRunLimit(ctx);
              return this.loop(ctx);
            });
          }
        }
      }
      if (this.lastRunEnd >= turnEnd) return this.yieldTurn(ctx);
    }
  }

  /**
   * KVM_RUN. KVM_EXIT_MEMORY_FAULT is the one exit KVM_RUN reports by failing, with -1 and errno
   * EFAULT (api.rst), kvm_run filled all the same: on either backend the VMM takes it as the exit
   * it is. (An EFAULT with another exit_reason is a failure, as any other errno.)
   */
  private enter(): VcpuExit {
    try {
      return this.vcpu.run(this.runOptions);
    } catch (e) {
      if (e instanceof KvmError && e.code === 'EFAULT' && this.run.reason === 'KVM_EXIT_MEMORY_FAULT') return this.run as unknown as VcpuExit;
      throw e;
    }
  }

  /**
   * Stops the operation under way on this vCPU, from inside its KVM_RUN (a tracepoint listener):
   * the vCPU is kicked out before the guest runs on, then the operation fails with `why`, or waits
   * for the paused VM to be resumed.
   */
  interrupt(why: VmmError | 'pause'): void {
    this.interrupted = why;
    this.vcpu.model?.kick();
  }

  private afterInterrupt(ctx: OpContext): Promise<GuestResult> {
    const why = this.interrupted;
    this.interrupted = undefined;
    if (why instanceof Error) throw why;
    return this.host.state.beforeContinuing(ctx.epoch).then(() => {
      this.armRunLimit(ctx);
      return this.loop(ctx);
    });
  }

  /**
   * KVM_RUN's deadline at `end` (a performance.now() time; `now` was read just before), rounded up
   * to a whole millisecond so that the runs of one millisecond — a server's back-to-back requests,
   * each a few µs — share one deadline: it is made (a clock read and a bigint) once, the real
   * backend arms its timer once for it, and the model reads no clock at the start of each run
   * (host/kvm/deadline-watch.ts). Deadlines are on process.hrtime's clock in ns, the request's
   * times on performance.now()'s in ms; both are CLOCK_MONOTONIC, so the time left carries over.
   */
  private setDeadline(end: number, now: number): void {
    const at = Math.ceil(end);
    if (at === this.deadlineAt) return;
    this.deadlineAt = at;
    this.runOptions.deadline = process.hrtime.bigint() + BigInt(Math.ceil((at - now) * 1e6));
  }

  /** Lets the event loop answer other clients (pacer.ts), then goes on with the operation. */
  private yieldTurn(ctx: OpContext): Promise<GuestResult> {
    return this.host.pacer.rest().then(() => this.host.state.beforeContinuing(ctx.epoch)).then(() => this.loop(ctx));
  }

  /** The vCPU halted: at the operation's end (done, or faulted and fixed up), or exec's own HLT. */
  private halted(ctx: OpContext): GuestResult {
    const regs = this.run.s.regs;
    if (ctx.exec !== undefined) {
      const stop = execStop(ctx.exec, regs, this.faults, this.host.memory, this.host.layout);
      if (stop.stop === 'hlt') {
        const { log, name } = this.host;
        if (log.wants('vcpu_halted', name)) log.emit('vcpu_halted', name, {}, this.id, regs.rip);
      }
      return this.withExits(ctx, stop);
    }
    if (regs.rip !== ctx.haltRip) {
      throw new ProtocolError('internal', `vCPU ${this.id} halted at ${hex(regs.rip)}, not at the end of ${ctx.request.op} (${hex(ctx.haltRip - 1n)}): has guest code changed the boot IDT or text?`);
    }
    // A CPL0 template leaves RSP where it found it: at the top of the kernel stack.
    if (ctx.haltRip !== this.doneHaltRip) this.kernelRspInPlace = true;
    if (this.faults.count > 0) {
      if (ctx.request.op === 'hypercall' && !this.host.hypercallsComplete) this.checkHypercallPatch(ctx, ctx.request.insn ?? 'vmcall');
      return this.withExits(ctx, { fault: this.fault() });
    }
    return this.withExits(ctx, ctx.lower!.read(regs));
  }

  /**
   * On a host whose CPL0 hypercalls never complete (HostFacts), the VMCALL of a template takes
   * #PF(W|P) at itself: KVM's emulator rewrites a hypercall instruction before it runs it
   * (emulator_fix_hypercall(), arch/x86/kvm/x86.c) and the template text is read-only. That
   * fault is the host's doing, not the guest's: the operation is refused as host_unsupported.
   */
  private checkHypercallPatch(ctx: OpContext, insn: string): void {
    const f = this.faults;
    const write = PFERR_WRITE | PFERR_PRESENT;
    if (f.vector !== PF_VECTOR || (f.errorCode & write) !== write || f.rip !== ctx.insnRip) return;
    if (this.vcpu.getSregs().cr2 !== ctx.insnRip) return;
    throw new VmmError(
      'host_unsupported',
      `the host cannot complete hypercalls at CPL0 (${this.host.hypercallsDetail}); this ${insn} at ${hex(ctx.insnRip)} took ` +
        `#PF(0x${f.errorCode.toString(16)}) when KVM's emulator tried to rewrite it (emulator_fix_hypercall) in read-only text (docs/real-kvm.md)`,
    );
  }

  private fault(): { vector: number; errorCode?: number } {
    const vector = this.faults.vector;
    return pushesErrorCode(vector) ? { vector, errorCode: this.faults.errorCode } : { vector };
  }

  private withExits<R extends object>(ctx: OpContext, result: R): R & GuestResult {
    const out = result as R & GuestResult & { console?: string; consoleDropped?: number };
    out.exits = ctx.exits;
    if (ctx.dropped > 0) out.exitsDropped = ctx.dropped;
    const printed = ctx.console;
    if (printed !== undefined) {
      // exit-answers.ts keeps at most MAX_EXEC_CONSOLE bytes and counts the rest.
      out.console = consoleText(printed);
      if (ctx.consoleDropped !== undefined) out.consoleDropped = ctx.consoleDropped;
    }
    return out;
  }

  /**
   * The operation ends before the guest finished it: the vCPU is booted again before the next
   * request, so that nothing of it lingers (a pending completion, a half-run template). Returns
   * the registers as the operation left them, for its result.
   */
  private abandon(ctx: OpContext): Regs {
    const regs = copyRegs(this.run.s.regs);
    this.rebootBefore = 'abort';
    this.forgetRegisters();
    ctx.rebooted = true;
    return regs;
  }

  /**
   * The code wrote to the exit port (isa-debug-exit): the run ends there, as QEMU exits. The OUT
   * has not retired (KVM completes it on the next KVM_RUN), so the vCPU is booted again first.
   */
  private exitPort(ctx: OpContext): GuestResult {
    const regs = this.abandon(ctx);
    return this.withExits(ctx, { stop: 'exit', regs, exitValue: ctx.exitValue } as unknown as ExecOutcome);
  }

  /**
   * KVM_EXIT_INTR on the model: the request's budget is spent, or the core found an exception
   * loop. exec reports it; any other op is refused. A slice of a longer run (pinbox run's turns)
   * whose budget is spent stops at an instruction boundary and goes on at the next slice.
   */
  private budgetSpent(ctx: OpContext): GuestResult {
    const loop = this.counter?.exceptionLoop ?? null;
    if (loop === null && ctx.slice) return this.withExits(ctx, { stop: 'budget', regs: copyRegs(this.run.s.regs) });
    const regs = this.abandon(ctx);
    if (loop !== null) {
      const fault = loop.errorCode === undefined ? { vector: loop.vector } : { vector: loop.vector, errorCode: loop.errorCode };
      if (ctx.exec !== undefined) return this.withExits(ctx, { stop: 'exception_loop', regs, fault });
      throw new VmmError('exception_loop', `${ctx.request.op}: vCPU ${this.id} of VM "${this.host.name}" ${describeExceptionLoop(loop)}; the vCPU was booted again`);
    }
    if (ctx.exec !== undefined) return this.withExits(ctx, { stop: 'budget', regs });
    throw limitError(`${ctx.request.op} ran out of its instruction budget of ${ctx.budget} guest instructions (the per-request budget, shared by the ops of a batch; pinbox serve --budget sets it)`);
  }

  /**
   * The request reached its limit of user-space exits (the exit that would pass it is not
   * answered) or of time. exec reports it; any other op is refused. Either way the vCPU is booted
   * again before the next request, as after a spent budget.
   */
  private limitReached(ctx: OpContext, limit: 'exits' | 'time'): GuestResult {
    const regs = this.abandon(ctx);
    if (ctx.exec !== undefined) return this.withExits(ctx, { stop: limit, regs });
    const { maxExits, maxRequestMs } = ctx.allowance.limits;
    throw limitError(limit === 'exits'
      ? `${ctx.request.op} stopped: ${ctx.allowance.what} may cause at most ${maxExits} user-space exits (pinbox serve --max-exits)`
      : `${ctx.request.op} stopped: ${ctx.allowance.what} may run for ${maxRequestMs} ms (pinbox serve --max-request-ms)`);
  }

  /**
   * KVM_RUN's deadline ended the request's time, or the operation's own run limit on a backend
   * that counts no instructions. A hypercall whose VMCALL has not retired by then is a host that
   * cannot complete it (a PVM host never completes a CPL0 hypercall, docs/real-kvm.md), not a
   * guest that ran too long.
   */
  private timeUp(ctx: OpContext): GuestResult {
    const rip = this.run.s.regs.rip;
    if (this.counter === undefined && ctx.request.op === 'hypercall' && rip === ctx.insnRip) {
      this.abandon(ctx);
      throw new VmmError(
        'host_unsupported',
        `the host cannot complete hypercalls: the ${ctx.request.insn ?? 'vmcall'} at ${hex(rip)} had not retired when KVM_RUN's deadline passed ` +
          '(RIP still on it), as on a PVM host, which never completes a CPL0 hypercall (docs/real-kvm.md)',
      );
    }
    if (this.lastRunEnd >= ctx.runUntil && ctx.exec === undefined) {
      this.abandon(ctx);
      throw limitError(`${ctx.request.op} ran out of time: its KVM_RUN reached its ${ctx.runMs} ms deadline before the guest halted`);
    }
    return this.limitReached(ctx, 'time');
  }

  /** The model's report of the exceptions that ended in the triple fault (none elsewhere). */
  private shutdownChain(): { chain?: readonly ChainedException[] } {
    const chain = this.vcpu.model?.shutdownChain;
    return chain === undefined ? {} : { chain };
  }

  /** KVM_EXIT_SHUTDOWN, told to a debugger first if one is attached. */
  private shutdownExit(ctx: OpContext, debug: RunDebugHook | undefined): GuestResult | Promise<GuestResult> {
    if (debug === undefined) return this.shutdown(ctx);
    return debug.ended({ stop: 'shutdown', regs: copyRegs(this.run.s.regs), ...this.shutdownChain() }).then(() => this.shutdown(ctx));
  }

  /** KVM_EXIT_SHUTDOWN: a triple fault. The policy's onShutdown decides what becomes of the VM. */
  private shutdown(ctx: OpContext): GuestResult {
    const regs = copyRegs(this.run.s.regs);
    const host = this.host;
    const what = host.onShutdown;
    if (what === 'reset') host.reset('shutdown');
    else if (what === 'kill') host.kill('shutdown');
    else {
      this.rebootBefore = 'shutdown';
      this.forgetRegisters();
    }
    ctx.rebooted = true;
    // The chain is for `pinbox run` (in place); the protocol's exec result has no field for it.
    if (ctx.exec !== undefined) return this.withExits(ctx, { stop: 'shutdown', regs, ...(ctx.exec.end === undefined && this.shutdownChain()) });
    const after = what === 'reboot' ? 'the vCPU was booted again' : what === 'reset' ? 'the VM was reset' : 'the VM was killed';
    throw new VmmError('guest_shutdown', `vCPU ${this.id} shut down (triple fault) during ${ctx.request.op}; ${after} (policy onShutdown "${what}")`);
  }
}
