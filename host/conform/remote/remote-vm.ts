/**
 * One scenario's VM on a pinbox server (target.ts, "Remote"): host operations are the control
 * ops of the same names on the runner's control connection; guest actions go over one guest
 * connection per vCPU the scenario uses, each opened when first needed.
 *
 * A guest action is preceded by `setMsrExitReply` with the step's answer (the VMM answers the
 * MSR exits itself; a VM reset drops the reply, so it is sent before every action rather than
 * remembered). A step with steps to run during its exit asks the server to hold the vCPU's
 * next exit first (`holdExit`), sends the action, and waits for whichever comes first: the
 * `exit_held` event — the vCPU now sits inside the exit, KVM_RUN returned and not yet answered:
 * the runner's steps run, the reply is set again (a nested guest step may have changed it) and
 * `releaseExit` lets the action finish — or the action's result, when it caused no exit (the
 * unspent hold is then dropped).
 */
import type { HekiProfileName } from '../../../protocol/abi.js';
import type { ClientSession } from '../../../protocol/client-session.js';
import { MAX_EXITS, type Exit, type Op, type ParamsOf, type ResultOf } from '../../../protocol/messages/index.js';
import { guestOutcome, wireGuestRequest } from '../guest-wire.js';
import type { ControlRegisterName, FilterRange, MsrEntry, MsrExitAnswer, RegisterValues, SregsField } from '../model.js';
import type { CheckExtensionResult, GuestOutcome, GuestRequest, MsrsResult, TargetVm } from '../target.js';
import type { HeldExits } from './held-exits.js';
import { targetExitOfWire } from './wire-exit.js';

/** What every VM of one remote target shares. */
export interface RemoteContext {
  readonly control: ClientSession;
  readonly held: HeldExits;
  /** Opens a guest connection, greeted for (vm, vcpu). */
  openGuest(vm: string, vcpu: number): Promise<ClientSession>;
  /** Opens a monitor connection for the VM (its higher VTL). */
  openMonitor(vm: string): Promise<ClientSession>;
}

type ControlOpName = Exclude<Op, 'hello'>;

/** What every guest result carries (PROTOCOL.md §5), beside the op's own values. */
interface GuestResultOnWire {
  readonly exits: readonly Exit[];
  readonly exitsDropped?: number;
}

export class RemoteVm implements TargetVm {
  private readonly guests = new Map<number, Promise<ClientSession>>();
  /** The VM's monitor, opened by the first setRegisterIntercepts or intercept answer other than deny. */
  private monitor: Promise<ClientSession> | undefined;
  /** Whether a CR-filter reply other than the VMM's default has been set (a reset drops it: sent before each action then). */
  private crReplySet = false;

  constructor(
    private readonly context: RemoteContext,
    readonly name: string,
    private readonly profile: HekiProfileName,
  ) {}

  private control<O extends ControlOpName>(op: O, params: ParamsOf<O>): Promise<ResultOf<O>> {
    return this.context.control.request(op, params);
  }

  async enableCap(cap: number, args: readonly bigint[], flags: number): Promise<void> {
    await this.control('enableCap', { vm: this.name, cap, args: [...args], flags });
  }

  checkExtension(cap: number): Promise<CheckExtensionResult> {
    return this.control('checkExtension', { vm: this.name, cap });
  }

  async setMsrFilter(flags: number, ranges: readonly FilterRange[]): Promise<void> {
    await this.control('setMsrFilter', {
      vm: this.name, flags, ranges: ranges.map((r) => ({ flags: r.flags, base: r.base, nmsrs: r.nmsrs, bitmap: r.bitmap })),
    });
  }

  getMsrs(vcpu: number, indices: readonly number[]): Promise<MsrsResult> {
    return this.control('getMsrs', { vm: this.name, vcpu, indices: [...indices] });
  }

  setMsrs(vcpu: number, entries: readonly MsrEntry[]): Promise<MsrsResult> {
    return this.control('setMsrs', { vm: this.name, vcpu, entries: entries.map((e) => ({ index: e.index, value: e.value })) });
  }

  async setSregs(vcpu: number, sregs: RegisterValues<SregsField>): Promise<void> {
    await this.control('setSregs', { vm: this.name, vcpu, sregs: { ...sregs } });
  }

  async resetVm(): Promise<void> {
    await this.control('resetVm', { vm: this.name });
  }

  async initVcpu(vcpu: number): Promise<void> {
    await this.control('initVcpu', { vm: this.name, vcpu });
  }

  async snapshot(): Promise<unknown> {
    return (await this.control('snapshot', { vm: this.name })).snapshot;
  }

  async restore(snapshot: unknown): Promise<void> {
    if (!(snapshot instanceof Uint8Array)) throw new TypeError('not a snapshot of this target');
    await this.control('restore', { vm: this.name, snapshot });
  }

