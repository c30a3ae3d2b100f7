/**
 * The VMM's event log: one per VMM, shared by its VMs. Every event gets the next sequence
 * number and the time since the log was created, then goes to
 *   - a bounded ring (default 10,000 events; oldest dropped first) that `since()` queries —
 *     the control endpoint's `events` request;
 *   - in-process subscribers, filtered by VM and event names — the control endpoint's
 *     `subscribe` and the VMM's own tests;
 *   - trace writers (attachTrace), flushed by `flush()`.
 *
 * On the hot path the VMM asks first whether anyone wants an event, and builds it only then:
 *
 *   if (log.wants('kvm_msr', vm)) log.emit('kvm_msr', vm, { write, ecx, data, exception }, vcpu, rip);
 *   ...
 *   log.flush();          // before the guest's answer is sent (trace-writer.ts)
 *   session.respond(...);
 *
 * With `capacity: 0`, no subscriber and no trace, `wants()` is false for everything and no
 * event is ever built. Subscribers are called synchronously, in subscription order; one that
 * throws does not stop the others or the VMM (`onListenerError`, default a process warning).
 */
import { EVENT_NAMES, type EventFieldsOf, type EventName } from '../../../protocol/events/catalogue.js';
import type { Event, EventFields } from '../../../protocol/events/event.js';

export interface EventFilter {
  /** Only events of this VM (which need not exist yet). */
  readonly vm?: string;
  /** Only events with these names. */
  readonly names?: readonly EventName[];
  /**
   * Also the completions: the events of the HLT with which each guest operation ends in the
   * VMM's own code (kvm_exit HLT, kvm_userspace_exit KVM_EXIT_HLT) — the SDK's doing, not news.
   * Default false; traces take them.
   */
  readonly completions?: boolean;
}

export type EventListener = (event: Event) => void;

/** Something that buffers events and can be made to write them out: a TraceWriter. */
export interface EventSink {
  write(event: Event): void;
  flush(): void;
}

export interface EventLogOptions {
  /** Events the ring keeps; 0 for no ring. Default 10,000 (DEFAULT_EVENT_CAPACITY). */
  readonly capacity?: number;
  /** Names the ring records (default: all). Events of other names still reach subscribers. */
  readonly record?: readonly EventName[];
  readonly onListenerError?: (error: unknown, event: Event) => void;
  /** Monotonic nanoseconds; default process.hrtime.bigint (tests inject their own). */
  readonly clock?: () => bigint;
}

export interface EventsSince {
  readonly events: Event[];
  /** The `since` to ask with next time. */
  readonly next: bigint;
  /** Some events at or after the requested `since` were recorded but have left the ring. */
  readonly dropped: boolean;
  /** The oldest event the ring holds (its seq), or the next seq if it holds none. */
  readonly oldest: bigint;
}

/**
 * 10,000 rather than 100,000: a ring that outgrows V8's young generation makes every event
 * survive to the old one, and emit() then costs about 4x as much (npm run bench events:
 * events.emit_ring vs events.emit_ring_100k). A control client polling since() keeps up easily.
 */
export const DEFAULT_EVENT_CAPACITY = 10_000;
/** At most this many events per `since()` answer (the protocol's `limit` range). */
export const MAX_EVENTS_PER_QUERY = 10_000;

interface Subscription {
  readonly vm: string | undefined;
  readonly names: ReadonlySet<string> | undefined;
  readonly completions: boolean;
  readonly listener: EventListener;
}

function defaultListenerError(error: unknown, event: Event): void {
  process.emitWarning(`event listener failed on ${event.name} #${event.seq}: ${String(error)}`, 'PinboxEventListener');
}

export class EventLog {
  readonly capacity: number;
  private readonly clock: () => bigint;
  private readonly epoch: bigint;
  private readonly onListenerError: (error: unknown, event: Event) => void;

