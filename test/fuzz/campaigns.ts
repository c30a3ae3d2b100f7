/**
 * The fuzz campaigns (issue 9, "Also"): each runs numbered cases from one seed, checks the
 * invariants after every case, and on a violation throws an error naming the seed and the case
 * so that the case can be run again alone (Random.forCase).
 *
 *   core    random instruction strings on a booted core with a budget: every run stops, with an
 *           intercept the core defines, within the budget, and nothing throws out of the core;
 *   guest   random guest code through the whole VMM (KVM model, exits answered, vCPU reboots) on a
 *           VM with pinned CR0.WP and CR4.SMEP: every request settles, never with `internal`,
 *           and the pins persist;
 *   frames  hostile frames against a running server's guest and control endpoints: after each
 *           case the connection either answers a valid request or was closed by the server, and
 *           the watched VM keeps its pins.
 */
import { connect as openConnection, type Connection } from '../../protocol/index.js';
import { EXEC_STOPS } from '../../protocol/messages/index.js';
import { FrameReader, frameBody } from '../../protocol/framing.js';
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.js';
import { EventLog, parsePolicy, Vmm } from '../../host/vmm/index.js';
import { Cpu, PhysicalMemory } from '../../host/index.js';
import { bootVcpu, buildBootImage, type BootLayout } from '../../host/vmm/boot/index.js';
import { CODE } from '../x86/harness/machine.js';
import { randomCode } from './code.js';
import { hostileFrame } from './frames.js';
import { Random } from './random.js';

export interface CampaignOptions {
  readonly seed: number;
  readonly cases: number;
  /** Stop early (between cases) once this much time has passed. */
  readonly maxMs?: number;
}

export interface CampaignReport {
  readonly name: string;
  readonly seed: number;
  readonly cases: number;
  readonly ms: number;
  /** How the cases ended, by kind. */
  readonly outcomes: Record<string, number>;
  /** The slowest case, in ms. */
  readonly slowestMs: number;
}

export class FuzzViolation extends Error {
  override readonly name = 'FuzzViolation';
  constructor(campaign: string, seed: number, n: number, what: string, input?: Uint8Array) {
    super(`${campaign} campaign, seed ${seed}, case ${n}: ${what}${input === undefined ? '' : ` (input ${Buffer.from(input).toString('hex')})`}`);
  }
}

class Tally {
  readonly outcomes: Record<string, number> = {};
  slowestMs = 0;
  count(kind: string, ms: number): void {
    this.outcomes[kind] = (this.outcomes[kind] ?? 0) + 1;
    if (ms > this.slowestMs) this.slowestMs = ms;
  }
}

async function runCases(
  name: string, o: CampaignOptions, each: (r: Random, n: number, tally: Tally) => Promise<void> | void,
): Promise<CampaignReport> {
  const tally = new Tally();
  const started = performance.now();
  let n = 0;
  for (; n < o.cases; n++) {
    if (o.maxMs !== undefined && performance.now() - started > o.maxMs) break;
    await each(Random.forCase(o.seed, n), n, tally);
    // Let the event loop run now and then: a campaign of synchronous cases must not starve the rest.
    if (n % 32 === 31) await new Promise((resolve) => setImmediate(resolve));
  }
  return { name, seed: o.seed, cases: n, ms: performance.now() - started, outcomes: tally.outcomes, slowestMs: tally.slowestMs };
}

const INTERCEPT_KINDS = new Set([
  'mov_to_cr', 'mov_from_cr', 'clts', 'lmsw', 'rdmsr', 'wrmsr', 'hypercall', 'cpuid', 'hlt', 'io', 'exception', 'triple_fault', 'budget', 'invalid_guest_state',
]);

/** The boot image, built once: each case copies its pages into fresh memory (building it anew costs ~2 ms). */
let bootTemplate: { layout: BootLayout; pages: { at: number; bytes: Uint8Array }[] } | undefined;
const CORE_MEMORY = 4 << 20;

/**
 * A core in the boot state at CPL0 with RIP at CODE, on memory of its own: as the x86 tests'
 * buildMachine() makes it, faster. Mostly the interpreter — translating every block of code that
 * runs once costs more than it saves — and sometimes the translator, at its first run.
 */