  async setCrFilter(filter: { flags: number; cr0Mask: bigint; cr4Mask: bigint; xcr0Mask?: bigint }): Promise<void> {
    await this.control('setCrFilter', { vm: this.name, ...filter });
  }

  async setMemoryAttributes(attributes: { address: bigint; size: bigint; attributes: bigint }): Promise<void> {
    await this.control('setMemoryAttributes', { vm: this.name, ...attributes });
  }

  async setRegisterIntercepts(vcpu: number | undefined, spec: { control: bigint; cr0Mask: bigint; cr4Mask: bigint; miscEnableMask: bigint }): Promise<void> {
    this.monitor ??= this.context.openMonitor(this.name);
    await (await this.monitor).request('setRegisterIntercepts', { ...spec, ...(vcpu !== undefined && { vcpu }) });
  }

  async controlRegisters(vcpu: number): Promise<Record<ControlRegisterName, bigint>> {
    const { sregs: s } = await this.control('getSregs', { vm: this.name, vcpu });
    return { cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, cr8: s.cr8 };
  }

  async guest(request: GuestRequest): Promise<GuestOutcome> {
    const { vcpu, action } = request;
    await this.setReply(request.answer);
    await this.setCrReplies(request);
    const guest = await this.guestSession(vcpu);
    const { op, ...params } = wireGuestRequest(action, request.cpl);
    const send = (): Promise<GuestResultOnWire> => guest.request(op, params as never) as Promise<GuestResultOnWire>;
    const result = request.duringExit === undefined ? await send() : await this.holdingFirstExit(request, request.duringExit, send);
    if (result.exitsDropped !== undefined && result.exitsDropped > 0) {
      throw new Error(`the server left ${result.exitsDropped} exits out of the result (more than the protocol's ${MAX_EXITS})`);
    }
    return guestOutcome(action, result, result.exits.map((e) => targetExitOfWire(e, this.profile)));
  }

  /**
   * Sends the action with the vCPU's next exit held; runs `duringExit` while the vCPU sits in
   * it, sets the step's answer again, and releases it. An action without an exit spends no hold:
   * it is dropped.
   */
  private async holdingFirstExit(
    request: GuestRequest, duringExit: () => Promise<void>, send: () => Promise<GuestResultOnWire>,
  ): Promise<GuestResultOnWire> {
    const target = { vm: this.name, vcpu: request.vcpu };
    await this.control('holdExit', target);
    const wait = this.context.held.wait(this.name, request.vcpu);
    const pending = send();
    const first = await Promise.race([wait.held.then(() => 'held' as const), pending.then(() => 'done' as const, () => 'done' as const)]);
    if (first === 'held') {
      try {
        await duringExit();
        await this.setReply(request.answer);
      } finally {
        await this.control('releaseExit', target);
      }
    } else {
      wait.cancel();
      await this.control('releaseExit', target);
    }
    return pending;
  }

  /** Closes the guest connections and drops the VM (unless the server is gone already). */
  async close(): Promise<void> {
    const guests = await Promise.allSettled([...this.guests.values(), ...(this.monitor ? [this.monitor] : [])]);
    for (const g of guests) if (g.status === 'fulfilled') g.value.close();
    this.guests.clear();
    if (!this.context.control.closed) await this.control('destroyVm', { vm: this.name });
  }

  private async setReply(answer: MsrExitAnswer): Promise<void> {
    await this.control('setMsrExitReply', { vm: this.name, msr: answer === 'untouched' ? answer : { error: answer.error, data: answer.data } });
  }

  /**
   * The answers to CR-filter exits (setCrExitReply) and to register intercepts (as the VM's
   * monitor, setInterceptReply). The VMM's default for both is deny, the runner's too: a reply
   * is sent (and the monitor opened) only once the scenario has asked for another.
   */
  private async setCrReplies(request: GuestRequest): Promise<void> {
    const deny = (a: GuestRequest['crAnswer']): boolean => a.action === 'deny';
    if (!deny(request.crAnswer) || this.crReplySet) {
      await this.control('setCrExitReply', { vm: this.name, reply: wireAnswer(request.crAnswer) });
      this.crReplySet = !deny(request.crAnswer);
    }
    if (this.monitor === undefined && deny(request.interceptAnswer)) return;
    this.monitor ??= this.context.openMonitor(this.name);
    await (await this.monitor).request('setInterceptReply', { reply: wireAnswer(request.interceptAnswer) });
  }

  private guestSession(vcpu: number): Promise<ClientSession> {
    let session = this.guests.get(vcpu);
    if (session === undefined) {
      session = this.context.openGuest(this.name, vcpu);
      this.guests.set(vcpu, session);
    }
    return session;
  }
}

function wireAnswer(a: GuestRequest['crAnswer']): { action: 'allow' | 'deny' | 'value'; value?: bigint; limit?: number } {
  return { action: a.action, ...(a.value !== undefined && { value: a.value }), ...(a.limit !== undefined && { limit: a.limit }) };
}
