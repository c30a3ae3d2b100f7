/**
 * How the VMM answers the user-space exits of one VM, and records them in the event log.
 *
 * MSR exits (KVM_EXIT_X86_RDMSR / WRMSR) are answered by the first of, in order:
 *   1. the in-process caller of the guest action (`onExit` of that one request: conformance
 *      scenarios that script each answer);
 *   2. a control client's override (protocol `setMsrExitReply`), until it is cleared;
 *   3. the VMM's in-process handler function (VmmOptions.msrHandler), unless it returns undefined;
 *   4. the policy's msrHandlers (policy/emulated-msrs.ts): no handler means error 1, so KVM
 *      injects the #GP the guest would have had without the exit.
 * Heki CONFIGURE and DENIAL exits need no answer (KVM completes them: RAX = 0, #GP); the VMM
 * records them, and for a denial does what the policy's onDenial says. A KVM_EXIT_MEMORY_FAULT is
 * recorded as memory_denial, memory.onViolation applied, and the #PF KVM would have injected
 * reflected into the guest (memory-denials.ts). IN and OUT go to the
 * VM's devices (devices/: the serial console, the exit port; a port nothing claims reads
 * all-ones and drops writes, as on an ISA bus) — both are recorded as exits of the operation. The exits of pinbox's CR filter
 * and register intercepts are answered by cr-exit-answers.ts.
 */
import { ProtocolError } from '../../../protocol/errors.js';
import { MAX_EXEC_CONSOLE, MAX_EXITS, type Exit } from '../../../protocol/messages/index.js';
import { hex } from '../../../protocol/notation.js';
import type { KvmRun } from '../../kvm/api/exits.js';
import { VmmError } from '../errors.js';
import type { EventLog } from '../events/index.js';
import type { MsrAnswerSource } from '../policy/emulated-msrs.js';
import { EmulatedMsrs } from '../policy/emulated-msrs.js';
import type { CompiledPolicy, OnDenial } from '../policy/index.js';
import type { RunState } from '../run-state.js';
import type { PortDevices } from '../devices/index.js';
import { CrExitAnswers, type InterceptMonitor } from './cr-exit-answers.js';
import { MemoryDenials, reflectedPageFault, type MemoryDenial } from './memory-denials.js';
import type { ExceptionEvent } from '../../kvm/api/memory-fault.js';
import {
  isPinboxAnswer, MSR_REASON_NAMES, protocolExit, type ExitChoice, type MsrExitAnswer, type MsrExitChoice, type PinboxExitAnswer,
  type UserSpaceExit,
} from './user-space-exit.js';

/** What the VMM's in-process MSR handler sees. */
export interface MsrExitContext {
  readonly vm: string;
  readonly vcpu: number;
  readonly write: boolean;
  readonly index: number;
  readonly reason: 'INVAL' | 'UNKNOWN' | 'FILTER';
  /** For a write, the value written; 0 for a read. */
  readonly data: bigint;
  /** RIP of the RDMSR/WRMSR. */
  readonly rip: bigint;
}

/** The VMM's in-process handler: an answer, or undefined to leave the exit to the policy. */
export type MsrExitHandler = (exit: MsrExitContext) => MsrExitAnswer | undefined | Promise<MsrExitAnswer | undefined>;

export type ExitAnswerSource = MsrAnswerSource | 'function' | 'request' | 'untouched' | 'control';

/**
 * The in-process caller's hook (step 1 above): called at each user-space exit of its request,
 * before the VMM answers; it may answer an MSR exit itself (or return 'untouched'), and may await.
 */
export type ExitHook = (exit: UserSpaceExit) => void | ExitChoice | Promise<void | ExitChoice>;

/** The guest operation an exit belongs to (vcpu-runner.ts): its hook, and the exits it reports. */
export interface AnsweredOperation {
  readonly hook: ExitHook | undefined;
  /** The VM's run epoch when the operation began: a reset or kill meanwhile ends it. */
  readonly epoch: number;
  readonly exits: Exit[];
  /** Exits beyond MAX_EXITS, counted but not listed. */
  dropped: number;
  /** Bytes the operation's code transmitted on the serial console: the first MAX_EXEC_CONSOLE, the rest counted. */
  console?: number[];
  consoleDropped?: number;
  /** The value the code wrote to the exit port (isa-debug-exit), which ends the run. */
  exitValue?: number;
}

