/**
 * `connect()` and the Guest: one vCPU of one VM, driven as its guest kernel would drive it.
 * Every operation is one request the host runs as the real instruction; `batch()` sends many in
 * one frame.
 */
import {
  ClientSession, type Connection, DEFAULT_MAX_FRAME, DEFAULT_VCPU, DEFAULT_VM, type HelloResult, MAX_CONFIGURABLE_FRAME,
  MIN_MAX_FRAME, OPS, PROTOCOL_VERSION, ProtocolError, SchemaIssue, connect as openConnection,
} from '../protocol/index.js';
import { optionsArgument, uintArgument } from './arguments.js';
import { Batch } from './batch.js';
import { HostError, InvalidArgumentError } from './errors.js';
import { GuestChannel } from './guest-channel.js';
import { GuestOperations } from './guest-operations.js';
import { Andersen } from './andersen.js';
import { Heki } from './heki.js';
import { HekiMemory } from './heki-memory.js';
import { type MsrRangeInput } from './msr-ranges.js';
import { type MsrProbeReport, type ProbeMsrsOptions, probeMsrs } from './msr-probe.js';
import type { OpKind } from './operations.js';

export interface ConnectOptions {
  /** The VM to attach to (default "default"). */
  vm?: string;
  /** The vCPU to attach to (default 0). */
  vcpu?: number;
  /** Names this client in the host's logs. */
  client?: string;
  /** The VM's guest token, for a VM the host made with one (a control client's createVm `guestToken`). */
  token?: string;
  /**
   * Give up on a host that answers nothing for this long: connecting and the hello fail after
   * `timeoutMs`; once connected, a host that answers no request for between `timeoutMs` and
   * twice that while requests wait is dropped, and every waiting operation rejects with a
   * HostError `timeout`. Default: wait for ever.
   */
  timeoutMs?: number;
  /**
   * The largest frame body sent or accepted (default 1 MiB, as every pinbox endpoint). Set it
   * to the host's maximum if that was configured lower: batches are cut to fit it.
   */
  maxFrame?: number;
}

const CONNECT_OPTIONS = ['vm', 'vcpu', 'client', 'token', 'timeoutMs', 'maxFrame'] as const;

export class Guest extends GuestOperations {
  /** The VM this guest is attached to. */
  readonly vm: string;
  /** The vCPU this guest drives. */
  readonly vcpu: number;
  /** The VM's number of vCPUs, if the host said. */
  readonly vcpus: number | undefined;
  /** The VM's Heki ABI profile (exit and capability numbers), if the host said. */
  readonly profile: 'v2' | 'v3' | undefined;
  /** The host's name for itself. */
  readonly server: string;
  /** Heki CR pinning as a guest kernel does it: `version()`, `lockCr()`, `lockDown()`. */
  readonly heki: Heki;
  /** Heki's memory locks: `lockMemPageRanges()` (RFC v1) and `protectMemory()` (RFC v2). */
  readonly hekiMemory: HekiMemory;
  /** John Andersen's PV CR pinning (a VM made with the andersen option): `discover()`, `pin()`, `pinned()`, `lockDown()`. */
  readonly andersen: Andersen;

  /** @internal Guests come from `connect()`. */
  constructor(private readonly channel: GuestChannel, hello: HelloResult) {
    super();
    this.vm = hello.vm ?? DEFAULT_VM;
    this.vcpu = hello.vcpu ?? DEFAULT_VCPU;
    this.vcpus = hello.vcpus;
    this.profile = hello.profile;
    this.server = hello.server;
    this.heki = new Heki(this);
    this.hekiMemory = new HekiMemory(this);
    this.andersen = new Andersen(this);
  }

  /** True once the connection is closed (by `close()`, the host, or a timeout). */
  get closed(): boolean {
    return this.channel.closed;
  }

  /** A new, empty batch of operations on this guest. */
  batch(): Batch {
    return new Batch(this.channel);
  }

  /**
   * Probes every MSR in `ranges` (at most 65536) with RDMSR and a non-destructive WRMSR (see
   * WriteProbe), classifies each and summarises them as ranges.
   */
  probeMsrs(ranges: readonly MsrRangeInput[], options?: ProbeMsrsOptions): Promise<MsrProbeReport> {
    return probeMsrs(this.channel, ranges, options);
  }

  /** Closes the connection; operations still waiting reject with a HostError `connection_closed`. */
  close(): void {
    this.channel.close();
  }

