/**
 * The control endpoint's session handler (PROTOCOL.md §6): a control client proves it holds
 * the server's token in its hello, then drives the VMM and the KVM model of any VM by name —
 * capabilities, the MSR filter, registers, MSRs, INIT, reset, resume, snapshots, the answer to
 * MSR exits, holding a vCPU in an exit — and reads the event log, by query or by
 * subscription. A KVM refusal travels as `kvm_error` with its errno (the KvmError's errno
 * name); a VM nobody has named yet is `not_found` (guests make VMs from the server's policy;
 * control clients act on them, or make one of their own policy with createVm).
 *
 * The same endpoint takes monitors — clients in the monitor role, the higher VTL of one VM
 * (monitor-endpoint.ts) — with the same token and none of the control ops.
 */
import { ProtocolError } from '../../../protocol/errors.js';
import { CONTROL_OPS, MAX_MEMORY_RUNS, type ControlOp, type Event as WireEvent, type HelloParams, type ParamsOf, type Request, type ResultOf } from '../../../protocol/messages/index.js';
import type { HandlerRequest, HelloReply, ServerSession, SessionHandler } from '../../../protocol/server-session.js';
import type { Regs } from '../../kvm/api/regs.js';
import { kvmRefusal, notFound } from '../errors.js';
import { isEventName, MAX_EVENTS_PER_QUERY, VMM_EVENTS, type EventName } from '../events/index.js';
import type { Machine, SregsPatch } from '../machine.js';
import { PolicyError, parsePolicyText, type CompiledPolicy } from '../policy/index.js';
import { restoreSnapshot, takeSnapshot } from '../snapshot.js';
import type { Vmm } from '../vmm.js';
import type { ConnectionRegistry } from './connections.js';
import { ControlToken } from './control-token.js';
import { pushEvents } from './event-push.js';
import type { ExitHolds } from './exit-holds.js';
import { MonitorSessions, type MonitorContext } from './monitor-endpoint.js';
import { TokenFailures } from './token-failures.js';
import { SERVER_NAME } from './guest-endpoint.js';

interface ControlContext {
  readonly connection: number;
  /** Active subscriptions: sub → unsubscribe. */
  readonly subscriptions: Map<number, () => void>;
}

type Req<O extends ControlOp> = ParamsOf<O>;
type Res<O extends ControlOp> = ResultOf<O>;

/**
 * One handler per control op, keyed by the protocol's op table: an op added to the protocol and
 * not handled here is a compile error, not a request refused at run time.
 */
type ControlHandlers = {
  readonly [K in ControlOp]: (session: ServerSession<ControlContext>, r: Request<K>) => Res<K>;
};

export class ControlEndpoint implements SessionHandler<ControlContext> {
  private nextSub = 1;
  private readonly started = Date.now();
  private readonly monitors: MonitorSessions;

  constructor(
    private readonly vmm: Vmm,
    private readonly token: ControlToken,
    private readonly connections: ConnectionRegistry,
    private readonly holds: ExitHolds,
    /** The guest endpoint's URLs, for the hello result. */
    private readonly guestEndpoints: readonly string[],
    /** Wrong tokens slow down and end connections (token-failures.ts). */
    private readonly failures: TokenFailures = new TokenFailures(),
  ) {
    this.monitors = new MonitorSessions(vmm, connections);
  }