function bootedCore(jit: boolean): { memory: PhysicalMemory; cpu: Cpu } {
  if (bootTemplate === undefined) {
    const memory = new PhysicalMemory(CORE_MEMORY);
    const layout = buildBootImage(memory, { vcpus: 1 });
    const pages = [];
    for (let f = 0; f < memory.frameCount; f++) if (memory.isAllocated(f)) pages.push({ at: f * 4096, bytes: memory.readBytes(f * 4096, 4096) });
    bootTemplate = { layout, pages };
  }
  const memory = new PhysicalMemory(CORE_MEMORY);
  for (const p of bootTemplate.pages) memory.writeBytes(p.at, p.bytes);
  const cpu = new Cpu(memory, { jit, jitThreshold: 1 });
  bootVcpu(cpu, bootTemplate.layout, 0);
  cpu.setRip(BigInt(CODE));
  return { memory, cpu };
}

/** Random instruction strings on the bare core; intercepted instructions are skipped, as a careless hypervisor would. */
export function fuzzCore(o: CampaignOptions & { budget?: number; runs?: number }): Promise<CampaignReport> {
  const budget = o.budget ?? 5000;
  const runs = o.runs ?? 4;
  return runCases('core', o, (r, n, tally) => {
    const code = randomCode(r);
    const m = bootedCore(r.chance(0.15));
    m.memory.writeBytes(CODE, code);
    const started = performance.now();
    let kind = '';
    for (let run = 0; run < runs; run++) {
      const before = m.cpu.instructionsRetired + m.cpu.eventsDelivered;
      let stop;
      try {
        stop = m.cpu.run(budget);
      } catch (e) {
        throw new FuzzViolation('core', o.seed, n, `run() threw ${(e as Error)?.stack ?? String(e)}`, code);
      }
      if (stop === null || typeof stop !== 'object' || !INTERCEPT_KINDS.has(stop.kind)) {
        throw new FuzzViolation('core', o.seed, n, `run() returned ${JSON.stringify(stop)}`, code);
      }
      const spent = m.cpu.instructionsRetired + m.cpu.eventsDelivered - before;
      if (spent > budget) throw new FuzzViolation('core', o.seed, n, `run(${budget}) spent ${spent}`, code);
      kind = stop.kind === 'budget' && m.cpu.exceptionLoop !== null ? 'exception_loop' : stop.kind;
      if (stop.kind === 'triple_fault' || stop.kind === 'invalid_guest_state' || stop.kind === 'hlt') break;
      if (stop.kind !== 'budget' && stop.kind !== 'exception') m.cpu.skipInstruction();
    }
    tally.count(kind, performance.now() - started);
  });
}

const SMEP = 1n << 20n;
const WP = 1n << 16n;

/** The errors a guest request may end with; `internal` (a VMM bug) is not among them. */
const GUEST_ERRORS = new Set(['limit', 'guest_shutdown', 'exception_loop', 'vm_killed', 'vm_reset', 'vcpu_init', 'invalid_guest_state', 'kvm_error']);

/** Random guest code through the whole VMM, on a VM that pinned CR0.WP and CR4.SMEP. */
export function fuzzGuest(o: CampaignOptions): Promise<CampaignReport> {
  const vmm = new Vmm({
    policy: parsePolicy({ memory: '4MiB', msrFilter: { default: 'allow', deny: ['0xda0'] }, userSpaceMsr: ['filter', 'unknown'], heki: { onDenial: 'log' } }),
    log: new EventLog({ capacity: 0 }), budget: 20_000, maxExits: 500, maxRequestMs: 200,
  });
  const vm = vmm.vm('fuzz');
  const pin = async (): Promise<void> => {
    await vm.perform(0, { op: 'hypercall', nr: 13n, args: [0n, WP] });
    await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, SMEP] });
  };
  let pinned = false;
  return runCases('guest', o, async (r, n, tally) => {
    if (n % 16 === 0) {
      vm.reset('control'); // each stretch of cases starts from a clean boot image (a reset clears pins: pin again)
      pinned = false;
    }
    if (!pinned) {
      await pin();
      pinned = true;
    }
    const code = randomCode(r);
    const started = performance.now();
    let kind: string;
    try {
      const res = (await vm.perform(0, { op: 'exec', code, ...(r.chance(0.25) && { cpl: 3 }) })) as { stop: string };
      if (!(EXEC_STOPS as readonly string[]).includes(res.stop)) throw new FuzzViolation('guest', o.seed, n, `exec stopped with ${res.stop}`, code);
      kind = res.stop;
    } catch (e) {
      if (e instanceof FuzzViolation) throw e;
      const code_ = (e as { code?: string }).code;
      if (code_ === undefined || !GUEST_ERRORS.has(code_)) throw new FuzzViolation('guest', o.seed, n, `exec failed: ${(e as Error)?.stack ?? String(e)}`, code);
      kind = `error:${code_}`;
    }
    const sregs = vm.getSregs(0);
    if ((sregs.cr4 & SMEP) === 0n || (sregs.cr0 & WP) === 0n) {
      throw new FuzzViolation('guest', o.seed, n, `a pinned bit is clear: CR0 0x${sregs.cr0.toString(16)} CR4 0x${sregs.cr4.toString(16)}`, code);
    }
    if (vm.runState === 'killed') {
      vm.reset('control');
      pinned = false;
    }
    tally.count(kind, performance.now() - started);
  });
}

