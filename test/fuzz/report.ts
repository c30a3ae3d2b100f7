/** How the fuzz suite words a campaign's report, and the seed it runs with. */
import type { CampaignReport } from './campaigns.js';
import { seedFrom } from './random.js';

/** The seed of `npm test`'s campaigns: fixed, unless PINBOX_FUZZ_SEED names another. */
export const TEST_SEED = seedFrom(process.env.PINBOX_FUZZ_SEED, 0x5eed_0009);

export function describeReport(r: CampaignReport): string {
  const outcomes = Object.entries(r.outcomes).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v}`).join(', ');
  return `${r.name}: ${r.cases} cases in ${r.ms.toFixed(0)} ms (seed 0x${r.seed.toString(16)}; slowest ${r.slowestMs.toFixed(1)} ms): ${outcomes}`;
}
