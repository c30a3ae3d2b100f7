/**
 * `pinbox conform --diff` (host/conform/diff.ts): each scenario on two targets, every step where
 * they did different things with both results side by side, the project's explanation where it
 * has one (known-divergences.ts), and reports that name the host.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendHost } from '../../host/kvm/api/backend.js';
import {
  conform, createDiffReporter, diffSuite, knownDivergences, summariseDiff, type GuestOutcome, type ScenarioTarget,
} from '../../host/conform/index.js';
import { scenarioWith } from './samples.js';
import { ScriptedTarget, type Script } from './scripted-target.js';

const PVM: BackendHost = { backend: 'kvm', summary: 'Linux 6.18.44-test, kvm_pvm, KVM API 12', vendorModules: ['kvm_pvm'] };
const INTEL: BackendHost = { backend: 'kvm', summary: 'Linux 6.19, kvm_intel, KVM API 12', vendorModules: ['kvm_intel'] };
const GP0 = { vector: 13, errorCode: 0 };

const PAT = { guest: { op: 'wrmsr', index: '0x277', value: '0x2' }, expect: { fault: GP0, exits: [] } };
const EFER = { guest: { op: 'rdmsr', index: '0xc0000080' }, expect: { value: '0xd01' } };
const CLTS = { guest: { op: 'clts' }, expect: { fault: null } };

function files(docs: Record<string, unknown>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-diff-'));
  return Object.entries(docs).map(([name, doc]) => {
    writeFileSync(join(dir, name), JSON.stringify(doc));
    return join(dir, name);
  });
}

/** The model: PAT type 2 faults, EFER reads 0xd01. */
const modelScript: Script = {
  guest: (r): GuestOutcome => (r.action.op === 'wrmsr' ? { fault: { vector: 13, errorCode: 0 }, exits: [] } : { value: 0xd01n, exits: [] }),
};
/** A host that takes PAT type 2, and reads EFER as 0xd00. */
const hostScript: Script = {
  guest: (r): GuestOutcome => (r.action.op === 'wrmsr' ? { exits: [] } : { value: 0xd00n, exits: [] }),
};

function targets(host: BackendHost, unsupported?: (name: string) => string | undefined): { model: ScenarioTarget; kvm: ScenarioTarget } {
  return {
    model: new ScriptedTarget(modelScript),
    kvm: Object.assign(new ScriptedTarget(hostScript), { host, ...(unsupported && { unsupported: async (s: { name: string }) => unsupported(s.name) }) }),
  };
}

const SUITE = {
  'a-agree.json': { ...scenarioWith([CLTS]), name: 'agree' },
  'b-pat.json': { ...scenarioWith([CLTS, PAT]), name: 'pat' },
  'c-efer.json': { ...scenarioWith([EFER]), name: 'efer' },
  'd-heki.json': { ...scenarioWith([CLTS]), name: 'heki' },
};

test('each step both ran and did differently, both results side by side, which matched the expectation, and the explanation', async (t) => {
  const diffs = await diffSuite(files(SUITE), targets(PVM, (n) => (n === 'heki' ? 'it needs Heki' : undefined)));
  t.deepEqual(diffs.map((d) => [d.name, d.outcome]), [['agree', 'agree'], ['pat', 'diverge'], ['efer', 'diverge'], ['heki', 'unsupported']]);
  const [pat] = diffs[1]!.divergences;
  t.like(pat, {
    step: 1, path: '/steps/1', action: 'guest wrmsr 0x277 on vCPU 0',
    model: { fault: '#GP(0)', exits: [] }, kvm: { fault: null, exits: [] }, matched: { model: true, kvm: false },
    known: { id: 'pvm-pat-unchecked', kind: 'host-quirk' },
  });
  t.is(diffs[1]!.divergences.length, 1, 'the CLTS both did alike is not listed');
  const [efer] = diffs[2]!.divergences;
  t.like(efer, { model: { fault: null, value: '0xd01' }, kvm: { fault: null, value: '0xd00' }, matched: { model: true, kvm: false } });
  t.is(efer!.known, undefined, 'unexplained');
  t.is(diffs[3]!.unsupported, 'it needs Heki');
  t.deepEqual(summariseDiff(diffs), { agree: 1, unsupported: 1, diverge: 2, malformed: 0, steps: 2, explained: 1, total: 4 });
});

