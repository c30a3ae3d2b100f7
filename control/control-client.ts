/**
 * A typed client for a pinbox server's control endpoint (PROTOCOL.md §6): one method per control
 * op, events in the catalogue's types (docs/events.md), subscriptions and held exits as objects.
 *
 *   const ctl = await ControlClient.connect('unix:/tmp/pinbox.ctl');   // token from /tmp/pinbox.ctl.token
 *   const sub = await ctl.subscribe({ vm: 'harden', events: ['heki_denial'] }, (e) => console.log(eventText(e)));
 *   const snap = await ctl.snapshot('harden');
 *   await ctl.resetVm('harden');
 *   await ctl.restore('harden', snap);
 *   await sub.close();
 *   ctl.close();
 *
 * Every method resolves with the op's result, or rejects with a ProtocolError: a RemoteError
 * carrying the server's `code` (`not_found`, `kvm_error` with its `errno`, `invalid_message`
 * with its `path`…), or a local `connection_closed`.
 */
import {
  ClientSession, type Connection, connect as openConnection, DEFAULT_MAX_FRAME, eventFromWire, type EventName, type HelloResult,
  type LoggedEvent as Event, type MsrExitReply, type ParamsOf, type PinboxAnswer, type ResultOf,
} from '../protocol/index.js';
import { resolveToken, type TokenSource } from './token.js';

export interface ControlConnectOptions extends TokenSource {
  /** Names this client in the server's logs (control_connected). */
  readonly client?: string;
  /** The largest frame sent or accepted (default 1 MiB, as every pinbox endpoint). */
  readonly maxFrame?: number;
}

/** What to subscribe to: one VM's events (it need not exist yet) or all, by name, with or without completions. */
export interface SubscribeFilter {
  readonly vm?: string;
  readonly events?: readonly EventName[];
  /** Also the HLT that ends each guest operation in the VMM's own code (docs/events.md). */
  readonly completions?: boolean;
}

export interface Subscription {
  /** The server's number for it. */
  readonly sub: number;
  /** Unsubscribes; the listener gets nothing more. */
  close(): Promise<void>;
}

/** A hold on a vCPU's next user-space exit (holdExit). */
export interface HeldExit {
  /** The `exit_held` event, once the vCPU sits in the exit. */
  readonly held: Promise<Event>;
  /** Lets the exit go on (releaseExit); true if an exit was held, false if the hold was not yet caught (then it is dropped). */
  release(): Promise<boolean>;
}

export type Regs = ResultOf<'getRegs'>['regs'];
export type Sregs = ResultOf<'getSregs'>['sregs'];
export type Stats = ResultOf<'stats'>;
export type MsrFilter = Omit<ParamsOf<'setMsrFilter'>, 'vm'>;
export type MsrEntry = ResultOf<'getMsrs'>['entries'][number];
export type MemoryAttributes = ResultOf<'getMemoryAttributes'>;

/** A CR filter's masks (docs/cr-filter.md). */
export interface CrFilterMasks {
  /** CR0 bits whose change by a guest write exits first (default none). */
  readonly cr0?: bigint;
  /** CR4 bits, likewise. */
  readonly cr4?: bigint;
  /** XCR0 bits, sent only when given (KVM refuses any but 0: the modelled CPU has no XSETBV). */
  readonly xcr0?: bigint;
  /** pinbox_cr_filter.flags, sent only when given (none is defined). */
  readonly flags?: number;
}

export class ControlClient {
  /** The server's name for itself. */
  readonly server: string;
  /** The URLs of the same server's guest endpoint, as it bound them (PROTOCOL.md §3). */
  readonly guestEndpoints: readonly string[];

  private constructor(private readonly session: ClientSession, hello: HelloResult) {
    this.server = hello.server;
    this.guestEndpoints = hello.guestEndpoints ?? [];
  }

