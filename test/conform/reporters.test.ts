import test from 'ava';
import { createReporter, jsonLine, junitXml, type ReporterName, type ScenarioResult } from '../../host/conform/index.js';
import { parseXml, type XmlElement } from './xml-well-formed.js';

const PASSED: ScenarioResult = { name: 'filter allows', file: 'a/allow.json', passed: true, steps: 3, failures: [], durationMs: 12 };
const MISMATCH: ScenarioResult = {
  name: 'deny <read> & "write" it\'s #1',
  file: 'a/deny.json',
  passed: false,
  steps: 4,
  failures: [
    { kind: 'mismatch', step: 2, path: '/steps/2/expect/value', expected: '0x6', actual: '0x5', message: 'guest rdmsr 0xda0 on vCPU 0: value: expected 0x6, got 0x5' },
    { kind: 'mismatch', step: 3, path: '/steps/3/expect/exits', expected: [], actual: [{ reason: 'KVM_EXIT_X86_RDMSR' }], message: 'exits: expected 0, got 1:\nsee <this> & \u0001 \ud800' },
  ],
  durationMs: 3,
};
const MALFORMED: ScenarioResult = {
  name: 'broken.json',
  file: 'b/broken.json',
  passed: false,
  steps: 0,
  failures: [{ kind: 'malformed', step: 0, path: '/steps/0/guest/index', message: '/steps/0/guest/index: is required' }],
  durationMs: 0,
};
const RESULTS = [PASSED, MISMATCH, MALFORMED];

/** Runs a reporter over RESULTS as the runner would, collecting what it writes. */
function report(name: ReporterName, isTTY = false): string {
  let out = '';
  const reporter = createReporter(name, { write: (s) => (out += s), isTTY });
  reporter.start?.(RESULTS.length);
  RESULTS.forEach((r, i) => {
    reporter.scenarioStarted?.(i, r.file);
    reporter.scenarioFinished?.(r);
  });
  reporter.finish(RESULTS);
  return out;
}

test('json: one object per line, with exactly name, file, passed, steps and failures', (t) => {
  const lines = report('json').split('\n');
  t.is(lines.pop(), '');
  t.is(lines.length, 3);
  const objects = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const o of objects) t.deepEqual(Object.keys(o), ['name', 'file', 'passed', 'steps', 'failures']);
  t.deepEqual(objects[0], { name: 'filter allows', file: 'a/allow.json', passed: true, steps: 3, failures: [] });
  t.deepEqual(objects[1]!.failures, JSON.parse(JSON.stringify(MISMATCH.failures)));
  t.deepEqual(objects[2], { name: 'broken.json', file: 'b/broken.json', passed: false, steps: 0, failures: [{ kind: 'malformed', step: 0, path: '/steps/0/guest/index', message: '/steps/0/guest/index: is required' }] });
  t.is(jsonLine(PASSED), lines[0] + '\n');
});

function only(parent: XmlElement, name: string): XmlElement {
  const found = parent.children.filter((c) => c.name === name);
  if (found.length !== 1) throw new Error(`${found.length} <${name}> in <${parent.name}>`);
  return found[0]!;
}

test('junit: well-formed XML, counts, a testcase per scenario, failure or error by kind, everything escaped', (t) => {
  const xml = report('junit');
  t.is(xml, junitXml(RESULTS));
  const root = parseXml(xml);
  t.is(root.name, 'testsuites');
  t.like(root.attributes, { name: 'pinbox conform', tests: '3', failures: '1', errors: '1', time: '0.015' });
  const suite = only(root, 'testsuite');
  t.like(suite.attributes, { tests: '3', failures: '1', errors: '1', skipped: '0' });
  const [a, b, c] = suite.children;
  t.deepEqual(a, { name: 'testcase', attributes: { name: 'filter allows', classname: 'a/allow.json', file: 'a/allow.json', time: '0.012' }, children: [], text: '' });
  t.is(b!.attributes.name, MISMATCH.name);
  const failure = only(b!, 'failure');
  t.is(failure.attributes.type, 'mismatch');
  t.is(failure.attributes.message, 'guest rdmsr 0xda0 on vCPU 0: value: expected 0x6, got 0x5');
  t.true(failure.text.includes('/steps/2/expect/value: guest rdmsr 0xda0 on vCPU 0: value: expected 0x6, got 0x5\n  expected: "0x6"\n  actual: "0x5"'));
  // The line break of the message is folded; the characters XML cannot hold are replaced.
  t.true(failure.text.includes('/steps/3/expect/exits: exits: expected 0, got 1: see <this> & \ufffd \ufffd'), failure.text);
  const error = only(c!, 'error');
  t.like(error.attributes, { type: 'malformed', message: '/steps/0/guest/index: is required' });
});

test('junit: an empty run is still a valid document', (t) => {
  const root = parseXml(junitXml([]));
  t.like(root.attributes, { tests: '0', failures: '0', errors: '0' });
  t.is(only(root, 'testsuite').children.length, 0);
});

test('tap: version, plan, a line per scenario with # escaped, a YAML block for failures', (t) => {
  const lines = report('tap').split('\n');
  t.deepEqual(lines.slice(0, 4), ['TAP version 13', '1..3', 'ok 1 - filter allows', 'not ok 2 - deny <read> & "write" it\'s \\#1']);
  t.is(lines[4], '  ---');
  const block = lines.slice(5, lines.indexOf('  ...'));
  t.deepEqual(block.slice(0, 3), ['  file: "a/deny.json"', '  steps: 4', '  failures:']);
  const values = block.filter((l) => /^ +(- )?[a-z]+: /.test(l)).map((l) => l.replace(/^ +(- )?[a-z]+: /, ''));
  for (const v of values) t.notThrows(() => JSON.parse(v), v); // each value is a JSON (and so YAML) scalar
  t.true(block.includes('      message: "exits: expected 0, got 1: see <this> & \\u0001 \\ud800"'));
  t.true(block.includes('      actual: [{"reason":"KVM_EXIT_X86_RDMSR"}]'));
  t.true(lines.includes('not ok 3 - broken.json'));
  t.is(lines.filter((l) => /^(not )?ok /.test(l)).length, 3);
});

test('pretty: PASS/FAIL lines with failures under them and a summary; no control codes off a terminal', (t) => {
  const out = report('pretty');
  t.false(out.includes('\x1b'));
  t.false(out.includes('\r'));
  t.true(out.startsWith('PASS  filter allows  (a/allow.json)\nFAIL  deny <read> & "write" it\'s #1  (a/deny.json)\n      step 2: guest rdmsr 0xda0 on vCPU 0: value: expected 0x6, got 0x5\n        at /steps/2/expect/value\n'));
  t.true(out.endsWith('\n3 scenarios: 1 passed, 2 failed (15 ms)\n'));
});

test('pretty: on a terminal, a progress line per scenario, cleared before each result', (t) => {
  const out = report('pretty', true);
  t.true(out.startsWith('\r\x1b[2K[1/3] a/allow.json\r\x1b[2KPASS  filter allows'));
  t.true(out.includes('\r\x1b[2K[3/3] b/broken.json\r\x1b[2KFAIL  broken.json'));
  t.is(out.split('\r\x1b[2K[').length - 1, 3);
});
