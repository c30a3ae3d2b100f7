/**
 * Monitor sessions (PROTOCOL.md §6.3; docs/register-intercepts.md): a client that says hello on
 * the control endpoint as `monitor`, with the server's token, becomes the higher VTL of the VM its
 * hello names — the VM need not exist yet — and can do nothing else: set the VM's register
 * intercepts and decide them. A VM has one monitor; a second is refused (`already_exists`).
 *
 * How an intercept is decided while a monitor is attached: its standing reply (setInterceptReply)
 * if it set one; else, once it watches (watchIntercepts), an `intercept_pending` event is pushed
 * and the vCPU waits for answerIntercept naming the event's `seq`; else the policy's answer.
 * When the monitor's connection closes its intercepts stay, pending ones are denied (fail
 * closed: the guest takes #GP(0)), and the policy answers until another monitor comes.
 */
import { ProtocolError } from '../../../protocol/errors.js';
import { MONITOR_OPS, type HelloParams, type MonitorOp, type ParamsOf, type Request, type ResultOf } from '../../../protocol/messages/index.js';
import type { HandlerRequest, HelloReply, ServerSession } from '../../../protocol/server-session.js';
import { notFound } from '../errors.js';
import type { Machine } from '../machine.js';
import type { InterceptContext } from '../run/cr-exit-answers.js';
import type { PinboxExitAnswer } from '../run/user-space-exit.js';
import type { Vmm } from '../vmm.js';
import type { ConnectionRegistry } from './connections.js';
import { pushEvents } from './event-push.js';
import { SERVER_NAME } from './guest-endpoint.js';

const ALL = (1n << 64n) - 1n;
/** What a watching monitor is pushed: the intercepts to decide, and what makes it arm again. */
const WATCHED = ['intercept_pending', 'vm_reset', 'vcpu_init'] as const;

/** One monitor connection: the VM it watches over, and its intercepts waiting for an answer. */
export class MonitorContext {
  standing: PinboxExitAnswer | null = null;
  watching = false;
  readonly pending = new Map<bigint, (answer: PinboxExitAnswer) => void>();
  detach: (() => void) | undefined;
  unsubscribe: (() => void) | undefined;

  constructor(
    readonly connection: number,
    readonly vm: string,
  ) {}
}

type Handlers = { readonly [K in MonitorOp]: (session: ServerSession<MonitorContext>, r: Request<K>) => ResultOf<K> };

export class MonitorSessions {
  constructor(
    private readonly vmm: Vmm,
    private readonly connections: ConnectionRegistry,
  ) {}

  hello(session: ServerSession<MonitorContext>, hello: HelloParams): HelloReply {
    const vm = hello.vm!;
    // Refused before the connection counts as greeted: a refused hello leaves it un-greeted, so
    // it stays one the control endpoint may evict to make room (connections.ts).
    this.vmm.monitors.checkFree(vm);
    const connection = this.connections.greeted(session as ServerSession<never>, 'monitor');
    const context = new MonitorContext(connection, vm);
    context.detach = this.vmm.attachMonitor(vm, (i) => this.decide(session, context, i), connection);
    session.context = context;
    const machine = this.vmm.get(vm);
    return { server: SERVER_NAME, vm, ...(machine !== undefined && { vcpus: machine.vcpus, profile: machine.profile }) };
  }

  closed(session: ServerSession<MonitorContext>): void {
    const c = session.context;
    if (c === undefined) return;
    c.unsubscribe?.();
    c.detach?.();
    for (const resolve of c.pending.values()) resolve({ action: 'deny' });
    c.pending.clear();
  }

  request(session: ServerSession<MonitorContext>, r: HandlerRequest): unknown {
    if (!Object.hasOwn(MONITOR_OPS, r.op)) throw new ProtocolError('forbidden', `${r.op} is not a monitor op`);
    const handler = this.handlers[r.op as MonitorOp] as (s: ServerSession<MonitorContext>, r: HandlerRequest) => unknown;
    return handler(session, r);
  }

  private readonly handlers: Handlers = {
    setRegisterIntercepts: (s, r) => this.done(() => this.machine(s).setRegisterIntercepts(r.vcpu, interceptsOf(r), 'monitor')),
    getRegisterIntercepts: (s, r) => this.machine(s).getRegisterIntercepts(r.vcpu),
    watchIntercepts: (s) => this.watch(s),
    answerIntercept: (s, r) => this.done(() => this.answer(s.context!, r)),
    setInterceptReply: (s, r) => this.done(() => {
      s.context!.standing = r.reply;
    }),
  };

  private done(action: () => unknown): Record<string, never> {
    action();
    return {};
  }

  private machine(session: ServerSession<MonitorContext>): Machine {
    const vm = session.context!.vm;
    const m = this.vmm.get(vm);
    if (m === undefined) throw notFound(`no VM "${vm}" yet (a guest naming it, or a control client's createVm, makes it)`, 'vm');
    return m;
  }

  /** An intercept of the monitor's VM, decided by this monitor. */
  private decide(session: ServerSession<MonitorContext>, c: MonitorContext, i: InterceptContext): PinboxExitAnswer | undefined | Promise<PinboxExitAnswer> {
    if (c.standing !== null) return c.standing;
    const log = this.vmm.log;
    // A monitor that neither answers standing nor watches leaves the intercept to the policy.
    if (!c.watching || session.closed) return undefined;
    const x = i.intercept;
    const event = log.emit('intercept_pending', i.vm, {
      intercept: x.name, ...(x.msr !== 0 && { msr: x.msr }), old_value: x.old, new_value: x.new, old_limit: x.oldLimit, new_limit: x.newLimit,
    }, i.vcpu, i.rip);
    if (event === undefined) return { action: 'deny' };
    log.flush();
    return new Promise((resolve) => c.pending.set(event.seq, resolve));
  }

  private answer(c: MonitorContext, r: ParamsOf<'answerIntercept'>): void {
    const resolve = c.pending.get(r.seq);
    if (resolve === undefined) throw notFound(`no intercept waits for an answer under seq ${r.seq}`, 'seq');
    if (r.limit !== undefined && r.limit > 0xffff) throw new ProtocolError('invalid_message', 'limit: a descriptor-table limit is 16 bits', { path: 'limit' });
    c.pending.delete(r.seq);
    resolve({ action: r.action, ...(r.value !== undefined && { value: r.value }), ...(r.limit !== undefined && { limit: r.limit }) });
  }

  /** Pushes the VM's pending intercepts (and resets and INITs) from now on, after this answer. */
  private watch(session: ServerSession<MonitorContext>): ResultOf<'watchIntercepts'> {
    const c = session.context!;
    if (c.watching) throw new ProtocolError('already_exists', 'this monitor watches its intercepts already');
    const sub = 1;
    c.unsubscribe = pushEvents(session as ServerSession<unknown>, sub, this.vmm.log, { vm: c.vm, names: [...WATCHED] });
    c.watching = true;
    return { sub };
  }
}

function interceptsOf(r: ParamsOf<'setRegisterIntercepts'>) {
  return { control: r.control, cr0Mask: r.cr0Mask ?? ALL, cr4Mask: r.cr4Mask ?? ALL, miscEnableMask: r.miscEnableMask ?? ALL };
}