  /**
   * Connects to a control endpoint — a URL (`unix:PATH`, `tcp:[HOST:]PORT`) or a Connection —
   * and says hello with the token: `options.token`, else the first line of `options.tokenFile`,
   * else of PATH.token for `unix:PATH` (where `pinbox serve` writes it by default).
   */
  static async connect(target: string | Connection, options: ControlConnectOptions = {}): Promise<ControlClient> {
    const token = resolveToken(typeof target === 'string' ? target : undefined, options);
    const connection = typeof target === 'string' ? await openConnection(target) : target;
    const session = new ClientSession(connection, { maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME });
    try {
      const hello = await session.hello({ role: 'control', token, ...(options.client !== undefined && { client: options.client }) });
      return new ControlClient(session, hello);
    } catch (e) {
      session.close();
      throw e;
    }
  }

  // The KVM API (KVM_CHECK_EXTENSION, KVM_ENABLE_CAP, KVM_X86_SET_MSR_FILTER, KVM_GET/SET_MSRS, KVM_GET/SET_(S)REGS).

  /** KVM_CHECK_EXTENSION on the system, or on a VM. */
  async checkExtension(cap: number, vm?: string): Promise<number> {
    return (await this.session.request('checkExtension', { cap, ...(vm !== undefined && { vm }) })).value;
  }

  async enableCap(vm: string, cap: number, args: readonly bigint[] = [], flags = 0): Promise<void> {
    await this.session.request('enableCap', { vm, cap, args: [...args], flags });
  }

  /** KVM_X86_SET_MSR_FILTER: KVM's own checks answer (kvm_error EINVAL, E2BIG, EFAULT…); a failed install leaves the old filter. */
  async setMsrFilter(vm: string, filter: MsrFilter): Promise<void> {
    await this.session.request('setMsrFilter', { vm, flags: filter.flags, ranges: filter.ranges });
  }

  /** KVM_GET_MSRS: the entries read, which stop at the first MSR KVM cannot read. */
  async getMsrs(vm: string, vcpu: number, indices: readonly number[]): Promise<MsrEntry[]> {
    return (await this.session.request('getMsrs', { vm, vcpu, indices: [...indices] })).entries;
  }

  /** KVM_SET_MSRS: how many entries were written (they stop at the first KVM refuses). */
  async setMsrs(vm: string, vcpu: number, entries: readonly MsrEntry[]): Promise<number> {
    return (await this.session.request('setMsrs', { vm, vcpu, entries: [...entries] })).nmsrs;
  }

  async getRegs(vm: string, vcpu: number): Promise<Regs> {
    return (await this.session.request('getRegs', { vm, vcpu })).regs;
  }

  /** Only the registers given change. */
  async setRegs(vm: string, vcpu: number, regs: ParamsOf<'setRegs'>['regs']): Promise<void> {
    await this.session.request('setRegs', { vm, vcpu, regs });
  }

  async getSregs(vm: string, vcpu: number): Promise<Sregs> {
    return (await this.session.request('getSregs', { vm, vcpu })).sregs;
  }

  /** Any subset, down to single segment fields. KVM_SET_SREGS is not checked against Heki pins (docs/heki.md §2.1). */
  async setSregs(vm: string, vcpu: number, sregs: ParamsOf<'setSregs'>['sregs']): Promise<void> {
    await this.session.request('setSregs', { vm, vcpu, sregs });
  }

  // The VMM's services.

  /**
   * A VM of its own policy (a policy document, or its JSON text; the server's policy without one).
   * With `guestToken`, only guests whose hello carries it may attach (docs/trust-model.md).
   */
  async createVm(vm: string, options: { policy?: string | object; replace?: boolean; guestToken?: string } = {}): Promise<ResultOf<'createVm'>> {
    const policy = options.policy === undefined ? undefined : typeof options.policy === 'string' ? options.policy : JSON.stringify(options.policy);
    return this.session.request('createVm', {
      vm,
      ...(policy !== undefined && { policy }),
      ...(options.replace !== undefined && { replace: options.replace }),
      ...(options.guestToken !== undefined && { guestToken: options.guestToken }),
    });
  }