/** What answering acts on besides the event log: the VM's run state and lifecycle (machine.ts). */
export interface AnswerHost {
  readonly name: string;
  readonly state: RunState;
  pause(cause: 'heki_denial' | 'memory_denial'): void;
  kill(cause: 'heki_denial' | 'memory_denial'): void;
  /** The #PF of a memory fault, reflected into vCPU `vcpu` as KVM would have queued it (KVM_GET/SET_VCPU_EVENTS). */
  reflectException(vcpu: number, event: ExceptionEvent): void;
  flush(): void;
  /** The VM's monitor (the higher VTL), if one is attached: it decides register intercepts. */
  monitor(): InterceptMonitor | undefined;
}

interface MsrDecision {
  readonly choice: MsrExitChoice;
  readonly source: ExitAnswerSource;
}

/** kvm_run.msr.error is a __u8: a handler's answer must fit it. */
function checkedAnswer(answer: MsrExitAnswer, who: string): MsrExitAnswer {
  if (typeof answer !== 'object' || answer === null || !Number.isInteger(answer.error) || answer.error < 0 || answer.error > 255) {
    throw new TypeError(`${who} must answer { error: 0..255, data: bigint }, got ${String(answer)}`);
  }
  if (typeof answer.data !== 'bigint' || answer.data < 0n || answer.data >= 1n << 64n) {
    throw new TypeError(`${who} must answer data as a u64 bigint, got ${String(answer.data)}`);
  }
  return answer;
}

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

export class ExitAnswers {
  /** A control client's override (setMsrExitReply), or null for the policy. */
  override: MsrExitChoice | null = null;
  readonly emulated: EmulatedMsrs;
  /** The CR filter's and the register intercepts' exits. */
  readonly cr: CrExitAnswers;
  /** Accesses a memory protection refused, by either path. */
  readonly memory: MemoryDenials;
  private readonly vm: string;

  constructor(
    private readonly host: AnswerHost,
    policy: CompiledPolicy,
    private readonly log: EventLog,
    private readonly handler: MsrExitHandler | undefined,
    private readonly onDenial: OnDenial,
    /** The ports user space answers (devices/): the serial console, the exit port. */
    readonly devices: PortDevices,
  ) {
    this.vm = host.name;
    this.emulated = new EmulatedMsrs(policy.msrHandlers, policy.vcpus);
    this.memory = new MemoryDenials(host.name, log, policy.memory);
    this.cr = new CrExitAnswers(host.name, log, host.state, policy.crFilterAnswer, policy.interceptAnswer, () => host.monitor());
  }

  /**
   * Answers one user-space exit of vCPU `vcpu` that operation `op` caused: the hook first, then
   * the answer written into `run` (kvm_run) for KVM to complete on the next KVM_RUN, the exit
   * recorded in the event log and among the operation's exits. A promise only when something had
   * to be awaited (the hook, an async handler, a paused VM).
   */
  answer(vcpu: number, run: KvmRun, op: AnsweredOperation, exit: UserSpaceExit): Promise<void> | undefined {
    const rip = run.s.regs.rip;
    if (op.hook === undefined) return this.answerExit(vcpu, run, op, exit, rip, undefined);
    const hooked = op.hook(exit);
    if (isPromise<void | ExitChoice>(hooked)) {
      return hooked.then((choice) => {
        this.host.state.checkContinuing(op.epoch);
        return this.answerExit(vcpu, run, op, exit, rip, choice ?? undefined);
      });
    }
    return this.answerExit(vcpu, run, op, exit, rip, hooked ?? undefined);
  }

