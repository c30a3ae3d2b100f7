/**
 * The server end of one connection (PROTOCOL.md §3, §4): reads requests, enforces hello-first
 * and the role rules, hands each valid request to the handler and sends its response as soon as
 * it is ready (out of order is allowed). Transport-agnostic; the VMM supplies the handler.
 *
 * Nothing a peer sends can hurt the process or the session: a bad frame is answered and the
 * session reads on; an oversized frame is answered and the connection closed; whatever the
 * handler throws, or returns that is not a valid result, becomes an error response.
 */
import { Channel, type ChannelOptions } from './channel.js';
import {
  type RequestEnvelope, errorBodyToWire, errorResponseToWire, parseRequestEnvelope, parseRequestParams, pushToWire,
  requestIdOf, resultResponseToWire,
} from './envelope.js';
import { ProtocolError, toProtocolError } from './errors.js';
import { DEFAULT_MAX_IN_FLIGHT } from './limits.js';
import { DEFAULT_VCPU, DEFAULT_VM, type Event } from './messages/common.js';
import { BATCHABLE_OPS, type BatchItem } from './messages/guest.js';
import type { HelloParams, HelloResult, Op, Request } from './messages/index.js';
import type { OpSpec, Role } from './messages/op.js';
import { SchemaIssue } from './schema/index.js';
import type { Connection } from './transports/connection.js';
import { PROTOCOL_VERSION } from './version.js';

/** What a handler sees: every op but hello (handled by `hello`) and batch (expanded by the session). */
export type HandlerRequest = Request<Exclude<Op, 'hello' | 'batch'>>;

/** What the handler adds to a hello result; version and role are the session's. */
export type HelloReply = Omit<HelloResult, 'version' | 'role'>;

function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof (v as { then?: unknown } | null | undefined)?.then === 'function';
}

/** A batch op that failed, as its outcome on the wire. */
function failedOutcomeToWire(e: unknown): unknown {
  return { ok: false, error: errorBodyToWire(toProtocolError(e)) };
}

export interface SessionHandler<C = unknown> {
  /**
   * Accepts or refuses a hello (throw a ProtocolError: `bad_token`, `not_found`, `limit`…).
   * For a guest, `vm` and `vcpu` arrive with their defaults filled in.
   */
  hello(session: ServerSession<C>, hello: HelloParams): HelloReply | Promise<HelloReply>;
  /**
   * Runs one request of the session's role and returns its result (validated before it is
   * sent). Throw a ProtocolError for a protocol-level refusal, or an error with an `errno`
   * name (KvmError) for `kvm_error`; anything else becomes `internal`.
   */
  request(session: ServerSession<C>, request: HandlerRequest): unknown;
  /** The connection is gone (drop subscriptions and the like). */
  closed?(session: ServerSession<C>): void;
}

export interface ServerSessionOptions extends ChannelOptions {
  /** Requests run at once (default 1024); more are answered with `limit`. */
  maxInFlight?: number;
}

export class ServerSession<C = unknown> {
  /** Set by a successful hello. */
  role: Role | undefined;
  /** For a guest: the VM and vCPU it attached to. */
  vm: string | undefined;
  vcpu: number | undefined;
  /** The accepted hello. */
  greeting: HelloParams | undefined;
  /** The handler's own per-connection state. */
  context: C | undefined;
  /** Requests received with a valid envelope. */
  requests = 0;

  private readonly channel: Channel;
  private readonly inFlight = new Set<number>();
  private readonly maxInFlight: number;
  /** A hello being handled: later requests wait for it rather than fail. */
  private pendingHello: Promise<void> | undefined;
  private readonly closeListeners: (() => void)[] = [];

  constructor(readonly connection: Connection, private readonly handler: SessionHandler<C>, options: ServerSessionOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.channel = new Channel(connection, {
      message: (value) => this.onMessage(value),
      badFrame: (error, fatal) => {
        this.sendError(null, error);
        if (fatal) this.close();
      },
    }, options);
    connection.onClose(() => this.onConnectionClosed());
  }

  get closed(): boolean {
    return this.connection.closed;
  }

  /** Sends a subscription event; throws if the event is invalid (a handler bug) or too large. */
  push(sub: number, event: Event): void {
    this.channel.send(pushToWire(sub, event));
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    this.connection.close();
  }

  private onConnectionClosed(): void {
    for (const listener of [() => this.handler.closed?.(this), ...this.closeListeners.splice(0)]) {
      try {
        listener();
      } catch {
        // A close hook that throws has nobody left to tell; the session is gone either way.
      }
    }
  }

  private onMessage(value: unknown): void {
    let envelope: RequestEnvelope;
    try {
      envelope = parseRequestEnvelope(value);
    } catch (e) {
      this.sendError(requestIdOf(value), toProtocolError(e));
      return;
    }
    const { id } = envelope;
    if (this.inFlight.has(id)) {
      // Answered with id nil: answering with the id would be taken as the first request's answer.
      this.sendError(null, new ProtocolError('duplicate_id', `id ${id} is already used by an outstanding request`, { path: 'id' }));
      return;
    }
    if (this.inFlight.size >= this.maxInFlight) {
      this.sendError(id, new ProtocolError('limit', `more than ${this.maxInFlight} requests in flight on this connection`));
      return;
    }
    this.requests++;
    this.inFlight.add(id);
    void this.run(envelope);
  }

  private async run(envelope: RequestEnvelope): Promise<void> {
    const { id } = envelope;
    try {
      this.sendResponse(id, resultResponseToWire(id, await this.execute(envelope)));
    } catch (e) {
      this.sendError(id, toProtocolError(e));
    } finally {
      this.inFlight.delete(id);
    }
  }

