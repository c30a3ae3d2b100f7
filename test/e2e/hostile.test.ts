/**
 * `pinbox serve` against hostile guests, in a child process as users run it (issue 9): the
 * exception loop of finding 1 no longer hangs the server, and a guest's costliest batch (an
 * `out 0x80` loop in every op, finding 2) leaves other clients answered within a bound.
 */
import test from 'ava';
import { formatLatencies, outLoopBatch, whileAttacked } from '../fuzz/bystander.js';
import { startServe } from './serve-process.js';

/** The issue's bytes: mov rax,0x90e8; mov dword [rax],0xffff8000; mov rax,0xffff800000000000; mov al,[rax] */
const ISSUE_BYTES = Uint8Array.from(Buffer.from('48c7c0e8900000c7000080ffff48b8000000000080ffff8a00', 'hex'));
/**
 * Generous for a shared two-core machine (the typical figure is logged): nine answers in ten
 * within it, and none that waited for as long as half the attack (without turns, every answer
 * during the attack waits for all of it).
 */
const BYSTANDER_BOUND_MS = 500;

function p90(samples: readonly number[]): number {
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length * 0.9)]!;
}

test('a guest exec of the issue\'s 25 bytes stops as exception_loop; the server answers on and stops on SIGTERM', async (t) => {
  const s = await startServe({});
  try {
    const guest = await s.guest();
    const r = await guest.exec(ISSUE_BYTES);
    t.like(r, { stop: 'exception_loop', fault: { vector: 14, errorCode: 0x10 }, regs: { rip: 0xffff80000000e0e0n } });
    t.is(await guest.rdmsr(0xc0000080), 0xd01n, 'the vCPU was booted again');
    const c = await s.control();
    t.like(await c.request('stats', {}), { vms: 1 });
    const stopping = performance.now();
    t.is(await s.stop(), 0);
    t.true(performance.now() - stopping < 5000);
  } finally {
    s.cleanup();
  }
});

test('while a guest runs a batch of out-0x80 loops, another VM\'s guest and a control client stay answered', async (t) => {
  const s = await startServe({}, ['--max-request-ms', '3000', '--max-exits', '1000000']);
  try {
    const hostile = await s.guest('hostile');
    const bystander = await s.guest('bystander');
    const control = await s.control();
    await bystander.rdmsr(0xc0000080);
    const started = performance.now();
    const { outcome, guest, control: ctl } = await whileAttacked({ guest: bystander, control }, outLoopBatch(hostile, 8));
    const took = performance.now() - started;
    t.log(`attack: a batch of 8 execs, ${took.toFixed(0)} ms, stops ${[...new Set(outcome)].join(', ')}`);
    t.log(`guest bystander:   ${formatLatencies(guest)}`);
    t.log(`control bystander: ${formatLatencies(ctl)}`);
    t.true(outcome.every((stop) => stop === 'time' || stop === 'budget'), outcome.join());
    t.true(guest.samples.length >= 10 && ctl.samples.length >= 10, 'both were answered many times during the attack');
    for (const [who, l] of [['guest', guest], ['control', ctl]] as const) {
      t.true(p90(l.samples) < BYSTANDER_BOUND_MS, `${who} bystander p90 ${p90(l.samples).toFixed(0)} ms`);
      t.true(l.max < took / 2, `${who} bystander max ${l.max.toFixed(0)} ms of a ${took.toFixed(0)} ms attack`);
    }
  } finally {
    s.cleanup();
  }
});
