import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseCommandLine } from '../../host/cli/args.js';
import { PINBOX } from '../../host/cli/commands.js';
import { conform, discoverScenarioFiles, type ConformOptions, type ScenarioTarget } from '../../host/conform/index.js';
import { conformOptions } from '../../host/cli/conform-hook.js';
import { scenarioWith } from './samples.js';
import { ScriptedTarget } from './scripted-target.js';

const PASSING = scenarioWith([{ guest: { op: 'clts' }, expect: { fault: null } }]);
const FAILING = { ...scenarioWith([{ guest: { op: 'rdmsr', index: 16 }, expect: { value: 1 } }]), name: 'fails', cases: ['msr-filter §7 #9'] };

function tree(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-conform-'));
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return dir;
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  targets: ScriptedTarget[];
  hosts: unknown[];
}

async function run(options: Partial<ConformOptions> & { paths: string[] }, target?: () => ScenarioTarget): Promise<Run> {
  const out: Run = { code: -1, stdout: '', stderr: '', targets: [], hosts: [] };
  out.code = await conform(
    { defaultPaths: [], reporter: 'json', list: false, ...options },
    { stdout: { write: (s) => (out.stdout += s) }, stderr: { write: (s) => (out.stderr += s) } },
    async (host) => {
      out.hosts.push(host);
      if (target !== undefined) return target();
      const t = new ScriptedTarget({ guest: () => ({ value: 0n, exits: [] }) });
      out.targets.push(t);
      return t;
    },
  );
  return out;
}

test('discovery: files as named, folders searched for *.json recursively and sorted, hidden entries skipped, each file once', (t) => {
  const dir = tree({
    'b.json': PASSING, 'a.json': PASSING, 'notes.md': 'x', 'sub/z.json': PASSING, 'sub/deeper/y.json': PASSING, '.hidden/x.json': PASSING, 'c.txt': PASSING,
  });
  t.deepEqual(discoverScenarioFiles([dir]), ['a.json', 'b.json', 'sub/deeper/y.json', 'sub/z.json'].map((f) => join(dir, f)));
  t.deepEqual(
    discoverScenarioFiles([join(dir, 'c.txt'), join(dir, 'sub'), join(dir, 'sub/z.json'), join(dir, 'missing.json')]),
    [join(dir, 'c.txt'), join(dir, 'sub/deeper/y.json'), join(dir, 'sub/z.json'), join(dir, 'missing.json')],
  );
});

test('exit code 0 only when every scenario passes; the target is closed after the run', async (t) => {
  const dir = tree({ 'a.json': PASSING, 'b.json': PASSING });
  const ok = await run({ paths: [dir] });
  t.is(ok.code, 0);
  t.is(ok.stdout.trim().split('\n').length, 2);
  t.true(ok.targets[0]!.closed);
  t.deepEqual(ok.hosts, [undefined]);

  const failing = await run({ paths: [tree({ 'a.json': PASSING, 'b.json': FAILING })] });
  t.is(failing.code, 1);
  t.deepEqual(failing.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { passed: boolean }).passed), [true, false]);
});

test('exit code 1 for a malformed scenario, which is reported while the others run', async (t) => {
  const r = await run({ paths: [tree({ 'a.json': '{', 'b.json': PASSING })] });
  t.is(r.code, 1);
  const [bad, good] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as { passed: boolean; failures: { kind: string }[] });
  t.like(bad, { passed: false, failures: [{ kind: 'malformed' }] });
  t.like(good, { passed: true });
});

test('exit code 1 when there is nothing to run, or the target cannot be reached', async (t) => {
  const empty = tree({ 'readme.md': 'x' });
  const none = await run({ paths: [empty] });
  t.is(none.code, 1);
  t.is(none.stderr, `pinbox conform: no scenario files in ${empty}\n`);
  t.deepEqual(none.hosts, []);

  const unreachable = await run({ paths: [tree({ 'a.json': PASSING })] }, () => {
    throw new Error('connect ECONNREFUSED 127.0.0.1:7001');
  });
  t.is(unreachable.code, 1);
  t.is(unreachable.stderr, 'pinbox conform: cannot reach the target: connect ECONNREFUSED 127.0.0.1:7001\n');
});

test('without FILES or DIRS the default paths run; the host endpoint and token reach the target factory', async (t) => {
  const dir = tree({ 'a.json': PASSING });
  const host = { endpoint: { kind: 'tcp' as const, host: '127.0.0.1', port: 7001 }, token: 'T' };
  const r = await run({ paths: [], defaultPaths: [dir], host });
  t.is(r.code, 0);
  t.deepEqual(r.hosts, [host]);
});

test('--list names each scenario and its cases without reaching a target; malformed files make it fail', async (t) => {
  const dir = tree({ 'a.json': PASSING, 'b.json': FAILING });
  const text = await run({ paths: [dir], list: true, reporter: 'pretty' });
  t.is(text.code, 0);
  t.is(text.stdout, `${join(dir, 'a.json')}: sample\n${join(dir, 'b.json')}: fails [msr-filter §7 #9]\n`);
  t.deepEqual(text.hosts, []);

  const json = await run({ paths: [dir], list: true, reporter: 'json' });
  t.deepEqual(json.stdout.trim().split('\n').map((l) => JSON.parse(l)), [
    { name: 'sample', file: join(dir, 'a.json'), cases: [], steps: 1 },
    { name: 'fails', file: join(dir, 'b.json'), cases: ['msr-filter §7 #9'], steps: 1 },
  ]);

  const broken = await run({ paths: [tree({ 'a.json': PASSING, 'x.json': { name: 'x' } })], list: true });
  t.is(broken.code, 1);
  t.regex(broken.stderr, /x\.json: invalid scenario, 2 problems:\n {2}\/source: is required\n {2}\/steps: is required\n$/);
});

test('conformOptions reads a parsed `pinbox conform` command line', (t) => {
  const dir = tree({ 'a.json': PASSING });
  const line = parseCommandLine(['conform', dir, '--reporter', 'tap', '--list', '--host', 'tcp:127.0.0.1:7001', '--token', 'T'], PINBOX);
  if (line.kind !== 'command') throw new Error(line.kind);
  t.deepEqual(conformOptions(line.parsed, ['test/conformance']), {
    paths: [dir], defaultPaths: ['test/conformance'], reporter: 'tap', list: true,
    host: { endpoint: { kind: 'tcp', host: '127.0.0.1', port: 7001 }, token: 'T' },
  });
  const bare = parseCommandLine(['conform'], PINBOX);
  if (bare.kind !== 'command') throw new Error(bare.kind);
  t.deepEqual(conformOptions(bare.parsed, []), { paths: [], defaultPaths: [], reporter: 'pretty', list: false });
});
