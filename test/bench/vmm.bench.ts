/**
 * A guest operation through the whole VMM — lowered to RDMSR of EFER on the boot template, run
 * on the modelled core under the KVM model, its result read back (JSON Lines names):
 *   vmm.op_inprocess        µs per operation, `await vm.perform(0, { op: 'rdmsr', ... })`, with the
 *                           VMM's default event log (target ≤ 2 µs)
 *   vmm.op_socket_p50/_p99  µs per operation, one at a time, from the guest SDK over a Unix socket
 *                           to the VMM's guest endpoint in the same process (target p50 ≤ 30 µs):
 *                           both kernel socket hops, framing, msgpack and validation on both
 *                           sides, the VMM — without the cost of waking another process, which
 *                           the _2proc figures show
 *   vmm.op_socket_batched   operations per second, batches of 4096 (MAX_BATCH_OPS, two in flight)
 *                           from the guest SDK to `pinbox`'s server in another process
 *                           (target ≥ 300,000)
 * Context: vmm.op_inprocess_filtered (a filtered RDMSR answered by the policy: one user-space
 * exit per operation), vmm.op_inprocess_cpl3 (CPUID at CPL3: IRETQ in, the done gate out),
 * vmm.op_socket_p50_2proc / _p99_2proc (the latency figures with the server in another
 * process) and vmm.stub_socket_p50_2proc (the same against a server that answers without a
 * VMM: the floor this machine puts under any cross-process round trip).
 * Each run measures anew; the report gives the median (and min, max) of the runs.
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../../guest-sdk/index.js';
import { parsePolicy, startServer, Vmm } from '../../host/vmm/index.js';
import { MAX_BATCH_OPS, serve } from '../../protocol/index.js';
import { report, sample } from './report.js';

const EFER = 0xc0000080;
const SERVER_ENV = 'PINBOX_BENCH_SERVE';
const policy = { msrFilter: { default: 'allow', deny: ['0x35'] }, msrHandlers: { '0x35': { read: '0x10001' } } };

const MODE_ENV = 'PINBOX_BENCH_SERVER_MODE';

if (process.env[SERVER_ENV] !== undefined) {
  // The server half: a VMM (or a stub answering like one) on the socket the parent named, until killed.
  const path = `unix:${process.env[SERVER_ENV]}`;
  const server = process.env[MODE_ENV] === 'stub'
    ? await serve(path, { hello: () => ({ server: 'stub' }), request: () => ({ value: 0xd01n, exits: [] }) })
    : await startServer({ vmm: new Vmm({ policy: parsePolicy(policy) }), listen: path });
  process.send!(server.address);
} else {
  await inProcess();
  await overSocket();
}

async function inProcess(): Promise<void> {
  const vm = new Vmm({ policy: parsePolicy(policy) }).vm();
  const microsPerOp = async (request: object, n: number): Promise<number> => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await vm.perform(0, request);
    return Number(process.hrtime.bigint() - t0) / n / 1000;
  };
  const rdmsr = { op: 'rdmsr', index: EFER };
  const check = (await vm.perform(0, rdmsr)) as { value?: bigint };
  if (check.value !== 0xd01n) throw new Error(`RDMSR EFER gave ${String(check.value)}`);
  await microsPerOp(rdmsr, 50_000);
  report('vmm.op_inprocess', await sample(() => microsPerOp(rdmsr, 100_000)), 'µs');
  const filtered = { op: 'rdmsr', index: 0x35 };
  await microsPerOp(filtered, 20_000);
  report('vmm.op_inprocess_filtered', await sample(() => microsPerOp(filtered, 50_000)), 'µs');
  const user = { op: 'cpuid', leaf: 0, cpl: 3 };
  await microsPerOp(user, 20_000);
  report('vmm.op_inprocess_cpl3', await sample(() => microsPerOp(user, 50_000)), 'µs');
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

/** p50 and p99 of one-at-a-time RDMSRs from a guest at `address`, one pair per run. */
async function latencies(address: string, name: string): Promise<void> {
  const guest = await connect(address);
  const once = async (n: number): Promise<Float64Array> => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const t0 = process.hrtime.bigint();
      await guest.rdmsr(EFER);
      out[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    return out.sort();
  };
  await once(5000);
  const runs: Float64Array[] = [];
  await sample(async () => {
    runs.push(await once(20_000));
    return 0;
  });
  report(name.replace('%', 'p50'), runs.map((r) => percentile(r, 0.5)), 'µs');
  if (!name.startsWith('vmm.stub')) report(name.replace('%', 'p99'), runs.map((r) => percentile(r, 0.99)), 'µs');
  guest.close();
}

/** A server in a child process; resolves with its address and a way to stop it. */
async function childServer(dir: string, mode: 'vmm' | 'stub'): Promise<{ address: string; stop(): void }> {
  const child = fork(fileURLToPath(import.meta.url), [], {
    env: { ...process.env, [SERVER_ENV]: join(dir, `${mode}.sock`), [MODE_ENV]: mode },
    stdio: 'inherit',
  });
  const address = await new Promise<string>((resolve, reject) => {
    child.once('message', (m) => resolve(String(m)));
    child.once('exit', (code) => reject(new Error(`the bench server exited with ${code}`)));
  });
  return { address, stop: () => child.kill() };
}

async function overSocket(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-bench-'));
  const stops: (() => void)[] = [];
  try {
    const local = await startServer({ vmm: new Vmm({ policy: parsePolicy(policy) }), listen: `unix:${join(dir, 'local.sock')}` });
    stops.push(() => void local.close());
    await latencies(local.address, 'vmm.op_socket_%');

    const remote = await childServer(dir, 'vmm');
    stops.push(remote.stop);
    const guest = await connect(remote.address);
    const BATCH = MAX_BATCH_OPS;
    const batched = async (batches: number): Promise<number> => {
      const t0 = process.hrtime.bigint();
      let previous: Promise<unknown> = Promise.resolve();
      for (let k = 0; k < batches; k++) {
        const b = guest.batch();
        for (let i = 0; i < BATCH; i++) void b.rdmsr(EFER);
        const sent = b.send();
        await previous; // two batches in flight: the server runs one while the guest reads the last
        previous = sent;
      }
      await previous;
      return (batches * BATCH) / (Number(process.hrtime.bigint() - t0) / 1e9);
    };
    await batched(20);
    report('vmm.op_socket_batched', await sample(() => batched(100)), 'ops/s');
    guest.close();

    await latencies(remote.address, 'vmm.op_socket_%_2proc');
    const stub = await childServer(dir, 'stub');
    stops.push(stub.stop);
    await latencies(stub.address, 'vmm.stub_socket_%_2proc');
  } finally {
    for (const stop of stops) stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
