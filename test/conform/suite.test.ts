/**
 * The conformance suite in test/conformance: every file parses, every catalogued case is
 * covered or listed as not applicable (with a reason) in test/conformance/README.md, and every
 * exec step's bytes are the instructions its `asm` says, by iced-x86's decoder.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { discoverScenarioFiles, loadScenarioFile, type Scenario, type Step } from '../../host/conform/index.js';
import { disassembleText } from '../support/disassemble.js';

const SUITE = 'test/conformance';

/**
 * Every case of docs/msr-filter.md §7 and §4, docs/heki.md §8, the "Cases" tables of
 * docs/cr-filter.md, docs/register-intercepts.md and docs/memory-protection.md, and the rows of
 * docs/transitions.md's table.
 */
const TRANSITIONS = [
  'guest MOV to CR', 'guest LMSW', 'guest CLTS', 'guest LGDT / LIDT', 'guest kexec', 'host KVM_SET_SREGS', 'INIT', 'triple fault',
  'VM reset', 'snapshot', 'host KVM_SET_MSRS',
];
const CATALOGUE: readonly string[] = [
  ...Array.from({ length: 36 }, (_, i) => `msr-filter §7 #${i + 1}`),
  ...['msr_filter_allow', 'msr_filter_deny', 'msr_permission_bitmap', 'user_exit_msr_flags'].map((t) => `msr-filter §4 ${t}`),
  ...Array.from({ length: 14 }, (_, i) => `heki §8 #${i + 1}`),
  ...Array.from({ length: 13 }, (_, i) => `cr-filter #${i + 1}`),
  ...Array.from({ length: 14 }, (_, i) => `register-intercepts #${i + 1}`),
  ...TRANSITIONS.map((row) => `transitions ${row}`),
  ...Array.from({ length: 22 }, (_, i) => `memory #${i + 1}`),
];

/** The page each catalogue's cases come from: a scenario's source names it. */
const PAGES: Readonly<Record<string, string>> = {
  'msr-filter': 'docs/msr-filter.md §',
  heki: 'docs/heki.md §',
  'cr-filter': 'docs/cr-filter.md Cases',
  'register-intercepts': 'docs/register-intercepts.md Cases',
  transitions: 'docs/transitions.md',
  memory: 'docs/memory-protection.md Cases',
};

const files = discoverScenarioFiles([SUITE]);
const scenarios: Scenario[] = [];
const broken: string[] = [];
for (const file of files) {
  try {
    scenarios.push(loadScenarioFile(file));
  } catch (e) {
    broken.push((e as Error).message);
  }
}

/** The "Not applicable" table of the suite's README: case → reason. */
function notApplicable(): Map<string, string> {
  const readme = readFileSync(join(SUITE, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Not applicable'));
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| ((?:msr-filter §\d+|heki §\d+|cr-filter|register-intercepts|transitions) [^|]+?) \| ([^|]+) \|$/gm)) {
    rows.set(m[1]!, m[2]!.trim());
  }
  return rows;
}

function allSteps(steps: readonly Step[]): Step[] {
  return steps.flatMap((s) => [s, ...(s.kind === 'guest' ? allSteps(s.duringExit) : [])]);
}

test('every file in test/conformance is a valid scenario', (t) => {
  t.true(files.length >= 30, `${files.length} files`);
  t.deepEqual(broken, []);
});

test('the suite covers every catalogued case, or the README says why a case is not applicable', (t) => {
  const covered = new Set(scenarios.flatMap((s) => s.cases));
  const na = notApplicable();
  t.deepEqual([...na.keys()], ['msr-filter §7 #36', 'register-intercepts #14', 'transitions guest kexec']);
  for (const reason of na.values()) t.true(reason.length > 80, reason);
  t.deepEqual(CATALOGUE.filter((c) => !covered.has(c) && !na.has(c)), [], 'cases without a scenario');
  t.deepEqual([...na.keys()].filter((c) => covered.has(c)), [], 'cases both covered and not applicable');
  t.deepEqual([...covered].filter((c) => !CATALOGUE.includes(c)), [], 'cases that are not in the catalogue');
});

test('every scenario names its cases and a source in the specs', (t) => {
  for (const s of scenarios) {
    t.true(s.cases.length > 0, s.file);
    const page = PAGES[s.cases[0]!.split(' ')[0]!];
    t.truthy(page, `${s.file}: ${s.cases[0]}`);
    t.true(s.source.includes(page!), `${s.file}: ${s.source}`);
  }
});

test('every exec step\'s code is the instructions its asm names (iced-x86)', (t) => {
  let checked = 0;
  for (const s of scenarios) {
    const text = JSON.parse(readFileSync(s.file, 'utf8')) as { steps: unknown[] };
    const asmOf = (path: string): string[] | undefined => {
      let node: unknown = text;
      for (const key of path.split('/').slice(1)) node = (node as Record<string, unknown>)[key];
      return ((node as { guest: { asm?: string[] } }).guest).asm;
    };
    for (const step of allSteps(s.steps)) {
      if (step.kind !== 'guest' || step.action.op !== 'exec') continue;
      const asm = asmOf(step.path);
      t.truthy(asm, `${s.file}${step.path}: an exec step in the suite says what its code is`);
      t.deepEqual(disassembleText(step.action.code, 0x100000), asm, `${s.file}${step.path}`);
      checked++;
    }
  }
  t.true(checked >= 6);
});