export interface FramesTarget {
  readonly guestUrl: string;
  readonly controlUrl: string;
  readonly token: string;
}

/** A raw connection: writes bytes, and tells when a response with some id arrives or the connection closes. */
class RawClient {
  private readonly ids: unknown[] = [];
  closed = false;
  private wake: (() => void) | undefined;

  private constructor(readonly connection: Connection) {
    const reader = new FrameReader({
      frame: (body) => {
        let id: unknown;
        try {
          id = (decodeMsgpack(body) as { id?: unknown } | null)?.id;
        } catch {
          id = undefined;
        }
        this.ids.push(id);
        this.wake?.();
      },
      error: () => connection.close(),
    }, 64 << 20);
    connection.onData((chunk) => reader.push(chunk));
    connection.onClose(() => {
      this.closed = true;
      this.wake?.();
    });
  }

  static async open(url: string): Promise<RawClient> {
    return new RawClient(await openConnection(url));
  }

  send(value: unknown): void {
    this.connection.write(frameBody(encodeMsgpack(value), 64 << 20));
  }

  /** True when a response with `id` came; false when the server closed the connection first. Throws after `ms`. */
  async answered(id: number, ms: number): Promise<boolean> {
    const deadline = performance.now() + ms;
    for (;;) {
      const i = this.ids.indexOf(id);
      if (i >= 0) {
        this.ids.splice(0, i + 1);
        return true;
      }
      if (this.closed) return false;
      const left = deadline - performance.now();
      if (left <= 0) throw new Error(`no answer to request ${id} within ${ms} ms, and the connection is still open`);
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        setTimeout(resolve, Math.min(left, 50));
      });
      this.wake = undefined;
    }
  }

  close(): void {
    this.connection.close();
  }
}

/**
 * Hostile frames against a running server. Each case opens a connection to one endpoint, may say
 * hello (as a guest of the watched VM or another, or as a control client with the right token),
 * sends a few hostile frames in pieces, then asks a valid question: the answer must come, or the
 * server must have closed the connection. Wrong control tokens are sent now and then without
 * waiting (the server answers them ever more slowly, by design).
 */
export function fuzzFrames(o: CampaignOptions & { target: FramesTarget; watchedVm: string; answerMs?: number }): Promise<CampaignReport> {
  const { target } = o;
  const answerMs = o.answerMs ?? 10_000;
  return runCases('frames', o, async (r, n, tally) => {
    const started = performance.now();
    const role = r.chance(0.75) ? 'guest' : 'control';
    const client = await RawClient.open(role === 'guest' ? target.guestUrl : target.controlUrl);
    try {
      if (role === 'control' && r.chance(0.02)) {
        client.send({ id: 0, op: 'hello', version: 1, role: 'control', token: 'a wrong guess' });
        tally.count('wrong-token', performance.now() - started);
        return;
      }
      const greeted = r.chance(0.8);
      if (greeted) {
        client.send(role === 'guest'
          ? { id: 1000, op: 'hello', version: 1, role: 'guest', vm: r.pick([o.watchedVm, 'fuzz-a', 'fuzz-b']) }
          : { id: 1000, op: 'hello', version: 1, role: 'control', token: target.token });
        if (!(await client.answered(1000, answerMs))) throw new Error('the server closed a connection that only said hello');
      }
      for (let k = r.between(1, 6); k > 0; k--) {
        const bytes = hostileFrame(r, role);
        for (let at = 0; at < bytes.length;) {
          const piece = r.chance(0.7) ? bytes.length - at : r.between(1, bytes.length - at);
          client.connection.write(bytes.subarray(at, at + piece));
          at += piece;
          if (r.chance(0.1)) await new Promise((resolve) => setImmediate(resolve));
        }
      }
      // The question: hello again (answered already_greeted, or greeted now), or a cheap op.
      client.send(greeted ? (role === 'guest' ? { id: 2000, op: 'clts' } : { id: 2000, op: 'stats' }) : { id: 2000, op: 'hello', version: 1, role: 'guest', vm: 'fuzz-a' });
      const ok = await client.answered(2000, answerMs);
      tally.count(ok ? 'answered' : 'closed-by-server', performance.now() - started);
    } catch (e) {
      throw new FuzzViolation('frames', o.seed, n, (e as Error).message);
    } finally {
      client.close();
    }
  });
}
