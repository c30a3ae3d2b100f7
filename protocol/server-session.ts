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
import { DEFAULT_DRAIN_DEADLINE_MS, DEFAULT_MAX_IN_FLIGHT, DEFAULT_MAX_UNSENT } from './limits.js';
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
   * name (KvmError) for `kvm_error`; anything else becomes `internal`. `scope` is what `scope()`
   * made for the request this op belongs to (the same for every op of a batch).
   */
  request(session: ServerSession<C>, request: HandlerRequest, scope?: unknown): unknown;
  /**
   * State one request shares among its ops, made once per request: per op, or once for a whole
   * batch (`batch` true) — the VMM keeps there what the request may still cost.
   */
  scope?(session: ServerSession<C>, batch: boolean): unknown;
  /** The connection is gone (drop subscriptions and the like). */
  closed?(session: ServerSession<C>): void;
}

/** Turns on the event loop for long batches (the VMM's Pacer). */
export interface Pacing {
  /** Whether work that started at `start` (performance.now()) has had its turn. */
  due(start: number, now?: number): boolean;
  /** Resolves once other work has had a turn. */
  rest(): Promise<void>;
}

export interface ServerSessionOptions extends ChannelOptions {
  /** Requests run at once (default 1024); more are answered with `limit`. */
  maxInFlight?: number;
  /** Between the ops of a batch, let other clients have their turn when it is due. */
  pace?: Pacing;
  /**
   * Bytes of answers the peer has not read, and apart from them bytes of requests read and not
   * yet answered, past which the session reads no more requests from it (default 4 MiB) until
   * they are fewer again; past the first, subscription pushes are dropped meanwhile.
   */
  maxUnsent?: number;
  /** How long a peer past maxUnsent has to read before its connection is closed (default 10 s). */
  drainDeadlineMs?: number;
  /** How long the connection may go without a successful hello before it is closed (default: no limit). */
  helloDeadlineMs?: number;
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
  /** Pushes dropped because the peer had not read what was sent before. */
  droppedPushes = 0;

