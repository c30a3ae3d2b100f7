/**
 * What a hostile guest costs everybody else (issue 9, finding 2): a server in a child process
 * runs one guest's batch of `out 0x80` loops (an exit every second instruction) for about five
 * seconds — per-request limits raised so the attack lasts — while a guest of another VM and a
 * control client each ask a small thing every 5 ms. Each run reports the median and the largest
 * wait of the guest bystander in it; the figures are the medians of the runs.
 *
 *   hostile.bystander_p50   ms, the bystander guest's median answer time during the attack
 *   hostile.bystander_max   ms, its slowest answer during the attack
 *   hostile.control_max     ms, the control client's slowest answer during the attack
 */
import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientSession, connect as openConnection } from '../../protocol/index.js';
import { connect } from '../../guest-sdk/index.js';
import { EventLog, parsePolicy, startServer, Vmm } from '../../host/vmm/index.js';
import { outLoopBatch, whileAttacked } from '../fuzz/bystander.js';
import { report, sample } from './report.js';

const SERVER_ENV = 'PINBOX_BENCH_HOSTILE_DIR';
const TOKEN = 'bench-token';

async function serveInChild(dir: string): Promise<void> {
  const vmm = new Vmm({
    policy: parsePolicy({}), log: new EventLog({ capacity: 0 }),
    budget: Number.MAX_SAFE_INTEGER, maxExits: 0x7fffffff, maxRequestMs: 5000,
  });
  await startServer({ vmm, listen: `unix:${join(dir, 'g.sock')}`, control: `unix:${join(dir, 'c.sock')}`, token: TOKEN, tokenFile: false });
  process.send!('ready');
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-bench-hostile-'));
  const child = fork(fileURLToPath(import.meta.url), [], { env: { ...process.env, [SERVER_ENV]: dir }, stdio: 'inherit' });
  try {
    await new Promise<void>((resolve, reject) => {
      child.once('message', () => resolve());
      child.once('exit', (code) => reject(new Error(`the bench server exited with ${code}`)));
    });
    const guestUrl = `unix:${join(dir, 'g.sock')}`;
    const hostile = await connect(guestUrl, { vm: 'hostile' });
    const bystander = await connect(guestUrl, { vm: 'bystander' });
    const control = new ClientSession(await openConnection(`unix:${join(dir, 'c.sock')}`));
    await control.hello({ role: 'control', token: TOKEN });
    await bystander.rdmsr(0xc0000080);
    const p50: number[] = [];
    const max: number[] = [];
    const controlMax = await sample(async () => {
      const r = await whileAttacked({ guest: bystander, control }, outLoopBatch(hostile, 1));
      p50.push(r.guest.median);
      max.push(r.guest.max);
      return r.control.max;
    });
    report('hostile.bystander_p50', p50, 'ms');
    report('hostile.bystander_max', max, 'ms');
    report('hostile.control_max', controlMax, 'ms');
    hostile.close();
    bystander.close();
    control.close();
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.env[SERVER_ENV] !== undefined) await serveInChild(process.env[SERVER_ENV]);
else await main();
