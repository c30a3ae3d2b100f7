/**
 * The fuzz suite in `npm test`: hostile frames against both endpoints of a server, with the
 * bystander checker (core.test.ts says more).
 */
import test from 'ava';
import { formatLatencies, whileAttacked } from './bystander.js';
import { fuzzFrames } from './campaigns.js';
import { describeReport, TEST_SEED } from './report.js';
import { fuzzServer, WATCHED_VM } from './target.js';

/** Generous for a shared machine: no bystander answer waits this long. */
const BYSTANDER_BOUND_MS = 1000;

test('frames: hostile frames at both endpoints; every connection answers or is closed, bystanders stay answered, pins hold', async (t) => {
  const s = await fuzzServer();
  try {
    const attack = fuzzFrames({ seed: TEST_SEED, cases: 400, maxMs: 3000, target: s, watchedVm: WATCHED_VM });
    const { outcome, guest, control } = await whileAttacked({ guest: s.bystander, control: s.control }, attack, 20);
    t.log(describeReport(outcome));
    t.log(`guest bystander:   ${formatLatencies(guest)}`);
    t.log(`control bystander: ${formatLatencies(control)}`);
    t.true(outcome.cases >= 50, 'enough cases ran');
    t.true(guest.max < BYSTANDER_BOUND_MS && control.max < BYSTANDER_BOUND_MS, 'bystanders answered within the bound');
    t.true(s.pinsHold(), 'the watched VM kept CR0.WP and CR4.SMEP pinned');
    t.is(await s.bystander.rdmsr(0xc0000080), 0xd01n, 'the server still serves');
  } finally {
    await s.close();
  }
});
