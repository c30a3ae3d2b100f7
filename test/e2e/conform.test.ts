/**
 * `pinbox conform` both ways: the whole suite in test/conformance in-process and against
 * `pinbox serve` in a child process (dist/cli.js, reached with the token it wrote to its token
 * file), with the same report; and the remote target's failure modes — a wrong token, no
 * server, the server gone mid-run, a scenario that fails (reported alike by both targets with
 * its file, step, expected and actual values).
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../protocol/index.js';
import { discoverScenarioFiles, remoteTarget, runSuite, type ScenarioResult } from '../../host/conform/index.js';
import { pinbox } from '../vmm/cli-support.js';
import { startCliServe, type CliServer } from './serve-cli.js';

const SUITE = 'test/conformance';

interface Reported {
  name: string;
  file: string;
  passed: boolean;
  steps: number;
  failures: { kind: string; step: number | null; path: string; expected?: unknown; actual?: unknown; message: string }[];
}

function lines(stdout: string): Reported[] {
  return stdout.trim().split('\n').map((l) => JSON.parse(l) as Reported);
}

function scenarioFiles(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'pbx-scenarios-'));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(content));
  return dir;
}

let server: CliServer;
test.before(async () => {
  server = await startCliServe();
});
test.after.always(async () => {
  await server?.stop();
});

/** As a user runs it: the token from the file serve wrote, so that it never sits in the process list. */
const remote = (...args: string[]) => pinbox(['conform', '--host', server.controlUrl, '--token-file', server.tokenFile, ...args]);

test('the whole suite passes in-process and against pinbox serve in a child process, with the same report', async (t) => {
  const files = discoverScenarioFiles([SUITE]);
  const local = await pinbox(['conform', '--reporter', 'json']);
  t.is(local.code, 0, local.err);
  const there = await remote('--reporter', 'json');
  t.is(there.code, 0, there.err);
  for (const run of [local, there]) {
    const reported = lines(run.out);
    t.deepEqual(reported.map((r) => r.file), files, 'every scenario of the suite, once');
    t.deepEqual(reported.filter((r) => !r.passed).map((r) => r.file), [], 'every scenario passed');
  }
  t.is(there.out, local.out, 'both targets report alike');
  // The steps during an exit ran while the server held the vCPU inside it.
  const held = server.trace().filter((e) => e.name === 'exit_held' || e.name === 'exit_released');
  t.deepEqual(
    held.map((e) => [e.name, e.fields.reason]),
    [
      ['exit_held', 'KVM_EXIT_PINBOX_CR_FILTER'], ['exit_released', 'KVM_EXIT_PINBOX_CR_FILTER'],
      ['exit_held', 'KVM_EXIT_HEKI_CONFIGURE'], ['exit_released', 'KVM_EXIT_HEKI_CONFIGURE'],
      ['exit_held', 'KVM_EXIT_X86_RDMSR'], ['exit_released', 'KVM_EXIT_X86_RDMSR'],
    ],
  );
});

test('from any folder, pinbox conform finds the suite that ships with pinbox (issue 11 #1)', async (t) => {
  const elsewhere = mkdtempSync(join(tmpdir(), 'pbx-elsewhere-'));
  const { stdout } = await promisify(execFile)(process.execPath, [join(process.cwd(), 'dist', 'cli.js'), 'conform', '--reporter', 'tap'], { cwd: elsewhere });
  const count = discoverScenarioFiles([SUITE]).length;
  t.regex(stdout, new RegExp(`^1\\.\\.${count}$`, 'm'));
  t.notRegex(stdout, /^not ok/m);
  const list = await promisify(execFile)(process.execPath, [join(process.cwd(), 'dist', 'cli.js'), 'conform', '--list'], { cwd: elsewhere });
  t.true(list.stdout.split('\n').filter((l) => l !== '').every((l) => l.startsWith(join(process.cwd(), SUITE) + '/')), 'named where they are, absolutely from another folder');
});

test('scenarios as users write them run alike on both targets: "ok" on guest steps, a bitmap longer than KVM takes reaching KVM', async (t) => {
  const dir = scenarioFiles({
    'users.json': {
      name: 'a range KVM refuses, and ok on guest steps',
      source: 'docs/msr-filter.md §7 #17 (nmsrs 0x3001 needs 1544 bytes > 0x600: EINVAL), §7 #2',
      steps: [
        { host: { setMsrFilter: { flags: ['DEFAULT_ALLOW'], ranges: [{ flags: ['READ'], base: 0, nmsrs: '0x3001', bitmap: 'ff*0x601' }] } }, expect: { errno: 'EINVAL' } },
        { guest: { op: 'rdmsr', index: '0xc0000080' }, expect: { ok: true, value: '0xd01' } },
        { guest: { op: 'rdmsr', index: '0xdeadbeef' }, expect: { ok: false } },
        { guest: { op: 'rdmsr', index: '0xdeadbeef' }, expect: { ok: true } },
      ],
    },
  });
  const local = await pinbox(['conform', '--reporter', 'json', dir]);
  const there = await remote('--reporter', 'json', dir);
  t.is(there.out, local.out, 'both targets report alike');
  // The last step is written wrong on purpose: an unknown MSR is #GP(0) without user-space exits (§7 #2).
  t.deepEqual(lines(there.out)[0]!.failures.map((f) => [f.step, f.path, f.expected, f.actual]), [[3, '/steps/3/expect/ok', true, false]]);
});