  hello(session: ServerSession<ControlContext>, hello: HelloParams): HelloReply | Promise<HelloReply> {
    if (hello.role === 'monitor') {
      if (!this.token.matches(hello.token!)) {
        return this.failures.refuse(session as ServerSession<unknown>, new ProtocolError('bad_token', 'the control token is wrong', { path: 'token' }));
      }
      return this.monitors.hello(session as unknown as ServerSession<MonitorContext>, hello);
    }
    if (hello.role !== 'control') {
      throw new ProtocolError('forbidden', 'this is the control endpoint; guests connect to the guest endpoint (pinbox serve --listen)', { path: 'role' });
    }
    if (!this.token.matches(hello.token!)) {
      return this.failures.refuse(session as ServerSession<unknown>, new ProtocolError('bad_token', 'the control token is wrong', { path: 'token' }));
    }
    const connection = this.connections.greeted(session as ServerSession<never>, 'control');
    session.context = { connection, subscriptions: new Map() };
    const log = this.vmm.log;
    if (log.wants('control_connected', VMM_EVENTS)) {
      log.emit('control_connected', VMM_EVENTS, hello.client === undefined ? { connection } : { connection, client: hello.client });
    }
    return { server: SERVER_NAME, ...(this.guestEndpoints.length > 0 && { guestEndpoints: [...this.guestEndpoints] }) };
  }

  closed(session: ServerSession<ControlContext>): void {
    if (session.role === 'monitor') {
      this.monitors.closed(session as unknown as ServerSession<MonitorContext>);
      return;
    }
    const context = session.context;
    if (context === undefined) return;
    for (const off of context.subscriptions.values()) off();
    this.holds.releaseOwner(context.connection);
  }

  request(session: ServerSession<ControlContext>, request: HandlerRequest): unknown {
    try {
      if (session.role === 'monitor') return this.monitors.request(session as unknown as ServerSession<MonitorContext>, request);
      return this.run(session, request);
    } catch (e) {
      throw kvmRefusal(e);
    } finally {
      this.vmm.log.flush();
    }
  }

  private readonly handlers: ControlHandlers = {
    checkExtension: (_, r) => this.checkExtension(r),
    enableCap: (_, r) => this.enableCap(r),
    setMsrFilter: (_, r) => this.setMsrFilter(r),
    getMsrs: (_, r) => this.getMsrs(r),
    setMsrs: (_, r) => this.setMsrs(r),
    getRegs: (_, r) => ({ regs: this.machine(r.vm).getRegs(r.vcpu) }),
    setRegs: (_, r) => this.setRegs(r),
    getSregs: (_, r) => ({ sregs: this.machine(r.vm).getSregs(r.vcpu) }),
    setSregs: (_, r) => this.setSregs(r),
    initVcpu: (_, r) => this.done(() => this.machine(r.vm).initVcpu(r.vcpu)),
    subscribe: (session, r) => this.subscribe(session, r),
    unsubscribe: (session, r) => this.unsubscribe(session, r),
    events: (_, r) => this.events(r),
    resetVm: (_, r) => this.done(() => this.machine(r.vm).reset('control')),
    pauseVm: (_, r) => this.done(() => this.machine(r.vm).pause('control')),
    resumeVm: (_, r) => this.done(() => this.machine(r.vm).resume()),
    snapshot: (_, r) => ({ snapshot: takeSnapshot(this.machine(r.vm)) }),
    restore: (_, r) => this.done(() => restoreSnapshot(this.machine(r.vm), r.snapshot)),
    stats: () => this.stats(),
    setMsrExitReply: (_, r) => this.done(() => this.machine(r.vm).setMsrExitReply(r.msr)),
    createVm: (_, r) => this.createVm(r),
    destroyVm: (_, r) => this.done(() => this.removeVm(this.machine(r.vm))),
    setCrFilter: (_, r) => this.done(() => this.machine(r.vm).setCrFilter(crFilterOf(r), 'control')),
    setMemoryAttributes: (_, r) => this.done(() => this.machine(r.vm).setMemoryAttributes({ address: r.address, size: r.size, attributes: r.attributes })),
    getMemoryAttributes: (_, r) => {
      const view = this.machine(r.vm).memoryAttributes(r.address ?? 0n, MAX_MEMORY_RUNS);
      return {
        attributes: [...view.attributes], permissions: [...view.permissions], mbec: view.mbec, delivery: view.delivery,
        ...(view.next !== undefined && { next: view.next }),
      };
    },
    setCrExitReply: (_, r) => this.done(() => this.machine(r.vm).setCrExitReply(r.reply)),
    holdExit: (session, r) => this.done(() => this.holds.arm(this.machine(r.vm), r.vcpu, session.context!.connection)),
    releaseExit: (_, r) => this.releaseExit(r),
  };

