/**
 * The client end of one connection: sends requests with fresh ids, keeps any number of them
 * outstanding, matches responses by id in whatever order they come, and validates every result
 * against the op it answers (the SDK does not trust a host blindly).
 */
import { Channel, type ChannelOptions } from './channel.js';
import {
  parseOutcome, parseServerMessage, parseUnmatchedError, remoteError, requestToWire,
} from './envelope.js';
import { ProtocolError, toProtocolError } from './errors.js';
import { MAX_EARLY_PUSHES } from './limits.js';
import type { Event } from './messages/common.js';
import { type HelloParams, type HelloResult, type Op, type ParamsOf, type ResultOf, opSpec } from './messages/index.js';
import type { OpSpec } from './messages/op.js';
import type { Connection } from './transports/connection.js';
import { PROTOCOL_VERSION } from './version.js';

interface Pending {
  op: string;
  spec: OpSpec;
  params: unknown;
  resolve(result: unknown): void;
  reject(error: Error): void;
}

export type ClientSessionOptions = ChannelOptions;

/** hello's params as a caller gives them: the version is filled in. */
export type HelloOptions = Omit<HelloParams, 'version'>;

export class ClientSession {
  private readonly channel: Channel;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly eventListeners = new Map<number, Set<(event: Event) => void>>();
  private readonly earlyPushes = new Map<number, Event[]>();
  private earlyCount = 0;
  private readonly errorListeners: ((error: ProtocolError) => void)[] = [];
  /** The last error the server sent that answered no request (it explains a close). */
  private lastServerError: ProtocolError | undefined;

  constructor(readonly connection: Connection, options: ClientSessionOptions = {}) {
    this.channel = new Channel(connection, {
      message: (value) => this.onMessage(value),
      badFrame: (error, fatal) => {
        this.reportError(error);
        if (fatal) this.close();
      },
    }, options);
    connection.onClose((error) => this.onConnectionClosed(error));
  }

  get closed(): boolean {
    return this.connection.closed;
  }

  /** Requests sent and not yet answered. */
  get outstanding(): number {
    return this.pending.size;
  }

  /** Says hello; checks that the server speaks our version and took our role. */
  async hello(options: HelloOptions): Promise<HelloResult> {
    const result = await this.send('hello', { version: PROTOCOL_VERSION, ...options });
    if (result.version !== PROTOCOL_VERSION) {
      throw new ProtocolError(
        'version_mismatch',
        `the server speaks protocol version ${result.version}, this client speaks version ${PROTOCOL_VERSION}`,
      );
    }
    if (result.role !== options.role) {
      throw new ProtocolError('invalid_message', `role: the server answered ${result.role} to a ${options.role} hello`, { path: 'role' });
    }
    return result;
  }

  /** Sends one request and resolves with its validated result, or rejects with its error. */
  request<O extends Exclude<Op, 'hello'>>(op: O, params: ParamsOf<O>): Promise<ResultOf<O>> {
    return this.send(op, params);
  }

  /**
   * Listens to the pushes of a subscription. Pushes that came before the listener are handed
   * to it (in a microtask, in order). Returns a function that stops listening.
   */
  onEvent(sub: number, listener: (event: Event) => void): () => void {
    let listeners = this.eventListeners.get(sub);
    if (!listeners) this.eventListeners.set(sub, (listeners = new Set()));
    listeners.add(listener);
    const early = this.earlyPushes.get(sub);
    if (early) {
      this.earlyPushes.delete(sub);
      this.earlyCount -= early.length;
      queueMicrotask(() => {
        for (const event of early) this.safely(() => listener(event));
      });
    }
    return () => {
      listeners.delete(listener);
      if (listeners.size === 0 && this.eventListeners.get(sub) === listeners) this.eventListeners.delete(sub);
    };
  }

  /** Errors that answer no request: a response with id nil, a bad frame or message from the server. */
  onError(listener: (error: ProtocolError) => void): void {
    this.errorListeners.push(listener);
  }

  /** Called once the connection is gone (after outstanding requests were rejected). */
  onClose(listener: (error?: Error) => void): void {
    this.connection.onClose((error) => this.safely(() => listener(error)));
  }

  close(): void {
    this.connection.close();
  }

  private send<O extends Op>(op: O, params: ParamsOf<O>): Promise<ResultOf<O>> {
    return new Promise<ResultOf<O>>((resolve, reject) => {
      if (this.closed) {
        reject(new ProtocolError('connection_closed', `cannot send ${op}: the connection is closed`));
        return;
      }
      const spec = opSpec(op);
      if (!spec) {
        reject(new ProtocolError('unknown_op', `unknown op ${JSON.stringify(op)}`));
        return;
      }
      const id = this.allocateId();
      try {
        this.channel.send(requestToWire(id, op, params));
      } catch (e) {
        reject(toProtocolError(e));
        return;
      }
      this.pending.set(id, { op, spec, params, resolve: resolve as (r: unknown) => void, reject });
    });
  }

  private allocateId(): number {
    while (this.pending.has(this.nextId)) this.nextId = (this.nextId + 1) >>> 0;
    const id = this.nextId;
    this.nextId = (this.nextId + 1) >>> 0;
    return id;
  }

  private onMessage(value: unknown): void {
    let message;
    try {
      message = parseServerMessage(value);
    } catch (e) {
      this.reportError(toProtocolError(e));
      return;
    }
    if (message.kind === 'push') {
      this.deliverPush(message.sub, message.event);
      return;
    }
    if (message.id === null) {
      try {
        const error = remoteError(parseUnmatchedError(message.body));
        this.lastServerError = error;
        this.reportError(error);
      } catch (e) {
        this.reportError(toProtocolError(e));
      }
      return;
    }
    const pending = this.pending.get(message.id);
    if (!pending) {
      this.reportError(new ProtocolError('invalid_message', `the server answered id ${message.id}, which no outstanding request has`, { path: 'id' }));
      return;
    }
    this.pending.delete(message.id);
    let outcome;
    try {
      outcome = parseOutcome(pending.spec, pending.params as never, message.body);
    } catch (e) {
      const error = toProtocolError(e);
      pending.reject(new ProtocolError(error.code, `the server sent an invalid ${pending.op} response: ${error.message}`, {
        ...(error.path !== undefined ? { path: error.path } : {}),
      }));
      return;
    }
    if (outcome.ok) pending.resolve(outcome.result);
    else pending.reject(remoteError(outcome.error));
  }

  private deliverPush(sub: number, event: Event): void {
    const listeners = this.eventListeners.get(sub);
    if (listeners) {
      for (const listener of listeners) this.safely(() => listener(event));
      return;
    }
    if (this.earlyCount >= MAX_EARLY_PUSHES) return;
    let early = this.earlyPushes.get(sub);
    if (!early) this.earlyPushes.set(sub, (early = []));
    early.push(event);
    this.earlyCount++;
  }

  private reportError(error: ProtocolError): void {
    for (const listener of this.errorListeners) this.safely(() => listener(error));
  }

  /** A throwing listener is the caller's bug; it must not break response matching. */
  private safely(f: () => void): void {
    try {
      f();
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  private onConnectionClosed(error?: Error): void {
    const why = this.lastServerError
      ? `; the server said: ${this.lastServerError.code}: ${this.lastServerError.message}`
      : error ? `: ${error.message}` : '';
    for (const [id, p] of this.pending) {
      p.reject(new ProtocolError('connection_closed', `the connection closed before the response to ${p.op} (id ${id}) arrived${why}`));
    }
    this.pending.clear();
  }
}
