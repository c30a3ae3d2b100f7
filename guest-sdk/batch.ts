/**
 * A batch: the guest operations queued, then sent together in one `batch` frame (several only
 * past the protocol's limits) and run by the host in order. Each call returns a promise for
 * its own operation, settled when the batch is sent; one operation failing — a guest fault, a
 * host refusal, a bad argument — settles only its own promise.
 */
import type { BatchItem } from '../protocol/index.js';
import type { GuestFault, HostError, InvalidArgumentError } from './errors.js';
import type { GuestChannel } from './guest-channel.js';
import { GuestOperations } from './guest-operations.js';
import { type OpKind, settle } from './operations.js';

/** How one batched operation ended, in the order the operations were queued. */
export type BatchSettlement =
  | { ok: true; value: unknown }
  | { ok: false; error: GuestFault | HostError | InvalidArgumentError };

const ignore = (): void => {};

class BatchEntry {
  readonly promise: Promise<unknown>;
  params: Record<string, unknown> | undefined;
  settlement: BatchSettlement | undefined;
  private resolve!: (value: unknown) => void;
  private reject!: (error: Error) => void;

  constructor(readonly kind: OpKind, readonly safe: boolean) {
    this.promise = new Promise((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  fulfil(value: unknown): void {
    this.settlement = { ok: true, value };
    this.resolve(value);
  }

  /**
   * The rejection is marked handled: `send()` reports it too, so a caller who reads the
   * settlements and ignores the per-operation promises must not crash the process with an
   * unhandled rejection. Awaiting the promise still throws.
   */
  fail(error: GuestFault | HostError | InvalidArgumentError): void {
    this.settlement = { ok: false, error };
    this.reject(error);
    this.promise.catch(ignore);
  }
}

export class Batch extends GuestOperations {
  private entries: BatchEntry[] = [];

  /** @internal Batches come from `guest.batch()`. */
  constructor(private readonly channel: GuestChannel) {
    super();
  }

  /** Operations queued and not yet sent. */
  get size(): number {
    return this.entries.length;
  }

  protected submit(kind: OpKind, safe: boolean, a?: unknown, b?: unknown, c?: unknown): Promise<unknown> {
    const entry = new BatchEntry(kind, safe);
    try {
      entry.params = kind.params(a, b, c);
    } catch (e) {
      entry.fail(e as InvalidArgumentError);
    }
    this.entries.push(entry);
    return entry.promise;
  }

  /**
   * Sends every queued operation and resolves, once all their promises are settled, to their
   * settlements in the order they were queued (an operation rejected for its arguments holds
   * its place and was not sent). Never rejects. The batch is empty again afterwards and can be
   * reused; with nothing queued, nothing is sent.
   */
  async send(): Promise<BatchSettlement[]> {
    const entries = this.entries;
    this.entries = [];
    const live: BatchEntry[] = [];
    const items: BatchItem[] = [];
    for (const e of entries) {
      if (e.settlement !== undefined) continue;
      live.push(e);
      items.push({ op: e.kind.op, ...e.params } as BatchItem);
    }
    if (live.length > 0) {
      const outcomes = await this.channel.runBatch(items);
      for (let i = 0; i < live.length; i++) {
        const entry = live[i]!;
        const outcome = outcomes[i]!;
        if (!outcome.ok) {
          entry.fail(outcome.error);
          continue;
        }
        try {
          entry.fulfil(settle(entry.kind, entry.safe, entry.params!, outcome.result));
        } catch (fault) {
          entry.fail(fault as GuestFault);
        }
      }
    }
    return entries.map((e) => e.settlement!);
  }

  /** The same as `send()`. */
  flush(): Promise<BatchSettlement[]> {
    return this.send();
  }
}