  private readonly ring: (Event | undefined)[];
  private readonly ringNames: ReadonlySet<string> | undefined;
  /** Ring slot of the oldest held event, and how many are held. */
  private ringStart = 0;
  private ringSize = 0;
  /** seq + 1 of the newest event that has left the ring (0: none has). */
  private evictedThrough = 0;
  private nextSeqNumber = 0;
  /** The same as a bigint: incrementing it is cheaper than BigInt(nextSeqNumber) per event. */
  private nextSeqBig = 0n;

  /** Copy-on-write: emit() iterates the array it found, whatever listeners do meanwhile. */
  private subscriptions: readonly Subscription[] = [];
  private readonly sinks = new Set<EventSink>();

  // Interest, recomputed on (un)subscribe, so that wants() is a few lookups.
  private everyEventWanted = false;
  private namesWantedFromAnyVm = new Set<string>();
  private namesWantedByVm = new Map<string, Set<string> | true>();
  private interestChanges = 0;

  constructor(options: EventLogOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_EVENT_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 0) {
      throw new RangeError(`event log capacity must be a whole number ≥ 0, got ${capacity}`);
    }
    this.capacity = capacity;
    this.ring = new Array(capacity).fill(undefined);
    this.ringNames = options.record === undefined ? undefined : new Set(options.record);
    this.clock = options.clock ?? process.hrtime.bigint;
    this.epoch = this.clock();
    this.onListenerError = options.onListenerError ?? defaultListenerError;
    this.recomputeInterest();
  }

  /**
   * Changes whenever what wants() answers may have changed (a subscription or trace came or
   * went): a producer that set up work for the events wanted (the VMM listening to KVM's
   * tracepoints) compares it to redo that setup only when needed.
   */
  get interestEpoch(): number {
    return this.interestChanges;
  }

  /** The seq the next event will get. */
  get nextSeq(): bigint {
    return this.nextSeqBig;
  }

  /** Whether an event of this name for this VM would go anywhere. */
  wants(name: EventName, vm: string): boolean {
    if (this.everyEventWanted || this.namesWantedFromAnyVm.has(name)) return true;
    const byVm = this.namesWantedByVm.get(vm);
    return byVm !== undefined && (byVm === true || byVm.has(name));
  }

  /**
   * Records an event; returns it, or undefined if nobody wanted it (then it gets no seq). The
   * fields are typed from the catalogue, so a misspelt or mistyped field does not compile. A
   * `completion` (EventFilter.completions) reaches only the subscriptions that ask for them.
   */
  emit<N extends EventName>(name: N, vm: string, fields: EventFieldsOf<N>, vcpu?: number, rip?: bigint, completion = false): Event | undefined {
    if (!this.wants(name, vm)) return undefined;
    const seq = this.nextSeqBig;
    this.nextSeqBig = seq + 1n;
    this.nextSeqNumber++;
    const time = this.clock() - this.epoch;
    let event: Event;
    const f = fields as EventFields;
    if (vcpu === undefined) event = { seq, time, name, vm, fields: f };
    else if (rip === undefined) event = { seq, time, name, vm, vcpu, fields: f };
    else event = { seq, time, name, vm, vcpu, rip, fields: f };
    if (this.capacity > 0 && (this.ringNames === undefined || this.ringNames.has(name))) this.record(event);
    const subscriptions = this.subscriptions;
    for (let i = 0; i < subscriptions.length; i++) {
      const s = subscriptions[i]!;
      if (s.vm !== undefined && s.vm !== vm) continue;
      if (s.names !== undefined && !s.names.has(name)) continue;
      if (completion && !s.completions) continue;
      try {
        s.listener(event);
      } catch (error) {
        this.onListenerError(error, event);
      }
    }
    return event;
  }

  private record(event: Event): void {
    if (this.ringSize < this.capacity) {
      this.ring[(this.ringStart + this.ringSize) % this.capacity] = event;
      this.ringSize++;
      return;
    }
    const evicted = this.ring[this.ringStart]!;
    this.evictedThrough = Number(evicted.seq) + 1;
    this.ring[this.ringStart] = event;
    this.ringStart = (this.ringStart + 1) % this.capacity;
  }

  private held(i: number): Event {
    return this.ring[(this.ringStart + i) % this.capacity]!;
  }

  /** Position (0 = oldest held) of the first held event with seq ≥ `seq`. */
  private firstAtOrAfter(seq: number): number {
    let lo = 0;
    let hi = this.ringSize;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Number(this.held(mid).seq) < seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /**
   * Held events with seq ≥ `since` (and matching `filter`), oldest first, at most `limit`
   * (1..10,000). `next` continues after the last event examined, so filtered-out events are
   * not examined again.
   */
  since(since: bigint, limit = 1000, filter: EventFilter = {}): EventsSince {
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_EVENTS_PER_QUERY) {
      throw new RangeError(`limit must be a whole number from 1 to ${MAX_EVENTS_PER_QUERY}, got ${limit}`);
    }
    const end = this.nextSeqNumber;
    const oldest = this.ringSize > 0 ? this.held(0).seq : BigInt(end);
    if (since >= BigInt(end)) return { events: [], next: since, dropped: false, oldest };
    const from = since < 0n ? 0 : Number(since);
    const names = filter.names === undefined ? undefined : new Set<string>(filter.names);
    const events: Event[] = [];
    let next = BigInt(end);
    for (let i = this.firstAtOrAfter(from); i < this.ringSize; i++) {
      const e = this.held(i);
      if (events.length === limit) {
        next = e.seq;
        break;
      }
      if (filter.vm !== undefined && e.vm !== filter.vm) continue;
      if (names !== undefined && !names.has(e.name)) continue;
      events.push(e);
    }
    return { events, next, dropped: from < this.evictedThrough, oldest };
  }

  /** Calls `listener` with every later event that matches `filter`; returns the unsubscribe. */
  subscribe(filter: EventFilter, listener: EventListener): () => void {
    const subscription: Subscription = {
      vm: filter.vm,
      names: filter.names === undefined ? undefined : new Set(filter.names),
      completions: filter.completions === true,
      listener,
    };
    this.subscriptions = [...this.subscriptions, subscription];
    this.recomputeInterest();
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.subscriptions = this.subscriptions.filter((s) => s !== subscription);
      this.recomputeInterest();
    };
  }

  /** Sends matching events to a sink (a TraceWriter) and flushes it on `flush()`; returns the detach. */
  attachTrace(sink: EventSink, filter: EventFilter = {}): () => void {
    const unsubscribe = this.subscribe({ completions: true, ...filter }, (event) => sink.write(event));
    this.sinks.add(sink);
    return () => {
      unsubscribe();
      this.sinks.delete(sink);
    };
  }

  /** Writes out every attached trace's buffer (synchronously). Throws if a trace cannot be written. */
  flush(): void {
    // Called before every answer the VMM gives: without a trace, no iterator is made.
    if (this.sinks.size === 0) return;
    for (const sink of this.sinks) sink.flush();
  }

  private recomputeInterest(): void {
    const anyVm = new Set<string>();
    const byVm = new Map<string, Set<string> | true>();
    let everything = false;
    const add = (vm: string | undefined, names: ReadonlySet<string> | undefined): void => {
      if (vm === undefined) {
        if (names === undefined) everything = true;
        else for (const n of names) anyVm.add(n);
        return;
      }
      const current = byVm.get(vm);
      if (names === undefined || current === true) byVm.set(vm, true);
      else byVm.set(vm, new Set([...(current ?? []), ...names]));
    };
    if (this.capacity > 0) add(undefined, this.ringNames);
    for (const s of this.subscriptions) add(s.vm, s.names);
    this.interestChanges++;
    this.everyEventWanted = everything || EVENT_NAMES.every((n) => anyVm.has(n));
    this.namesWantedFromAnyVm = anyVm;
    this.namesWantedByVm = byVm;
  }
}