  private answerExit(
    vcpu: number, run: KvmRun, op: AnsweredOperation, exit: UserSpaceExit, rip: bigint, hookChoice: ExitChoice | undefined,
  ): Promise<void> | undefined {
    const host = this.host;
    switch (exit.reason) {
      case 'KVM_EXIT_X86_RDMSR':
      case 'KVM_EXIT_X86_WRMSR': {
        if (hookChoice !== undefined && isPinboxAnswer(hookChoice)) throw new TypeError('the request\'s onExit hook answered an MSR exit with a CR-filter answer');
        const decision = hookChoice !== undefined ? ExitAnswers.requestAnswer(hookChoice) : this.decideMsr(vcpu, exit, rip);
        if (!isPromise<MsrDecision>(decision)) {
          this.applyMsr(vcpu, run, op, exit, decision, rip);
          return undefined;
        }
        return decision.then((d) => {
          host.state.checkContinuing(op.epoch);
          this.applyMsr(vcpu, run, op, exit, d, rip);
        });
      }
      case 'KVM_EXIT_HEKI_CONFIGURE':
        this.recordConfigure(vcpu, exit, rip);
        record(op, protocolExit(exit));
        return undefined;
      case 'KVM_EXIT_HEKI_DENIAL': {
        const action = this.recordDenial(vcpu, exit, rip);
        record(op, protocolExit(exit));
        if (action === 'kill') this.killForDenial(vcpu, exit);
        if (action === 'pause') {
          host.pause('heki_denial');
          host.flush();
          return host.state.beforeContinuing(op.epoch);
        }
        return undefined;
      }
      case 'KVM_EXIT_MEMORY_FAULT': {
        // Nothing in kvm_run to answer: KVM retries the access on re-entry, so the VMM reflects
        // the #PF KVM would have injected (else the guest would retry it for ever).
        const d = exit.memory!;
        const action = this.memory.record(vcpu, d, rip, 'exit');
        record(op, protocolExit(exit));
        if (action === 'kill') this.killForMemoryDenial(vcpu, d);
        if (action === 'pause') {
          host.pause('memory_denial');
          host.flush();
          return host.state.beforeContinuing(op.epoch).then(() => host.reflectException(vcpu, reflectedPageFault(d)));
        }
        host.reflectException(vcpu, reflectedPageFault(d));
        return undefined;
      }
      case 'KVM_EXIT_PINBOX_CR_FILTER':
      case 'KVM_EXIT_PINBOX_REG_INTERCEPT': {
        const answer = hookChoice !== undefined && isPinboxAnswer(hookChoice) ? hookChoice : undefined;
        return this.cr.answer(vcpu, run, exit, rip, op.epoch, answer as PinboxExitAnswer | undefined, { record: (e) => record(op, e) });
      }
      case 'KVM_EXIT_IO': {
        const io = exit.io!;
        let value = io.value;
        if (io.direction === 'in') {
          value = this.devices.read(io.port, io.size);
          run.io.data = value;
        } else {
          const done = this.devices.write(vcpu, io.port, value, rip);
          if (done.kind === 'console') keepConsoleByte(op, done.byte);
          else if (done.kind === 'exit') op.exitValue = done.value;
        }
        record(op, protocolExit(exit, undefined, value));
        return undefined;
      }
      default:
        throw new ProtocolError('internal', `vCPU ${vcpu} returned ${exit.reason}, which the VMM does not handle`);
    }
  }

  /**
   * An exit the request may no longer have answered (its limit of user-space exits is reached):
   * recorded all the same, so that a guest cannot hide a denial behind a spent allowance. A Heki
   * denial is a denial like any other — recorded as such, and the policy's onDenial applies (a
   * pause takes effect for the next request; this one ends here).
   */
  unanswered(vcpu: number, run: KvmRun, op: AnsweredOperation, exit: UserSpaceExit): void {
    const rip = run.s.regs.rip;
    if (this.log.wants('exit_unanswered', this.vm)) this.log.emit('exit_unanswered', this.vm, { reason: exit.reason, cause: 'exits' }, vcpu, rip);
    if (exit.memory !== undefined) {
      // The access is abandoned with the operation (the vCPU is booted again): nothing to reflect.
      const action = this.memory.record(vcpu, exit.memory, rip, 'exit');
      record(op, protocolExit(exit));
      if (action === 'kill') this.killForMemoryDenial(vcpu, exit.memory);
      if (action === 'pause') this.host.pause('memory_denial');
      return;
    }
    if (exit.reason !== 'KVM_EXIT_HEKI_DENIAL') return;
    const action = this.recordDenial(vcpu, exit, rip);
    record(op, protocolExit(exit));
    if (action === 'kill') this.killForDenial(vcpu, exit);
    if (action === 'pause') this.host.pause('heki_denial');
  }

  /** onDenial "kill": the VM is stopped for good, and the operation fails saying why. */
  private killForDenial(vcpu: number, exit: UserSpaceExit): never {
    this.host.kill('heki_denial');
    throw new VmmError('vm_killed', `VM "${this.host.name}" was killed: vCPU ${vcpu} tried to write ${hex(exit.heki!.value)} to a pinned control register (onDenial "kill")`);
  }

  /** memory.onViolation "kill": the VM is stopped for good, and the operation fails naming the page and the access. */
  private killForMemoryDenial(vcpu: number, denial: MemoryDenial): never {
    this.host.kill('memory_denial');
    throw this.memory.killed(vcpu, denial);
  }

  /** Writes the decision into kvm_run.msr, then records what the guest will see. */
  private applyMsr(vcpu: number, run: KvmRun, op: AnsweredOperation, exit: UserSpaceExit, decision: MsrDecision, rip: bigint): void {
    const msr = run.msr;
    const write = exit.reason === 'KVM_EXIT_X86_WRMSR';
    if (decision.choice !== 'untouched') {
      msr.error = decision.choice.error;
      if (!write) msr.data = decision.choice.data;
    }
    const answered = { error: msr.error, data: write ? exit.msr!.data : msr.data };
    this.recordMsrReply(vcpu, exit, answered, decision.source, rip);
    record(op, protocolExit(exit, answered));
  }

