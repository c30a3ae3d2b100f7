/**
 * `npm run fuzz [-- --seed N] [--cases N] [--seconds S] [core|guest|frames…]`: the fuzz suite's
 * long mode. Each campaign runs up to N cases or S seconds (defaults 20,000 and 60), from a
 * fresh random seed unless one is given; the seed is printed first, so any run can be repeated.
 * Exits 1 on the first violation (naming seed and case), 2 on bad arguments.
 */
import { randomInt } from 'node:crypto';
import { formatLatencies, whileAttacked } from './bystander.js';
import { fuzzCore, fuzzFrames, fuzzGuest, FuzzViolation, type CampaignReport } from './campaigns.js';
import { describeReport } from './report.js';
import { fuzzServer, WATCHED_VM } from './target.js';

const CAMPAIGNS = ['core', 'guest', 'frames'] as const;
type Campaign = (typeof CAMPAIGNS)[number];

function usage(message: string): never {
  process.stderr.write(`fuzz: ${message}\nUsage: npm run fuzz -- [--seed N] [--cases N] [--seconds S] [${CAMPAIGNS.join('|')}…]\n`);
  process.exit(2);
}

function count(name: string, text: string | undefined, max: number): number {
  const n = Number(text);
  if (text === undefined || !Number.isSafeInteger(n) || n < 0 || n > max) usage(`${name} needs a whole number from 0 to ${max}, got ${String(text)}`);
  return n;
}

const args = process.argv.slice(2);
let seed = randomInt(0, 0xffffffff);
let cases = 20_000;
let seconds = 60;
const chosen: Campaign[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--seed') seed = count('--seed', args[++i], 0xffffffff);
  else if (a === '--cases') cases = count('--cases', args[++i], 10_000_000);
  else if (a === '--seconds') seconds = count('--seconds', args[++i], 86_400);
  else if ((CAMPAIGNS as readonly string[]).includes(a)) chosen.push(a as Campaign);
  else usage(`unknown argument ${a}`);
}
const run = chosen.length === 0 ? [...CAMPAIGNS] : chosen;
process.stdout.write(`fuzz: seed 0x${seed.toString(16)} (again: npm run fuzz -- --seed 0x${seed.toString(16)}), up to ${cases} cases or ${seconds} s per campaign: ${run.join(', ')}\n`);

async function campaign(name: Campaign): Promise<CampaignReport> {
  const o = { seed, cases, maxMs: seconds * 1000 };
  if (name === 'core') return fuzzCore(o);
  if (name === 'guest') return fuzzGuest(o);
  const s = await fuzzServer();
  try {
    const { outcome, guest, control } = await whileAttacked({ guest: s.bystander, control: s.control }, fuzzFrames({ ...o, target: s, watchedVm: WATCHED_VM }), 20);
    process.stdout.write(`  guest bystander:   ${formatLatencies(guest)}\n  control bystander: ${formatLatencies(control)}\n`);
    if (!s.pinsHold()) throw new FuzzViolation('frames', seed, outcome.cases, 'the watched VM lost a pinned bit');
    return outcome;
  } finally {
    await s.close();
  }
}

let failed = false;
for (const name of run) {
  try {
    process.stdout.write(`${describeReport(await campaign(name))}\n`);
  } catch (e) {
    process.stdout.write(`FAIL ${e instanceof FuzzViolation ? e.message : (e as Error)?.stack ?? String(e)}\n`);
    failed = true;
    break;
  }
}
process.exit(failed ? 1 : 0);
