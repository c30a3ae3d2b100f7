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
 * records them, and for a denial does what the policy's onDenial says. IN reads all-ones (an
 * unclaimed ISA port); OUT is dropped — both are recorded as exits of the operation.
 */
import type { MsrAnswerSource } from '../policy/emulated-msrs.js';
import { EmulatedMsrs } from '../policy/emulated-msrs.js';
import type { CompiledPolicy, OnDenial } from '../policy/index.js';
import type { EventLog } from '../events/index.js';
import { MSR_REASON_NAMES, type MsrExitAnswer, type MsrExitChoice, type UserSpaceExit } from './user-space-exit.js';

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

export interface MsrDecision {
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

  constructor(
    private readonly vm: string,
    policy: CompiledPolicy,
    private readonly log: EventLog,
    private readonly handler: MsrExitHandler | undefined,
    private readonly onDenial: OnDenial,
  ) {
    this.emulated = new EmulatedMsrs(policy.msrHandlers, policy.vcpus);
  }

  /** Steps 2–4 above (the caller has consulted the request's own hook). */
  decideMsr(vcpu: number, exit: UserSpaceExit, rip: bigint): MsrDecision | Promise<MsrDecision> {
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
  static requestAnswer(choice: MsrExitChoice): MsrDecision {
    if (choice === 'untouched') return { choice, source: 'untouched' };
    return { choice: checkedAnswer(choice, 'the request\'s onExit hook'), source: 'request' };
  }

  /** The msr_exit_reply event. `answered` is what kvm_run.msr holds when the guest re-enters. */
  recordMsrReply(vcpu: number, exit: UserSpaceExit, answered: MsrExitAnswer, source: ExitAnswerSource, rip: bigint): void {
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

  recordConfigure(vcpu: number, exit: UserSpaceExit, rip: bigint): void {
    const h = exit.heki!;
    if (this.log.wants('heki_configure', this.vm)) {
      this.log.emit('heki_configure', this.vm, { reason: h.reason, cr: crOf(h.reason), cr_pinned: h.value }, vcpu, rip);
    }
  }

  /** Records a denial exit and returns what the VMM does about it (the policy's onDenial). */
  recordDenial(vcpu: number, exit: UserSpaceExit, rip: bigint): OnDenial {
    const h = exit.heki!;
    const action = this.onDenial;
    if (this.log.wants('heki_denial', this.vm)) {
      this.log.emit('heki_denial', this.vm, { reason: h.reason, cr: crOf(h.reason), cr_value: h.value, path: 'exit', action }, vcpu, rip);
    }
    return action;
  }
}

/** KVM_HEKI_EXIT_REASON_CR0 (1) → 0, _CR4 (2) → 4. */
export function crOf(reason: number): number {
  return reason === 1 ? 0 : 4;
}
