/** The fuzz suite in `npm test`: random guest code through the whole VMM (core.test.ts says more). */
import test from 'ava';
import { fuzzGuest } from './campaigns.js';
import { describeReport, TEST_SEED } from './report.js';

test('guest: random guest code through the VMM settles every request, never internal, and the pins persist', async (t) => {
  const r = await fuzzGuest({ seed: TEST_SEED, cases: 1000, maxMs: 2500 });
  t.log(describeReport(r));
  t.true(r.cases >= 100, 'enough cases ran');
});
