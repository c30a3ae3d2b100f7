/**
 * "Unsupported on this host", the third outcome beside passed and failed: decided before a
 * scenario runs (what it needs and the target's host lacks), or by the host refusing a step with
 * host_unsupported. Never counted as passed, shown in every reporter (pretty SKIP, TAP `# SKIP`,
 * JSON `unsupported`, JUnit `<skipped>`), and a run in which nothing could run does not exit 0.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BackendHost } from '../../host/kvm/api/backend.js';
import {
  conform, createReporter, junitXml, parseScenario, runScenario, summarise, type ReporterName, type Scenario, type ScenarioResult,
} from '../../host/conform/index.js';
import { ProtocolError } from '../../protocol/errors.js';
import { scenarioWith } from './samples.js';
import { ScriptedTarget } from './scripted-target.js';
import { parseXml } from './xml-well-formed.js';

const REAL: BackendHost = { backend: 'kvm', summary: 'Linux 6.18.44-test, kvm_pvm, KVM API 12', kernel: '6.18.44-test', vendorModules: ['kvm_pvm'] };
const WHY = 'it needs Heki (v2), and this host has none: the version query never completed';

const PASSED: ScenarioResult = { name: 'plain', file: 'a/plain.json', passed: true, steps: 1, failures: [], durationMs: 1 };
const SKIPPED: ScenarioResult = { name: 'heki # pins', file: 'a/heki.json', passed: false, unsupported: WHY, steps: 0, failures: [], durationMs: 0 };
const FAILED: ScenarioResult = {
  name: 'fails', file: 'a/fails.json', passed: false, steps: 1, durationMs: 1,
  failures: [{ kind: 'mismatch', step: 0, path: '/steps/0/expect/value', expected: '0x1', actual: '0x0', message: 'value: expected 0x1, got 0x0' }],
};
const RESULTS = [PASSED, SKIPPED, FAILED];

function report(name: ReporterName, host?: BackendHost): string {
  let out = '';
  const reporter = createReporter(name, { write: (s) => (out += s) });
  reporter.start?.(RESULTS.length, host);
  for (const r of RESULTS) reporter.scenarioFinished?.(r);
  reporter.finish(RESULTS);
  return out;
}

test('summarise counts the three outcomes apart: unsupported is neither passed nor failed', (t) => {
  t.deepEqual(summarise(RESULTS), { passed: 1, failed: 1, unsupported: 1, total: 3 });
});

test('pretty: SKIP with the reason under it, the count in the summary, and the real host named first', (t) => {
  const out = report('pretty', REAL);
  t.true(out.startsWith('pinbox conform on real KVM: Linux 6.18.44-test, kvm_pvm, KVM API 12\n'));
  t.regex(out, /\nSKIP {2}heki # pins {2}\(a\/heki\.json\)\n {6}unsupported on this host: it needs Heki \(v2\)/);
  t.regex(out, /3 scenarios: 1 passed, 1 failed, 1 unsupported on this host/);
  t.notRegex(report('pretty'), /real KVM/, 'the model is not announced: reports on it stay as they were');
});

test('tap: "ok N - name # SKIP reason" (a directive, not a pass), and the host as a comment', (t) => {
  const out = report('tap', REAL);
  t.regex(out, /^TAP version 13\n1\.\.3\n# real KVM: Linux 6\.18\.44-test/);
  t.regex(out, /\nok 2 - heki \\# pins # SKIP unsupported on this host: it needs Heki \(v2\), and this host has none/);
  t.regex(out, /\nnot ok 3 - fails\n/);
});

test('json: `unsupported` with the reason, `passed` false; `host` on real KVM only', (t) => {
  const [plain, skipped] = report('json', REAL).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(skipped, { name: 'heki # pins', passed: false, unsupported: WHY, host: REAL.summary });
  t.false('unsupported' in plain!);
  t.false('host' in (JSON.parse(report('json').split('\n')[0]!) as object));
});

test('junit: <skipped message="unsupported on this host: …"> in its testcase, counted in skipped, the host as a property', (t) => {
  const xml = junitXml(RESULTS, 'pinbox conform', REAL);
  const root = parseXml(xml);
  const suite = root.children.find((c) => c.name === 'testsuite')!;
  t.is(suite.attributes.skipped, '1');
  t.is(suite.attributes.failures, '1');
  t.is(suite.attributes.tests, '3');
  const property = suite.children.find((c) => c.name === 'properties')!.children[0]!;
  t.deepEqual([property.attributes.name, property.attributes.value], ['host', REAL.summary]);
  const skippedCase = suite.children.find((c) => c.name === 'testcase' && c.attributes.file === 'a/heki.json')!;
  t.is(skippedCase.children[0]!.name, 'skipped');
  t.is(skippedCase.children[0]!.attributes.message, `unsupported on this host: ${WHY}`);
});

/** A scenario parsed from a document, as the runner gets it. */
function scenario(steps: unknown[]): Scenario {
  return parseScenario(scenarioWith(steps), 'x.json');
}

test('runner: a target\'s unsupported() answer is the result, and no VM is made', async (t) => {
  const target = Object.assign(new ScriptedTarget(), { unsupported: async () => WHY });
  const r = await runScenario(scenario([{ guest: { op: 'clts' }, expect: { fault: null } }]), target);
  t.like(r, { passed: false, unsupported: WHY, steps: 0, failures: [] });
  t.deepEqual(target.calls, []);
});

test('runner: a step the host refuses as host_unsupported makes the scenario unsupported — unless a step before it failed', async (t) => {
  const refusing = () => new ScriptedTarget({
    guest: (request) => {
      if (request.action.op === 'hypercall') throw new ProtocolError('host_unsupported', 'the host cannot complete hypercalls');
      return { exits: [] };
    },
  });
  const steps = [{ guest: { op: 'clts' }, expect: { fault: null } }, { guest: { op: 'hypercall', nr: 13 }, expect: { ret: 0 } }];
  const r = await runScenario(scenario(steps), refusing());
  t.like(r, { passed: false, steps: 2, failures: [] });
  t.regex(r.unsupported ?? '', /^step 1: guest hypercall 0xd on vCPU 0: the host cannot complete hypercalls/);

  const failedFirst = await runScenario(scenario([{ guest: { op: 'clts' }, expect: { fault: { vector: 13, errorCode: 0 } } }, steps[1]]), refusing());
  t.is(failedFirst.unsupported, undefined);
  t.deepEqual(failedFirst.failures.map((f) => f.kind), ['mismatch', 'error']);
});

test('conform: a run in which every scenario is unsupported exits 1 and says nothing could run; with one that passed, 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-unsupported-'));
  writeFileSync(join(dir, 'a.json'), JSON.stringify(scenarioWith([{ guest: { op: 'clts' }, expect: { fault: null } }])));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ ...scenarioWith([{ guest: { op: 'lmsw', value: 1 }, expect: { fault: null } }]), name: 'lmsw' }));
  const run = async (lacking: (s: Scenario) => string | undefined) => {
    let err = '';
    const code = await conform(
      { paths: [dir], defaultPaths: [], reporter: 'json', list: false },
      { stdout: { write: () => {} }, stderr: { write: (s) => void (err += s) } },
      async () => Object.assign(new ScriptedTarget(), { unsupported: async (s: Scenario) => lacking(s) }),
    );
    return { code, err };
  };
  const none = await run(() => WHY);
  t.is(none.code, 1);
  t.regex(none.err, /no scenario could run on this host/);
  t.is((await run((s) => (s.name === 'lmsw' ? WHY : undefined))).code, 0);
});
