/**
 * The Guest's end of the connection: sends single operations and batches over a
 * ClientSession, turns whatever goes wrong on the way into a HostError, and — when asked to —
 * watches that the host keeps answering.
 */
import {
  type BatchItem, type ClientSession, type ErrorBody, ProtocolError, RemoteError,
} from '../protocol/index.js';
import { batchFrameEnd } from './batch-frames.js';
import { HostError } from './errors.js';
import { type GuestResult, KIND_BY_OP, type OpKind, describeOperation, settle } from './operations.js';

/** How one batched op ended on the host: its guest result, or why the host did not give one. */
export type ItemOutcome = { ok: true; result: GuestResult } | { ok: false; error: HostError };

export class GuestChannel {
  /** Requests (single ops and batch frames) sent and not yet answered. */
  private waiting = 0;
  /** Requests answered so far; the watchdog compares it between ticks. */
  private answered = 0;
  private timedOut: ProtocolError | undefined;
  private watchdog: ReturnType<typeof setInterval> | undefined;

  constructor(readonly session: ClientSession, private readonly maxFrame: number, timeoutMs?: number) {
    if (timeoutMs !== undefined) this.watch(timeoutMs);
    session.onClose(() => clearInterval(this.watchdog));
  }

  get closed(): boolean {
    return this.session.closed;
  }

  close(): void {
    clearInterval(this.watchdog);
    this.session.close();
  }

  /** Sends one operation and settles it (value, SafeResult or GuestFault). */
  async perform(kind: OpKind, safe: boolean, params: Record<string, unknown>): Promise<unknown> {
    let result: GuestResult;
    this.started();
    try {
      result = (await this.session.request(kind.op, params as never)) as GuestResult;
    } catch (e) {
      throw this.hostError(describeOperation(kind, params), e);
    } finally {
      this.waiting--;
      this.answered++;
    }
    return settle(kind, safe, params, result);
  }

  /**
   * Runs batch items in order and returns one outcome per item; it never rejects. Items go in
   * as few frames as the limits allow (batch-frames.ts), each frame sent once the previous one
   * is answered: a host may interleave the ops of two batch requests in flight together, and
   * the caller asked for these in this order. A frame the host refuses as a whole gives every
   * item in it that frame's error; the frames after it are still sent, as the ops of a batch
   * are independent (PROTOCOL.md §5).
   */
  async runBatch(items: BatchItem[]): Promise<ItemOutcome[]> {
    const outcomes = new Array<ItemOutcome>(items.length);
    for (let start = 0; start < items.length;) {
      const end = batchFrameEnd(items as { op: string; code?: Uint8Array }[], start, this.maxFrame);
      const ops = start === 0 && end === items.length ? items : items.slice(start, end);
      this.started();
      try {
        const { results } = await this.session.request('batch', { ops });
        for (let i = 0; i < results.length; i++) {
          const r = results[i]!;
          outcomes[start + i] = r.ok ? (r as ItemOutcome) : { ok: false, error: this.itemError(ops[i]!, r.error) };
        }
      } catch (e) {
        const outcome: ItemOutcome = { ok: false, error: this.hostError(`batch of ${ops.length} ops`, e) };
        for (let i = start; i < end; i++) outcomes[i] = outcome;
      } finally {
        this.waiting--;
        this.answered++;
      }
      start = end;
    }
    return outcomes;
  }

  private itemError(item: BatchItem, error: ErrorBody): HostError {
    const kind = KIND_BY_OP[item.op]!;
    const details = { ...(error.path !== undefined ? { path: error.path } : {}), ...(error.errno !== undefined ? { errno: error.errno } : {}) };
    return new HostError(describeOperation(kind, item), new RemoteError(error.code, error.message, details));
  }

  /** A failure on the way: after a timeout, the closed connection is reported as the timeout it was. */
  hostError(operation: string, e: unknown): HostError {
    const timedOut = this.timedOut !== undefined && e instanceof ProtocolError && e.code === 'connection_closed';
    return new HostError(operation, timedOut ? this.timedOut : e);
  }

  /** A request goes out: while any wait, the watchdog keeps the process alive to fire. */
  private started(): void {
    if (this.waiting++ === 0) this.watchdog?.ref();
  }

  /**
   * Closes the connection when the host answers nothing for a whole tick while requests wait:
   * a request then times out between `ms` and 2 × `ms` after it was sent. Counting answers
   * costs each operation two increments; a timer per operation would cost far more. An idle
   * guest's watchdog does not keep the process alive.
   */
  private watch(ms: number): void {
    let answeredAtTick = this.answered;
    let waitingAtTick = 0;
    this.watchdog = setInterval(() => {
      if (this.waiting > 0 && waitingAtTick > 0 && this.answered === answeredAtTick) {
        this.timedOut = new ProtocolError('timeout', `the host answered nothing for ${ms} ms; the connection was closed`);
        this.close();
        return;
      }
      answeredAtTick = this.answered;
      waitingAtTick = this.waiting;
      if (waitingAtTick === 0) this.watchdog!.unref();
    }, ms);
    this.watchdog.unref();
  }
}