test('a scenario that fails is reported alike by both targets: file, step, path, expected and actual; exit code 1', async (t) => {
  const dir = scenarioFiles({
    'a-wrong-value.json': {
      name: 'EFER is not 0', source: 'test',
      steps: [{ guest: { op: 'rdmsr', index: '0xc0000080' }, expect: { value: '0x0' } }],
    },
    'b-no-exit-to-hold.json': {
      name: 'steps during an exit that never comes', source: 'test',
      steps: [
        { guest: { op: 'rdmsr', index: '0xc0000080' }, vmm: { duringExit: [{ host: { checkExtension: { cap: 'KVM_CAP_X86_USER_SPACE_MSR' } }, expect: { value: 1 } }] }, expect: { value: '0xd01' } },
        { host: { enableCap: { cap: 'KVM_CAP_X86_USER_SPACE_MSR', args: ['0x2'] } }, expect: { ok: true } },
        {
          note: 'an exit after the unspent hold: not held',
          guest: { op: 'rdmsr', index: '0xdeadbeef' }, vmm: { msr: { error: 0, data: '0x7' } },
          expect: { value: '0x7', exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'UNKNOWN', index: '0xdeadbeef', data: '0x0' } }] },
        },
      ],
    },
  });
  const local = await pinbox(['conform', '--reporter', 'json', dir]);
  const there = await remote('--reporter', 'json', dir);
  t.is(local.code, 1);
  t.is(there.code, 1);
  t.is(there.out, local.out);
  const [wrong, noExit] = lines(there.out);
  t.deepEqual(wrong!.failures, [{
    kind: 'mismatch', step: 0, path: '/steps/0/expect/value', expected: '0x0', actual: '0xd01',
    message: 'guest rdmsr 0xc0000080 on vCPU 0: value: expected 0x0, got 0xd01',
  }]);
  t.is(wrong!.file, join(dir, 'a-wrong-value.json'));
  t.like(noExit, { passed: false, steps: 3 });
  t.deepEqual(noExit!.failures.map((f) => [f.kind, f.step, f.path]), [['mismatch', 0, '/steps/0/vmm/duringExit']]);
  const pretty = await remote(dir);
  t.regex(pretty.out, /a-wrong-value\.json/);
  t.regex(pretty.out, /value: expected 0x0, got 0xd01/);
});

test('a wrong token, or no server at --host: the target cannot be reached, exit code 1', async (t) => {
  const wrong = await pinbox(['conform', '--host', server.controlUrl, '--token', 'not-the-token']);
  t.is(wrong.code, 1);
  t.is(wrong.err, 'pinbox conform: cannot reach the target: the control token is wrong\n');
  t.is(wrong.out, '');
  const nobody = await pinbox(['conform', '--host', `unix:${join(tmpdir(), 'pbx-nobody', 'control.sock')}`, '--token', 'T']);
  t.is(nobody.code, 1);
  t.regex(nobody.err, /^pinbox conform: cannot reach the target: .*ENOENT/);
});

test('the server gone mid-run: the scenario in progress fails naming the target, every later one fails at its VM, and the run ends', async (t) => {
  const dying = await startCliServe();
  const step = { guest: { op: 'clts' }, expect: { fault: null } };
  const dir = scenarioFiles(Object.fromEntries(['a', 'b', 'c'].map((n) => [`${n}.json`, { name: n, source: 'test', steps: [step] }])));
  let guestConnections = 0;
  // The second scenario's guest connection finds the server killed.
  const target = await remoteTarget({
    url: dying.controlUrl,
    token: dying.token,
    connect: async (url) => {
      if (url === dying.guestUrl && ++guestConnections === 2) await dying.kill();
      return connect(url);
    },
  });
  let results: ScenarioResult[];
  try {
    results = await runSuite(discoverScenarioFiles([dir]), target);
  } finally {
    await target.close();
    await dying.stop();
  }
  t.deepEqual(results.map((r) => r.passed), [true, false, false]);
  t.like(results[1]!.failures[0], { kind: 'error', step: 0, path: '/steps/0' });
  t.regex(results[1]!.failures[0]!.message, /^the target failed: guest clts on vCPU 0: /);
  t.like(results[2]!.failures[0], { kind: 'error', step: null, path: '/vm' });
  t.regex(results[2]!.failures[0]!.message, /connection (is )?closed/);
});
