/**
 * The fuzz suite in `npm test` (issue 9), bounded to a few seconds: random instruction strings
 * against the core. `npm run fuzz` runs it longer with a fresh seed; a failure names the seed and
 * the case, and PINBOX_FUZZ_SEED=N npm test runs that seed again.
 */
import test from 'ava';
import { fuzzCore } from './campaigns.js';
import { describeReport, TEST_SEED } from './report.js';

test('core: random instruction strings with a budget always stop, with an intercept, within the budget', async (t) => {
  const r = await fuzzCore({ seed: TEST_SEED, cases: 3000, maxMs: 2500, budget: 500, runs: 2 });
  t.log(describeReport(r));
  t.true(r.cases >= 100, 'enough cases ran');
});