  /**
   * Runs a request whose envelope is valid and gives its result in wire form. Until the handler
   * is called everything here is synchronous for a greeted session, so requests reach the
   * handler in the order they came.
   */
  private async execute(envelope: RequestEnvelope): Promise<unknown> {
    if (envelope.op === 'hello') return this.greet(envelope);
    if (this.role === undefined && this.pendingHello) await this.pendingHello;
    if (this.role === undefined) {
      throw new ProtocolError('hello_required', `${envelope.op} before hello: a connection starts with a hello request`);
    }
    if (envelope.spec.role !== this.role) {
      throw new ProtocolError('forbidden', `${envelope.op} is a ${envelope.spec.role} op; this connection's role is ${this.role}`);
    }
    const params = parseRequestParams(envelope) as Record<string, unknown>;
    if (envelope.op === 'batch') return this.runBatch((params as { ops: BatchItem[] }).ops);
    const result = await this.handler.request(this, { op: envelope.op, ...params } as HandlerRequest);
    return this.checkedResult(envelope.op, envelope.spec, params, result);
  }

  private async greet(envelope: RequestEnvelope): Promise<unknown> {
    if (this.role !== undefined || this.pendingHello) {
      throw new ProtocolError('already_greeted', 'this connection has already said hello');
    }
    const hello = parseRequestParams(envelope) as HelloParams;
    if (hello.role === 'control' || hello.role === 'monitor') {
      if (hello.token === undefined) throw new ProtocolError('invalid_message', `token: required for role ${hello.role}`, { path: 'token' });
      for (const k of hello.role === 'control' ? ['vm', 'vcpu'] as const : ['vcpu'] as const) {
        if (hello[k] !== undefined) throw new ProtocolError('invalid_message', `${k}: only a guest attaches to a ${k === 'vm' ? 'VM' : 'vCPU'}`, { path: k });
      }
      if (hello.role === 'monitor') hello.vm ??= DEFAULT_VM;
    } else {
      hello.vm ??= DEFAULT_VM;
      hello.vcpu ??= DEFAULT_VCPU;
    }
    const accepted = (async (): Promise<unknown> => {
      const reply = await this.handler.hello(this, hello);
      const result: HelloResult = { version: PROTOCOL_VERSION, role: hello.role, ...reply };
      if (hello.role === 'guest') {
        result.vm ??= hello.vm;
        result.vcpu ??= hello.vcpu;
      }
      if (hello.role === 'monitor') result.vm ??= hello.vm;
      // Validate before committing the role: an invalid reply must leave the session un-greeted.
      const wire = this.checkedResult('hello', envelope.spec, hello, result);
      this.role = hello.role;
      this.vm = result.vm;
      this.vcpu = result.vcpu;
      this.greeting = hello;
      return wire;
    })();
    this.pendingHello = accepted.then(() => undefined, () => undefined);
    try {
      return await accepted;
    } finally {
      this.pendingHello = undefined;
    }
  }

  /**
   * Runs a batch's ops one after another, in order; each gets its own outcome, and a failed op
   * does not stop the ones after it (PROTOCOL.md §5.10). The response is assembled here in wire
   * form and sent without a second pass through the batch result schema: each op's result went
   * through its own op's result schema (checkedResult, a handler bug becomes that op's
   * `internal` error), each error body through the error schema, and `{ results }` with one
   * outcome per op is this loop's own making. An op that finishes at once costs no promise.
   */
  private runBatch(ops: BatchItem[]): { results: unknown[] } | Promise<{ results: unknown[] }> {
    const results = new Array<unknown>(ops.length);
    for (let i = 0; i < ops.length; i++) {
      const item = ops[i]!;
      let result: unknown;
      try {
        result = this.handler.request(this, item);
      } catch (e) {
        results[i] = failedOutcomeToWire(e);
        continue;
      }
      if (isPromiseLike(result)) return this.finishBatch(ops, results, i, result);
      results[i] = this.itemOutcomeToWire(item, result);
    }
    return { results };
  }

  /** The rest of a batch once one of its ops had to be awaited (`pending`: ops[from]'s result). */
  private async finishBatch(ops: BatchItem[], results: unknown[], from: number, pending: PromiseLike<unknown>): Promise<{ results: unknown[] }> {
    for (let i = from; i < ops.length; i++) {
      const item = ops[i]!;
      try {
        results[i] = this.itemOutcomeToWire(item, await (i === from ? pending : this.handler.request(this, item)));
      } catch (e) {
        results[i] = failedOutcomeToWire(e);
      }
    }
    return { results };
  }

  private itemOutcomeToWire(item: BatchItem, result: unknown): unknown {
    try {
      return { ok: true, result: this.checkedResult(item.op, BATCHABLE_OPS[item.op], item, result) };
    } catch (e) {
      return failedOutcomeToWire(e);
    }
  }

  /** The wire form of a handler's result; an invalid one is the handler's bug: `internal`. */
  private checkedResult(op: string, spec: OpSpec, params: unknown, result: unknown): unknown {
    try {
      return spec.resultFor(params).wire(result);
    } catch (e) {
      if (!(e instanceof SchemaIssue)) throw e;
      throw new ProtocolError('internal', `the server produced an invalid ${op} result: ${e.toProtocolError().message}`);
    }
  }

  private sendResponse(id: number, response: Record<string, unknown>): void {
    try {
      this.channel.send(response);
    } catch (e) {
      // Too large for a frame (or unpackable): the client still gets an answer for its id.
      this.sendError(id, toProtocolError(e));
    }
  }

  private sendError(id: number | null, error: ProtocolError): void {
    try {
      this.channel.send(errorResponseToWire(id, error));
    } catch {
      // An error response is small and made of validated parts; if even it cannot be sent the
      // connection is beyond help, and the session must not throw into the transport.
    }
  }
}
