/**
 * `npm run bench [-- [--json] [--runs N] [FILTER...]]`: runs every compiled benchmark in
 * build/bench, one at a time in its own process so that they do not compete for the two cores.
 * A FILTER keeps only the benchmark files whose name contains it.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const passThrough: string[] = [];
const filters: string[] = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--json') passThrough.push(a);
  else if (a === '--runs') passThrough.push(a, args[++i] ?? '');
  else if (a.startsWith('-')) {
    process.stderr.write(`bench: unknown option ${a} (known: --json, --runs N, FILTER)\n`);
    process.exit(2);
  } else filters.push(a);
}

const files = readdirSync(here)
  .filter((f) => f.endsWith('.bench.js'))
  .filter((f) => filters.length === 0 || filters.some((x) => f.includes(x)))
  .sort();
if (files.length === 0) {
  process.stderr.write(`bench: no benchmark matches ${filters.join(' ') || '(none built)'}\n`);
  process.exit(2);
}
let failed = false;
for (const f of files) {
  const r = spawnSync(process.execPath, [join(here, f), ...passThrough], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`bench: ${f} failed (exit ${r.status ?? r.signal})\n`);
    failed = true;
  }
}
process.exit(failed ? 1 : 0);