  protected submit(kind: OpKind, safe: boolean, a?: unknown, b?: unknown, c?: unknown): Promise<any> {
    let params;
    try {
      params = kind.params(a, b, c);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.channel.perform(kind, safe, params);
  }
}

/**
 * Connects to a host — a URL (`unix:/path`, `tcp:HOST:PORT`, or `stdio:`: this process's own
 * stdin/stdout, when a host started it) or a Connection you opened (a memory pair, or
 * `spawnStdio()` to start the host as a child) — and says hello as a guest of `options.vm`, vCPU `options.vcpu`. Rejects with an
 * InvalidArgumentError for bad options, a HostError when the host cannot be reached or
 * refuses the hello (then the connection is closed).
 */
export async function connect(target: string | Connection, options?: ConnectOptions): Promise<Guest> {
  const checked = optionsArgument<ConnectOptions>('connect', options, CONNECT_OPTIONS) ?? {};
  const hello = helloOptions(checked);
  const timeoutMs = checked.timeoutMs === undefined ? undefined : positiveMs(checked.timeoutMs);
  const maxFrame = checked.maxFrame === undefined ? DEFAULT_MAX_FRAME : frameSize(checked.maxFrame);
  if (typeof target !== 'string' && !isConnection(target)) {
    throw new InvalidArgumentError('connect', 'target', 'must be a URL (unix:, tcp:, stdio:) or a Connection');
  }
  const deadline = timeoutMs === undefined ? undefined : { at: Date.now() + timeoutMs, ms: timeoutMs };

  let connection: Connection;
  if (typeof target === 'string') {
    try {
      connection = await beforeDeadline(openConnection(target), deadline, (late) => late.close());
    } catch (e) {
      throw new HostError(`connect to ${target}`, e instanceof ProtocolError ? e : new ProtocolError('connect_failed', `cannot connect to ${target}: ${(e as Error).message}`));
    }
  } else {
    connection = target;
  }

  const session = new ClientSession(connection, { maxFrame });
  let result: HelloResult;
  try {
    result = await beforeDeadline(session.hello(hello), deadline);
  } catch (e) {
    session.close();
    throw new HostError('hello', e);
  }
  return new Guest(new GuestChannel(session, maxFrame, timeoutMs), result);
}

function helloOptions(o: ConnectOptions): { role: 'guest'; vm?: string; vcpu?: number; client?: string; token?: string } {
  const hello = { role: 'guest' as const, vm: o.vm, vcpu: o.vcpu, client: o.client, ...(o.token !== undefined && { token: o.token }) };
  try {
    OPS.hello.params.wire({ version: PROTOCOL_VERSION, ...hello });
  } catch (e) {
    if (e instanceof SchemaIssue) throw new InvalidArgumentError('connect', `options.${e.path}`, e.message);
    throw e;
  }
  return hello;
}

function positiveMs(v: unknown): number {
  if (typeof v === 'number' && Number.isFinite(v) && v > 0 && v <= 0x7fff_ffff) return v;
  throw new InvalidArgumentError('connect', 'options.timeoutMs', `must be a number of milliseconds above 0 (at most 2^31-1), got ${String(v)}`);
}

function frameSize(v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= MIN_MAX_FRAME) return uintArgument('connect', 'options.maxFrame', v, MAX_CONFIGURABLE_FRAME);
  throw new InvalidArgumentError('connect', 'options.maxFrame', `must be an integer ${MIN_MAX_FRAME}..${MAX_CONFIGURABLE_FRAME}, got ${String(v)}`);
}

function isConnection(v: unknown): v is Connection {
  const c = v as Connection | null;
  return typeof c === 'object' && c !== null && typeof c.write === 'function' && typeof c.onData === 'function'
    && typeof c.onClose === 'function' && typeof c.close === 'function';
}

/**
 * `promise`, or a `timeout` ProtocolError once the deadline passes. A value that arrives too
 * late is handed to `late` (to close a connection nobody will use).
 */
function beforeDeadline<T>(promise: Promise<T>, deadline: { at: number; ms: number } | undefined, late?: (value: T) => void): Promise<T> {
  if (deadline === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    let expired = false;
    const timer = setTimeout(() => {
      expired = true;
      reject(new ProtocolError('timeout', `no answer within ${deadline.ms} ms`));
    }, Math.max(0, deadline.at - Date.now()));
    promise.then(
      (value) => {
        clearTimeout(timer);
        if (expired) late?.(value);
        else resolve(value);
      },
      (error) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}
