/**
 * How the VMM answers the exits of pinbox's CR-hardening extensions, and records them:
 *
 * KVM_EXIT_PINBOX_CR_FILTER (docs/cr-filter.md) — the first of:
 *   1. the in-process caller of the guest action (its `onExit` hook);
 *   2. a control client's standing reply (protocol `setCrExitReply`), until it is cleared;
 *   3. the policy's `crFilter.answer` (default deny).
 * KVM_EXIT_PINBOX_REG_INTERCEPT (docs/register-intercepts.md) — the first of:
 *   1. the in-process caller's hook;
 *   2. the VM's monitor, the higher VTL (an in-process function, or a client in the monitor
 *      role): it decides each intercept, and the vCPU waits for it;
 *   3. the policy's `registerIntercepts.answer` (default deny: the protection holds without one).
 * The answer is written into kvm_run for KVM to complete on the next KVM_RUN; the exit is
 * recorded as a `cr_filter_exit` or `register_intercept` event and among the operation's exits.
 */
import type { KvmRun } from '../../kvm/api/exits.js';
import type { EventLog } from '../events/index.js';
import type { CrAnswer } from '../policy/document.js';
import type { RunState } from '../run-state.js';
import {
  PINBOX_ANSWER_NUMBERS, protocolPinboxExit, type PinboxExitAnswer, type RegisterInterceptExit, type UserSpaceExit,
} from './user-space-exit.js';
import type { Exit } from '../../../protocol/messages/index.js';

/** What a monitor is told of one intercept. */
export interface InterceptContext {
  readonly vm: string;
  readonly vcpu: number;
  /** RIP of the intercepted instruction. */
  readonly rip: bigint;
  readonly intercept: RegisterInterceptExit;
}

/**
 * The higher VTL of a VM: decides each register intercept (it may take its time: the vCPU waits),
 * or returns undefined to leave it to the policy's answer.
 */
export type InterceptMonitor = (intercept: InterceptContext) => PinboxExitAnswer | undefined | Promise<PinboxExitAnswer>;

export type CrAnswerSource = 'request' | 'control' | 'monitor' | 'policy';

function isPromise<T>(v: T | Promise<T>): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

const U64_MAX = (1n << 64n) - 1n;

/** An answer from outside the VMM, checked as kvm_run's C fields will hold it. */
export function checkedPinboxAnswer(answer: unknown, who: string): PinboxExitAnswer {
  const a = answer as PinboxExitAnswer | null;
  if (typeof a !== 'object' || a === null || !(a.action in PINBOX_ANSWER_NUMBERS)) {
    throw new TypeError(`${who} must answer { action: 'allow' | 'deny' | 'value', value?, limit? }, got ${String(answer)}`);
  }
  if (a.value !== undefined && (typeof a.value !== 'bigint' || a.value < 0n || a.value > U64_MAX)) {
    throw new TypeError(`${who} must give the value as a u64 bigint, got ${String(a.value)}`);
  }
  if (a.limit !== undefined && (!Number.isInteger(a.limit) || a.limit < 0 || a.limit > 0xffff)) {
    throw new TypeError(`${who} must give the limit as a u16, got ${String(a.limit)}`);
  }
  return a;
}

const POLICY_ANSWER: Readonly<Record<CrAnswer, PinboxExitAnswer>> = { deny: { action: 'deny' }, allow: { action: 'allow' } };

/** Where the answering reports to: the operation's exits. */
export interface RecordsExits {
  record(exit: Exit): void;
}

export class CrExitAnswers {
  /** A control client's standing reply to CR-filter exits (setCrExitReply), or null for the policy. */
  crOverride: PinboxExitAnswer | null = null;

  constructor(
    private readonly vm: string,
    private readonly log: EventLog,
    private readonly state: RunState,
    private readonly filterAnswer: CrAnswer,
    private readonly interceptAnswer: CrAnswer,
    /** The VM's monitor now, if one is attached. */
    private readonly monitor: () => InterceptMonitor | undefined,
  ) {}

  /** Answers a CR-filter exit or a register intercept; a promise only when the monitor must be awaited. */
  answer(
    vcpu: number, run: KvmRun, exit: UserSpaceExit, rip: bigint, epoch: number, hook: PinboxExitAnswer | undefined, out: RecordsExits,
  ): Promise<void> | undefined {
    if (exit.cr !== undefined) {
      const [answer, source] = hook !== undefined ? [checkedPinboxAnswer(hook, 'the request\'s onExit hook'), 'request' as const]
        : this.crOverride !== null ? [this.crOverride, 'control' as const] : [POLICY_ANSWER[this.filterAnswer], 'policy' as const];
      this.applyCr(vcpu, run, exit, rip, answer, source, out);
      return undefined;
    }
    const intercept = exit.intercept!;
    if (hook !== undefined) {
      this.applyIntercept(vcpu, run, exit, rip, checkedPinboxAnswer(hook, 'the request\'s onExit hook'), 'request', out);
      return undefined;
    }
    const monitor = this.monitor();
    if (monitor === undefined) {
      this.applyIntercept(vcpu, run, exit, rip, POLICY_ANSWER[this.interceptAnswer], 'policy', out);
      return undefined;
    }
    const decided = monitor({ vm: this.vm, vcpu, rip, intercept });
    if (decided === undefined) {
      this.applyIntercept(vcpu, run, exit, rip, POLICY_ANSWER[this.interceptAnswer], 'policy', out);
      return undefined;
    }
    if (!isPromise(decided)) {
      this.applyIntercept(vcpu, run, exit, rip, checkedPinboxAnswer(decided, 'the monitor'), 'monitor', out);
      return undefined;
    }
    return decided.then((a) => {
      this.state.checkContinuing(epoch);
      this.applyIntercept(vcpu, run, exit, rip, checkedPinboxAnswer(a, 'the monitor'), 'monitor', out);
    });
  }

  private applyCr(vcpu: number, run: KvmRun, exit: UserSpaceExit, rip: bigint, a: PinboxExitAnswer, source: CrAnswerSource, out: RecordsExits): void {
    const f = run.cr_filter;
    f.action = PINBOX_ANSWER_NUMBERS[a.action];
    f.value = a.value ?? 0n;
    const c = exit.cr!;
    if (this.log.wants('cr_filter_exit', this.vm)) {
      this.log.emit('cr_filter_exit', this.vm, {
        cr: c.cr, access: c.access, old_value: c.old, new_value: c.new, action: a.action, value: f.value, source,
      }, vcpu, rip);
    }
    out.record(protocolPinboxExit(exit, a));
  }

  private applyIntercept(
    vcpu: number, run: KvmRun, exit: UserSpaceExit, rip: bigint, a: PinboxExitAnswer, source: CrAnswerSource, out: RecordsExits,
  ): void {
    const r = run.reg_intercept;
    r.action = PINBOX_ANSWER_NUMBERS[a.action];
    r.value = a.value ?? 0n;
    r.limit = a.limit ?? 0;
    const i = exit.intercept!;
    if (this.log.wants('register_intercept', this.vm)) {
      this.log.emit('register_intercept', this.vm, {
        intercept: i.name, ...(i.msr !== 0 && { msr: i.msr }), old_value: i.old, new_value: i.new, action: a.action, value: r.value, source,
      }, vcpu, rip);
    }
    out.record(protocolPinboxExit(exit, a));
  }
}