  async destroyVm(vm: string): Promise<void> {
    await this.session.request('destroyVm', { vm });
  }

  /** The VM again as its policy makes it: memory, vCPUs, capabilities, MSR filter; Heki pins cleared. */
  async resetVm(vm: string): Promise<void> {
    await this.session.request('resetVm', { vm });
  }

  /** INIT for one vCPU, then the boot state; Heki pins stay. */
  async initVcpu(vm: string, vcpu: number): Promise<void> {
    await this.session.request('initVcpu', { vm, vcpu });
  }

  async pauseVm(vm: string): Promise<void> {
    await this.session.request('pauseVm', { vm });
  }

  async resumeVm(vm: string): Promise<void> {
    await this.session.request('resumeVm', { vm });
  }

  /** The VM's state as an opaque blob for restore(). */
  async snapshot(vm: string): Promise<Uint8Array> {
    return (await this.session.request('snapshot', { vm })).snapshot;
  }

  async restore(vm: string, snapshot: Uint8Array): Promise<void> {
    await this.session.request('restore', { vm, snapshot });
  }

  async stats(): Promise<Stats> {
    return this.session.request('stats', {});
  }

  /** How the VMM answers the VM's user-space MSR exits from now on; null: the policy's answer again. */
  async setMsrExitReply(vm: string, msr: MsrExitReply | null): Promise<void> {
    await this.session.request('setMsrExitReply', { vm, msr });
  }

