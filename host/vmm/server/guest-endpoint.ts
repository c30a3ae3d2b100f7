/**
 * The guest endpoint's session handler: a guest says hello naming a VM and a vCPU; the VM is
 * made from the VMM's policy the first time any guest names it (unless the server makes no VMs
 * for guests: `--guest-vms existing`), and several guests may share it (each on its own vCPU, or
 * queued on the same one). A VM made with a guest token (createVm's `guestToken`) takes only
 * guests whose hello carries it; wrong ones slow down and end the connection (token-failures.ts).
 * Every request then runs on that vCPU. Control hellos are refused here, whatever token they
 * carry: control clients have their own endpoint (PROTOCOL.md §3; the session itself refuses
 * control ops on a guest connection). docs/trust-model.md says what a guest can and cannot do.
 */
import { ProtocolError } from '../../../protocol/errors.js';
import type { HelloParams } from '../../../protocol/messages/index.js';
import type { HandlerRequest, HelloReply, ServerSession, SessionHandler } from '../../../protocol/server-session.js';
import { kvmRefusal, notFound } from '../errors.js';
import type { Machine } from '../machine.js';
import type { RequestAllowance } from '../run/allowance.js';
import type { GuestRequest } from '../run/operations.js';
import type { Vmm } from '../vmm.js';
import type { ConnectionRegistry } from './connections.js';
import { ExitHolds } from './exit-holds.js';
import { TokenFailures } from './token-failures.js';

function refused(e: unknown): never {
  throw kvmRefusal(e);
}

/** The name servers give themselves in hello results. */
export const SERVER_NAME = 'pinbox';

interface GuestContext {
  readonly machine: Machine;
  readonly vcpu: number;
  readonly connection: number;
}

export class GuestEndpoint implements SessionHandler<GuestContext> {
  constructor(
    private readonly vmm: Vmm,
    private readonly connections: ConnectionRegistry,
    /** Exits control clients hold (exit-holds.ts): an operation on a vCPU with a hold armed runs with its hook. */
    private readonly holds: ExitHolds = new ExitHolds(),
    /** Wrong guest tokens slow down and end connections (token-failures.ts). */
    private readonly failures: TokenFailures = new TokenFailures(),
  ) {}

  hello(session: ServerSession<GuestContext>, hello: HelloParams): HelloReply | Promise<HelloReply> {
    if (hello.role !== 'guest') {
      throw new ProtocolError('forbidden', 'this is the guest endpoint; control clients connect to the control endpoint (pinbox serve --control)', { path: 'role' });
    }
    const name = hello.vm!;
    const vcpu = hello.vcpu!;
    const guarded = this.vmm.get(name)?.guestToken;
    if (guarded !== undefined && (hello.token === undefined || !guarded.matches(hello.token))) {
      const why = hello.token === undefined ? 'takes only guests that give its guest token (hello token)' : 'has another guest token';
      return this.failures.refuse(session as ServerSession<unknown>, new ProtocolError('bad_token', `VM "${name}" ${why}`, { path: 'token' }));
    }
    const machine = this.vmm.vm(name); // made from the policy on first use; `limit` past --max-vms
    if (vcpu >= machine.vcpus) {
      throw notFound(`VM "${name}" has ${machine.vcpus} vCPU${machine.vcpus === 1 ? '' : 's'} (0..${machine.vcpus - 1}); there is no vCPU ${vcpu}`, 'vcpu');
    }
    const connection = this.connections.greeted(session as ServerSession<never>, 'guest');
    session.context = { machine, vcpu, connection };
    this.vmm.attach(machine);
    const log = this.vmm.log;
    if (log.wants('guest_connected', name)) {
      log.emit('guest_connected', name, hello.client === undefined ? { connection } : { connection, client: hello.client }, vcpu);
    }
    return { server: SERVER_NAME, vm: name, vcpu, vcpus: machine.vcpus, profile: machine.profile };
  }

  /** What a request may cost (allowance.ts): one per request, shared by the ops of a batch. */
  scope(session: ServerSession<GuestContext>, batch: boolean): RequestAllowance {
    return this.vmm.allowance(batch, session);
  }

  request(session: ServerSession<GuestContext>, request: HandlerRequest, scope?: unknown): unknown {
    const ctx = session.context!;
    if (this.vmm.get(ctx.machine.name) !== ctx.machine) {
      throw notFound(`VM "${ctx.machine.name}" is gone (it was removed from the VMM)`);
    }
    try {
      const hold = this.holds.optionsFor(ctx.machine, ctx.vcpu);
      const allowance = scope as RequestAllowance | undefined;
      const options = allowance === undefined ? hold : { ...hold, allowance };
      const result = ctx.machine.performParsed(ctx.vcpu, request as GuestRequest, options);
      return result instanceof Promise ? result.catch(refused) : result;
    } catch (e) {
      return refused(e);
    }
  }

  closed(session: ServerSession<GuestContext>): void {
    const ctx = session.context;
    if (ctx === undefined) return;
    this.vmm.detach(ctx.machine);
    const log = this.vmm.log;
    if (log.wants('guest_disconnected', ctx.machine.name)) {
      log.emit('guest_disconnected', ctx.machine.name, { connection: ctx.connection }, ctx.vcpu);
    }
    log.flush();
  }
}