  private readonly channel: Channel;
  /** Requests running, by id, with the size of their frames. */
  private readonly inFlight = new Map<number, number>();
  private inFlightBytes = 0;
  /** Whether the session has stopped reading the connection (updateReading). */
  private readingPaused = false;
  private readonly maxInFlight: number;
  private readonly pace: Pacing | undefined;
  /** A hello being handled: later requests wait for it rather than fail. */
  private pendingHello: Promise<void> | undefined;
  private readonly closeListeners: (() => void)[] = [];
  private readonly maxUnsent: number;
  private readonly drainDeadlineMs: number;
  /** Reading stopped until the peer takes its answers; closed when the timer runs out. */
  private backlogTimer: ReturnType<typeof setTimeout> | undefined;
  private helloTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(readonly connection: Connection, private readonly handler: SessionHandler<C>, options: ServerSessionOptions = {}) {
    this.maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.pace = options.pace;
    this.maxUnsent = options.maxUnsent ?? DEFAULT_MAX_UNSENT;
    this.drainDeadlineMs = options.drainDeadlineMs ?? DEFAULT_DRAIN_DEADLINE_MS;
    if (options.helloDeadlineMs !== undefined) {
      const ms = options.helloDeadlineMs;
      this.helloTimer = setTimeout(() => {
        this.helloTimer = undefined;
        if (this.role !== undefined) return;
        this.sendError(null, new ProtocolError('deadline', `no successful hello within ${ms} ms of connecting; this server closes such connections`));
        this.close();
      }, ms);
      this.helloTimer.unref?.();
    }
    connection.onDrain?.(() => this.drained());
    this.channel = new Channel(connection, {
      message: (value, bytes) => this.onMessage(value, bytes),
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

  /**
   * Sends a subscription event; throws if the event is invalid (a handler bug) or too large. A
   * peer that has not read what was sent before misses it (counted in droppedPushes).
   */
  push(sub: number, event: Event): void {
    if (this.backlogTimer !== undefined) {
      this.droppedPushes++;
      return;
    }
    this.channel.send(pushToWire(sub, event));
    this.updateReading();
  }

  /** Whether the session has stopped reading because the peer does not read its answers. */
  get throttled(): boolean {
    return this.backlogTimer !== undefined;
  }

  onClose(listener: () => void): void {
    this.closeListeners.push(listener);
  }

  close(): void {
    this.connection.close();
  }

  private onConnectionClosed(): void {
    if (this.helloTimer !== undefined) clearTimeout(this.helloTimer);
    if (this.backlogTimer !== undefined) clearTimeout(this.backlogTimer);
    for (const listener of [() => this.handler.closed?.(this), ...this.closeListeners.splice(0)]) {
      try {
        listener();
      } catch {
        // A close hook that throws has nobody left to tell; the session is gone either way.
      }
    }
  }

  private onMessage(value: unknown, bytes: number): void {
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
    this.inFlight.set(id, bytes);
    this.inFlightBytes += bytes;
    if (this.inFlightBytes > this.maxUnsent) this.updateReading();
    void this.run(envelope);
  }

  private async run(envelope: RequestEnvelope): Promise<void> {
    const { id } = envelope;
    try {
      this.sendResponse(id, resultResponseToWire(id, await this.execute(envelope)));
    } catch (e) {
      this.sendError(id, toProtocolError(e));
    } finally {
      this.inFlightBytes -= this.inFlight.get(id) ?? 0;
      this.inFlight.delete(id);
      if (this.readingPaused) this.updateReading();
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
    if (envelope.op === 'batch') return this.runBatch((params as { ops: BatchItem[] }).ops, this.handler.scope?.(this, true));
    const result = await this.handler.request(this, { op: envelope.op, ...params } as HandlerRequest, this.handler.scope?.(this, false));
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
      if (this.helloTimer !== undefined) {
        clearTimeout(this.helloTimer);
        this.helloTimer = undefined;
      }
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
   * A long batch lets other clients have their turn between its ops (`pace`).
   */
  private runBatch(ops: BatchItem[], scope: unknown): { results: unknown[] } | Promise<{ results: unknown[] }> {
    const results = new Array<unknown>(ops.length);
    const start = performance.now();
    for (let i = 0; i < ops.length; i++) {
      const item = ops[i]!;
      let result: unknown;
      try {
        result = this.handler.request(this, item, scope);
      } catch (e) {
        results[i] = failedOutcomeToWire(e);
      }
      if (results[i] === undefined) {
        if (isPromiseLike(result)) return this.finishBatch(ops, results, i, result, scope, start);
        results[i] = this.itemOutcomeToWire(item, result);
      }
      // The clock every 16 ops: most ops take a microsecond or two.
      if (this.pace !== undefined && (i & 15) === 15 && i + 1 < ops.length && this.pace.due(start)) return this.finishBatch(ops, results, i + 1, undefined, scope, start);
    }
    return { results };
  }

  /**
   * The rest of a batch from ops[from] on, once one op had to be awaited (`pending`: ops[from]'s
   * result) or the batch had run for its turn. A batch whose connection closed stops there: its
   * answer could not be sent.
   */
  private async finishBatch(
    ops: BatchItem[], results: unknown[], from: number, pending: PromiseLike<unknown> | undefined, scope: unknown, start: number,
  ): Promise<{ results: unknown[] }> {
    for (let i = from; i < ops.length; i++) {
      const item = ops[i]!;
      if (pending === undefined && this.pace !== undefined && (i & 15) === 15 && this.pace.due(start)) await this.pace.rest();
      if (this.closed) break;
      try {
        results[i] = this.itemOutcomeToWire(item, await (pending ?? this.handler.request(this, item, scope)));
      } catch (e) {
        results[i] = failedOutcomeToWire(e);
      }
      pending = undefined;
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
      return;
    }
    this.updateReading();
  }

  private sendError(id: number | null, error: ProtocolError): void {
    try {
      this.channel.send(errorResponseToWire(id, error));
    } catch {
      // An error response is small and made of validated parts; if even it cannot be sent the
      // connection is beyond help, and the session must not throw into the transport.
      return;
    }
    this.updateReading();
  }

  /**
   * Backpressure. The session holds, for each connection, the requests it has read and not yet
   * answered and the answers the peer has not yet read; past maxUnsent bytes of either it reads
   * no more requests — they wait in the peer's own socket — until it holds less. A peer whose
   * unread answers pass the bound and that does not read them within the drain deadline is
   * closed. Answers to requests already running are still sent.
   */
  private updateReading(): void {
    if (this.connection.closed) return;
    const backlog = (this.connection.unsentBytes ?? 0) > this.maxUnsent;
    if (backlog && this.backlogTimer === undefined) {
      this.backlogTimer = setTimeout(() => this.close(), this.drainDeadlineMs);
      this.backlogTimer.unref?.();
    } else if (!backlog && this.backlogTimer !== undefined) {
      clearTimeout(this.backlogTimer);
      this.backlogTimer = undefined;
    }
    const stop = backlog || this.inFlightBytes > this.maxUnsent;
    if (stop === this.readingPaused) return;
    // The flag first: resuming hands out queued requests, which may pause the session again.
    this.readingPaused = stop;
    if (stop) this.channel.pause();
    else this.channel.resume();
  }

  /** The peer took everything sent: read it again, unless requests still hold too much. */
  private drained(): void {
    if (this.readingPaused || this.backlogTimer !== undefined) this.updateReading();
  }
}