test('a host quirk explains a divergence only on the hosts it is documented for', async (t) => {
  const diffs = await diffSuite(files({ 'pat.json': scenarioWith([PAT]) }), targets(INTEL));
  t.is(diffs[0]!.divergences[0]!.known, undefined, 'PAT on kvm_intel would be a bug to look into');
});

test('a VM one target could not make is one divergence at /vm, not one per step', async (t) => {
  const broken = Object.assign(new ScriptedTarget({ createVm: () => { throw new Error('KVM_CREATE_VM: EINVAL'); } }), { host: PVM });
  const diffs = await diffSuite(files({ 'x.json': scenarioWith([CLTS, EFER]) }), { model: new ScriptedTarget(modelScript), kvm: broken });
  t.like(diffs[0], { outcome: 'diverge', kvm: 'failed', model: 'passed' });
  t.is(diffs[0]!.divergences.length, 1);
  const [vm] = diffs[0]!.divergences;
  t.like(vm, { step: null, path: '/vm', model: { ok: true }, matched: { model: true, kvm: false } });
  t.regex(String((vm!.kvm as { error: string }).error), /KVM_CREATE_VM: EINVAL/);
});

test('reporters: pretty puts the two results side by side and names the host; json has a line per scenario and a summary', async (t) => {
  const paths = files(SUITE);
  const render = async (name: 'pretty' | 'json') => {
    let out = '';
    const reporter = createDiffReporter(name, { write: (s) => void (out += s) });
    reporter.finish(await diffSuite(paths, targets(PVM, (n) => (n === 'heki' ? 'it needs Heki' : undefined)), reporter));
    return out;
  };
  const pretty = await render('pretty');
  t.true(pretty.startsWith('pinbox conform --diff: the KVM model against real KVM on Linux 6.18.44-test, kvm_pvm, KVM API 12\n'));
  t.regex(pretty, /DIVERGE {2}pat .*\n {8}step 1: guest wrmsr 0x277 on vCPU 0 {2}\(\/steps\/1\)\n {10}model: \{"fault":"#GP\(0\)","exits":\[\]\} {3}\(as the scenario expects\)\n {10}kvm: {3}\{"fault":null,"exits":\[\]\}\n {10}host quirk: WRMSR to IA32_PAT/);
  t.regex(pretty, /UNEXPLAINED: fix the model, or document the host quirk or model decision/);
  t.regex(pretty, /SKIP {5}heki .*\n {8}unsupported on this host: it needs Heki/);
  t.regex(pretty, /4 scenarios: 1 agree, 1 unsupported on this host, 2 diverge \(2 divergent steps: 1 explained, 1 unexplained\)/);
  const lines = (await render('json')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.is(lines.length, 5);
  t.like(lines[1], { name: 'pat', outcome: 'diverge', model: 'passed', kvm: 'failed', host: PVM.summary });
  t.like(lines[4], { summary: { agree: 1, unsupported: 1, diverge: 2, steps: 2, explained: 1, total: 4 }, host: PVM.summary });
});

test('conform --diff: exit 0 only when every divergence is explained; 2 for a reporter it cannot use', async (t) => {
  const run = async (docs: Record<string, unknown>, reporter: 'pretty' | 'tap' = 'pretty') => {
    let err = '';
    const code = await conform(
      { paths: files(docs), defaultPaths: [], reporter, list: false, diff: true },
      { stdout: { write: () => {} }, stderr: { write: (s) => void (err += s) } },
      async (_host, backend) => (backend === 'model' ? new ScriptedTarget(modelScript) : Object.assign(new ScriptedTarget(hostScript), { host: PVM })),
    );
    return { code, err };
  };
  t.is((await run({ 'pat.json': scenarioWith([PAT]) })).code, 0);
  t.is((await run({ 'efer.json': scenarioWith([EFER]) })).code, 1);
  const tap = await run({ 'pat.json': scenarioWith([PAT]) }, 'tap');
  t.is(tap.code, 2);
  t.regex(tap.err, /--diff reports as pretty or json, not tap/);
});

test('every known divergence points at a section of the documentation that exists', (t) => {
  for (const k of knownDivergences()) {
    const [file, anchor] = k.doc.split('#');
    t.true(existsSync(file!), `${k.id}: ${file}`);
    const anchors = readFileSync(file!, 'utf8').split('\n').filter((l) => /^#{1,6} /.test(l))
      .map((l) => l.replace(/^#+ /, '').trim().toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-'));
    t.true(anchors.includes(anchor!), `${k.id}: #${anchor} in ${file}`);
  }
});