  private run(session: ServerSession<ControlContext>, r: HandlerRequest): unknown {
    // The session passes only ops of the connection's role (control) to this handler; a guest op
    // here would be the session's bug, refused rather than looked up.
    if (!Object.hasOwn(CONTROL_OPS, r.op)) throw new ProtocolError('forbidden', `${r.op} is not a control op`);
    const handler = this.handlers[r.op as ControlOp] as (session: ServerSession<ControlContext>, r: HandlerRequest) => unknown;
    return handler(session, r);
  }

  private machine(name: string): Machine {
    const m = this.vmm.get(name);
    if (m === undefined) {
      const known = this.vmm.vmNames;
      throw notFound(`no VM "${name}" (${known.length === 0 ? 'no VM exists yet: a guest naming one makes it' : `VMs: ${known.join(', ')}`})`, 'vm');
    }
    return m;
  }

  private done(action: () => unknown): Record<string, never> {
    action();
    return {};
  }

  /**
   * A VM of the request's policy (the server's without one). Everything is checked before
   * anything changes: a bad policy or a name in use leaves the VMM as it was.
   */
  private createVm(r: Req<'createVm'>): Res<'createVm'> {
    const policy = r.policy === undefined ? this.vmm.policy : policyOfRequest(r.policy);
    const existing = this.vmm.get(r.vm);
    if (existing !== undefined && r.replace !== true) {
      throw new ProtocolError('already_exists', `VM "${r.vm}" exists already; destroyVm it first, or ask createVm to replace it`, { path: 'vm' });
    }
    if (existing !== undefined) this.removeVm(existing);
    const machine = this.vmm.createVm(r.vm, policy, 'control');
    if (r.guestToken !== undefined) machine.guestToken = new ControlToken(r.guestToken);
    return { vcpus: machine.vcpus, profile: machine.profile };
  }

  /** Drops a VM: its held exits go on first (and then find the VM killed). */
  private removeVm(machine: Machine): void {
    this.holds.releaseVm(machine);
    this.vmm.removeVm(machine.name);
  }

  private releaseExit(r: Req<'releaseExit'>): Res<'releaseExit'> {
    const machine = this.machine(r.vm);
    machine.vcpu(r.vcpu);
    return { held: this.holds.release(machine, r.vcpu, 'control') };
  }

  private checkExtension(r: Req<'checkExtension'>): Res<'checkExtension'> {
    return { value: r.vm === undefined ? this.vmm.kvm.checkExtension(r.cap) : this.machine(r.vm).checkExtension(r.cap) };
  }

  private enableCap(r: Req<'enableCap'>): Res<'enableCap'> {
    this.machine(r.vm).enableCap(r.cap, r.args ?? [], r.flags ?? 0);
    return {};
  }

  private setMsrFilter(r: Req<'setMsrFilter'>): Res<'setMsrFilter'> {
    this.machine(r.vm).setMsrFilter({ flags: r.flags, ranges: r.ranges }, 'control');
    return {};
  }

  private getMsrs(r: Req<'getMsrs'>): Res<'getMsrs'> {
    const entries = this.machine(r.vm).getMsrs(r.vcpu, r.indices);
    return { nmsrs: entries.length, entries: entries.map((e) => ({ index: e.index, value: e.data })) };
  }

  private setMsrs(r: Req<'setMsrs'>): Res<'setMsrs'> {
    const nmsrs = this.machine(r.vm).setMsrs(r.vcpu, r.entries.map((e) => ({ index: e.index, data: e.value })));
    return { nmsrs };
  }