  /**
   * PINBOX_SET_CR_FILTER (docs/cr-filter.md): the CR0 and CR4 bits whose change by a guest write
   * exits first; both 0 (or none given) clears it. KVM refusals reject with kvm_error EINVAL, and
   * the old filter stays.
   */
  async setCrFilter(vm: string, masks: CrFilterMasks): Promise<void> {
    await this.session.request('setCrFilter', {
      vm, cr0Mask: masks.cr0 ?? 0n, cr4Mask: masks.cr4 ?? 0n,
      ...(masks.xcr0 !== undefined && { xcr0Mask: masks.xcr0 }), ...(masks.flags !== undefined && { flags: masks.flags }),
    });
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES with pinbox's RWX attributes (docs/memory-protection.md): the
   * KVM_MEMORY_ATTRIBUTE_PINBOX_* bits on [address, address + size), 0 to clear. A refusal rejects
   * with kvm_error EINVAL (the KVM's reason), and nothing changes.
   */
  async setMemoryAttributes(vm: string, range: { address: bigint; size: bigint; attributes: bigint }): Promise<void> {
    await this.session.request('setMemoryAttributes', { vm, address: range.address, size: range.size, attributes: range.attributes });
  }

  /**
   * The VM's memory protections: attributes set, effective permissions (Heki's locks included),
   * MBEC, delivery. The server answers in pieces of at most MAX_MEMORY_RUNS runs per list; this
   * asks from each piece's `next` until none is left and returns them joined (runs cut between
   * pieces are joined again), without `next`.
   */
  async getMemoryAttributes(vm: string): Promise<MemoryAttributes> {
    const first = await this.session.request('getMemoryAttributes', { vm });
    const attributes = [...first.attributes], permissions = [...first.permissions];
    for (let next = first.next; next !== undefined;) {
      const piece = await this.session.request('getMemoryAttributes', { vm, address: next });
      joinRuns(attributes, piece.attributes, (a, b) => a.attributes === b.attributes);
      joinRuns(permissions, piece.permissions, (a, b) => a.read === b.read && a.write === b.write && a.exec === b.exec && a.userExec === b.userExec);
      next = piece.next;
    }
    return { attributes, permissions, mbec: first.mbec, delivery: first.delivery };
  }

  /** How the VMM answers the VM's CR-filter exits from now on; null: the policy's crFilter.answer again. */
  async setCrExitReply(vm: string, reply: PinboxAnswer | null): Promise<void> {
    await this.session.request('setCrExitReply', { vm, reply });
  }

  /**
   * Holds the vCPU's next user-space exit: the VMM records it (`held` resolves with the exit_held
   * event) and neither answers it nor runs the vCPU until `release()` — or until this client
   * closes, which lets it go on too.
   */
  async holdExit(vm: string, vcpu: number): Promise<HeldExit> {
    let caught!: (e: Event) => void;
    const held = new Promise<Event>((resolve) => (caught = resolve));
    const watch = await this.subscribe({ vm, events: ['exit_held'] }, (e) => {
      if (e.vcpu !== vcpu) return;
      caught(e);
      void watch.close().catch(() => {});
    });
    try {
      await this.session.request('holdExit', { vm, vcpu });
    } catch (e) {
      await watch.close().catch(() => {});
      throw e;
    }
    return { held, release: () => this.releaseExit(vm, vcpu) };
  }

  async releaseExit(vm: string, vcpu: number): Promise<boolean> {
    return (await this.session.request('releaseExit', { vm, vcpu })).held;
  }

  // Events.

  /** Calls `listener` with each event that matches, as it happens, until the subscription is closed. */
  async subscribe(filter: SubscribeFilter, listener: (event: Event) => void): Promise<Subscription> {
    const { sub } = await this.session.request('subscribe', {
      ...(filter.vm !== undefined && { vm: filter.vm }),
      ...(filter.events !== undefined && { events: [...filter.events] }),
      ...(filter.completions !== undefined && { completions: filter.completions }),
    });
    const off = this.session.onEvent(sub, (wire) => listener(eventFromWire(wire)));
    let open = true;
    return {
      sub,
      close: async () => {
        if (!open) return;
        open = false;
        off();
        if (!this.session.closed) await this.session.request('unsubscribe', { sub });
      },
    };
  }

  /**
   * One page of the VMM's ring (the last 10,000 of its own events; tracepoint mirrors are only
   * pushed): the events at or after `since`, and the `since` to ask with next.
   */
  async events(options: { vm?: string; since?: bigint; limit?: number } = {}): Promise<{ events: Event[]; next: bigint }> {
    const page = await this.session.request('events', {
      ...(options.vm !== undefined && { vm: options.vm }),
      ...(options.since !== undefined && { since: options.since }),
      ...(options.limit !== undefined && { limit: options.limit }),
    });
    return { events: page.events.map(eventFromWire), next: page.next };
  }

  /** Every event the ring holds from `since` on, page by page, up to the newest. */
  async *eventsSince(options: { vm?: string; since?: bigint } = {}): AsyncGenerator<Event> {
    let since = options.since ?? 0n;
    for (;;) {
      const page = await this.events({ ...options, since, limit: 10000 });
      yield* page.events;
      if (page.events.length === 0 || page.next === since) return;
      since = page.next;
    }
  }

  /** Called once the connection is gone. */
  onClose(listener: (error?: Error) => void): void {
    this.session.onClose(listener);
  }

  get closed(): boolean {
    return this.session.closed;
  }

  close(): void {
    this.session.close();
  }
}

/** Appends `more` to `runs`, joining the first of `more` to the last of `runs` where they touch with equal rights. */
function joinRuns<R extends { address: bigint; size: bigint }>(runs: R[], more: readonly R[], same: (a: R, b: R) => boolean): void {
  const last = runs[runs.length - 1], head = more[0];
  let rest = more;
  if (last !== undefined && head !== undefined && last.address + last.size === head.address && same(last, head)) {
    runs[runs.length - 1] = { ...last, size: last.size + head.size };
    rest = more.slice(1);
  }
  runs.push(...rest);
}