  /** Steps 2–4 above (the request's own hook has not answered). */
  private decideMsr(vcpu: number, exit: UserSpaceExit, rip: bigint): MsrDecision | Promise<MsrDecision> {
    const msr = exit.msr!;
    const write = exit.reason === 'KVM_EXIT_X86_WRMSR';
    if (this.override !== null) return { choice: this.override, source: this.override === 'untouched' ? 'untouched' : 'control' };
    if (this.handler !== undefined) {
      const context: MsrExitContext = {
        vm: this.vm, vcpu, write, index: msr.index, reason: MSR_REASON_NAMES[msr.reason] ?? 'FILTER', data: msr.data, rip,
      };
      const answer = this.handler(context);
      if (isPromise(answer)) return answer.then((a) => this.afterHandler(a, vcpu, write, msr.index, msr.data));
      return this.afterHandler(answer, vcpu, write, msr.index, msr.data);
    }
    return this.fromPolicy(vcpu, write, msr.index, msr.data);
  }

  private afterHandler(answer: MsrExitAnswer | undefined, vcpu: number, write: boolean, index: number, data: bigint): MsrDecision {
    if (answer === undefined) return this.fromPolicy(vcpu, write, index, data);
    return { choice: checkedAnswer(answer, 'the VMM\'s MSR handler'), source: 'function' };
  }

  private fromPolicy(vcpu: number, write: boolean, index: number, data: bigint): MsrDecision {
    const a = write ? this.emulated.write(vcpu, index, data) : this.emulated.read(vcpu, index);
    return { choice: a, source: a.source };
  }

  /** Checks an answer that came from the request's own hook. */
  private static requestAnswer(choice: MsrExitChoice): MsrDecision {
    if (choice === 'untouched') return { choice, source: 'untouched' };
    return { choice: checkedAnswer(choice, 'the request\'s onExit hook'), source: 'request' };
  }

  /** The msr_exit_reply event. `answered` is what kvm_run.msr holds when the guest re-enters. */
  private recordMsrReply(vcpu: number, exit: UserSpaceExit, answered: MsrExitAnswer, source: ExitAnswerSource, rip: bigint): void {
    if (!this.log.wants('msr_exit_reply', this.vm)) return;
    const msr = exit.msr!;
    this.log.emit('msr_exit_reply', this.vm, {
      write: exit.reason === 'KVM_EXIT_X86_WRMSR',
      index: msr.index,
      reason: (MSR_REASON_NAMES[msr.reason] ?? 'FILTER').toLowerCase(),
      data: answered.data,
      error: answered.error,
      source,
    }, vcpu, rip);
  }

  private recordConfigure(vcpu: number, exit: UserSpaceExit, rip: bigint): void {
    const h = exit.heki!;
    if (this.log.wants('heki_configure', this.vm)) {
      this.log.emit('heki_configure', this.vm, { reason: h.reason, cr: crOf(h.reason), cr_pinned: h.value }, vcpu, rip);
    }
  }

  /** Records a denial exit and returns what the VMM does about it (the policy's onDenial). */
  private recordDenial(vcpu: number, exit: UserSpaceExit, rip: bigint): OnDenial {
    const h = exit.heki!;
    const action = this.onDenial;
    if (this.log.wants('heki_denial', this.vm)) {
      this.log.emit('heki_denial', this.vm, { reason: h.reason, cr: crOf(h.reason), cr_value: h.value, path: 'exit', action }, vcpu, rip);
    }
    return action;
  }
}

/** One of the operation's exits, as its result reports them: at most MAX_EXITS, the rest counted. */
function record(op: AnsweredOperation, exit: Exit): void {
  if (op.exits.length < MAX_EXITS) op.exits.push(exit);
  else op.dropped++;
}

/**
 * What the operation printed, as its result carries it: no more than MAX_EXEC_CONSOLE bytes are
 * kept, so that a guest printing for ever (pinbox run has no exit limit) grows nothing.
 */
function keepConsoleByte(op: AnsweredOperation, byte: number): void {
  const kept = (op.console ??= []);
  if (kept.length < MAX_EXEC_CONSOLE) kept.push(byte);
  else op.consoleDropped = (op.consoleDropped ?? 0) + 1;
}

/** KVM_HEKI_EXIT_REASON_CR0 (1) → 0, _CR4 (2) → 4. */
export function crOf(reason: number): number {
  return reason === 1 ? 0 : 4;
}