  private setRegs(r: Req<'setRegs'>): Res<'setRegs'> {
    this.machine(r.vm).setRegs(r.vcpu, r.regs as Partial<Regs>);
    return {};
  }

  private setSregs(r: Req<'setSregs'>): Res<'setSregs'> {
    this.machine(r.vm).setSregs(r.vcpu, r.sregs as SregsPatch);
    return {};
  }

  /**
   * Events go out after the subscribe response (PROTOCOL.md §6): ones that happen before it is
   * written are held and sent on the next turn of the event loop, in order. A VM that does not
   * exist yet may be named: its events come once a guest or createVm makes it.
   */
  private subscribe(session: ServerSession<ControlContext>, r: Req<'subscribe'>): Res<'subscribe'> {
    const names: EventName[] | undefined = r.events?.map((name, i) => {
      if (!isEventName(name)) throw new ProtocolError('invalid_message', `events[${i}]: no event is called "${name}"`, { path: `events[${i}]` });
      return name;
    });
    const sub = this.nextSub++;
    const filter = { ...(r.vm !== undefined && { vm: r.vm }), ...(names !== undefined && { names }), completions: r.completions === true };
    session.context!.subscriptions.set(sub, pushEvents(session as ServerSession<unknown>, sub, this.vmm.log, filter));
    return { sub };
  }

  private unsubscribe(session: ServerSession<ControlContext>, r: Req<'unsubscribe'>): Res<'unsubscribe'> {
    const off = session.context!.subscriptions.get(r.sub);
    if (off === undefined) throw notFound(`no subscription ${r.sub} on this connection`, 'sub');
    off();
    session.context!.subscriptions.delete(r.sub);
    return {};
  }

  /** The ring of any VM named, even one gone or not made yet: its events may be there. */
  private events(r: Req<'events'>): Res<'events'> {
    const page = this.vmm.log.since(r.since ?? 0n, Math.min(r.limit ?? 1000, MAX_EVENTS_PER_QUERY), r.vm === undefined ? {} : { vm: r.vm });
    return { events: page.events as WireEvent[], next: page.next };
  }

  private stats(): Res<'stats'> {
    const c = this.connections;
    return {
      vms: this.vmm.vmCount,
      connections: c.count,
      uptimeMs: BigInt(Date.now() - this.started),
      requests: BigInt(c.requests),
      extra: {
        guestConnections: BigInt(c.byRole.guest),
        controlConnections: BigInt(c.byRole.control),
        maxConnections: BigInt(c.max),
        maxControlConnections: BigInt(c.maxControl),
        maxVms: BigInt(this.vmm.maxVms),
        maxControlVms: BigInt(this.vmm.maxControlVms),
        guestVms: BigInt(this.vmm.countOf('guest')),
        budget: BigInt(this.vmm.budget),
        maxExits: BigInt(this.vmm.limits.maxExits),
        maxRequestMs: BigInt(Math.min(this.vmm.limits.maxRequestMs, Number.MAX_SAFE_INTEGER)),
        events: this.vmm.log.nextSeq,
      },
    };
  }
}

/** A setCrFilter request as KVM takes the filter: flags and an XCR0 mask go to KVM, which judges them. */
function crFilterOf(r: Req<'setCrFilter'>): { cr0Mask: bigint; cr4Mask: bigint; flags?: number; xcr0Mask?: bigint } {
  return { cr0Mask: r.cr0Mask, cr4Mask: r.cr4Mask, ...(r.flags !== undefined && { flags: r.flags }), ...(r.xcr0Mask !== undefined && { xcr0Mask: r.xcr0Mask }) };
}

/** A createVm policy: the policy loader's problems, each with its JSON path, as `invalid_message` at `policy`. */
function policyOfRequest(text: string): CompiledPolicy {
  try {
    return parsePolicyText(text, 'policy');
  } catch (e) {
    if (e instanceof PolicyError) throw new ProtocolError('invalid_message', e.message, { path: 'policy' });
    throw e;
  }
}
