/**
 * `--backend model|kvm` on `pinbox run`, `serve`, `demo` and `conform`, and `conform --diff`
 * (docs/real-kvm.md §5, §7, §8): each command on each backend where it can be had (the `[kvm]`
 * tests are "not run: why" todos where /dev/kvm is not usable), and the mistakes a user can make.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { backendTest, HEKI_V2, realBackend } from '../support/backends.js';
import { connectWhenUp, pinbox } from './cli-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-backend-'));
const policy = join(dir, 'policy.json');
writeFileSync(policy, JSON.stringify({ name: 'cli' }));
const HELLO_ELF = 'test/fixtures/images/hello.elf';
const DEFAULT_ACTION = 'test/conformance/msr-filter/default-action.json';
const VERSION_QUERY = 'test/conformance/heki/version-query.json';
const INVAL_EXIT = 'test/conformance/msr-filter/inval-exit.json';

await backendTest('run --backend boots the gcc-built hello.elf and halts with RAX = 0x7b0, RBX = 0x150, RCX = 3 (hello.c)', async (t, b) => {
  const r = await pinbox(['run', '--backend', b.name, '--policy', policy, '--image', HELLO_ELF]);
  t.is(r.code, 0, r.err);
  t.regex(r.out, /stopped: the program executed HLT/);
  t.regex(r.out, /rax 00000000000007b0\s+rbx 0000000000000150\s+rcx 0000000000000003/);
});

await backendTest('serve --backend: the console names the KVM, and a guest runs on it', async (t, b) => {
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const sock = join(dir, `serve-${b.name}.sock`);
  const running = pinbox(['serve', '--backend', b.name, '--listen', `unix:${sock}`, '--policy', policy], () => stopped);
  const guest = await connectWhenUp(`unix:${sock}`, 250);
  t.is(await guest.rdmsr(0xc0000080), 0xd01n, 'EFER after boot: SCE|LME|LMA|NXE');
  guest.close();
  stop();
  const r = await running;
  t.is(r.code, 0, r.err);
  t.regex(r.out, b.name === 'kvm' ? /\n {2}KVM {17}Linux \S+, .*KVM API \d+\n/ : /\n {2}KVM {17}pinbox's KVM model/);
});

await backendTest('conform --backend: an MSR-filter scenario passes, and the JSON report names the host', async (t, b) => {
  const r = await pinbox(['conform', '--backend', b.name, '--reporter', 'json', DEFAULT_ACTION]);
  t.is(r.code, 0, r.out + r.err);
  const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
  t.like(lines[0], { passed: true, file: DEFAULT_ACTION });
  if (b.name === 'kvm') t.regex(String(lines[0]!.host), /^Linux \S+, .*KVM API \d+$/);
  else t.false('host' in lines[0]!, 'a run on the model names no host');
});

await backendTest('conform --backend: a Heki scenario passes where the host has Heki', async (t, b) => {
  const r = await pinbox(['conform', '--backend', b.name, VERSION_QUERY]);
  t.is(r.code, 0, r.out + r.err);
  t.regex(r.out, /PASS {2}the version query returns 1/);
}, { needs: HEKI_V2 });

if (realBackend !== undefined && !realBackend.support.heki.v2.present) {
  test('conform --backend kvm on a host without Heki: a Heki scenario is SKIP, unsupported with the reason, and a run of it alone exits 1 [kvm]', async (t) => {
    const r = await pinbox(['conform', '--backend', 'kvm', VERSION_QUERY]);
    t.is(r.code, 1);
    t.regex(r.out, /SKIP {2}the version query returns 1[^\n]*\n {6}unsupported on this host: it needs /);
    t.regex(r.out, /1 scenario: 0 passed, 0 failed, 1 unsupported on this host|1 scenarios?: .*1 unsupported/);
    t.regex(r.err, /no scenario could run on this host/);
  });
} else {
  test.todo('conform --backend kvm on a host without Heki: a Heki scenario is unsupported [kvm] — not run: ' + (realBackend === undefined ? 'no usable /dev/kvm here' : 'this host has Heki'));
}

test('conform: --diff goes alone (not with --host or --backend), and --backend not with --host: exit 2', async (t) => {
  for (const argv of [['--diff', '--backend', 'kvm'], ['--diff', '--host', 'tcp:1', '--token', 'x'], ['--backend', 'model', '--host', 'tcp:1', '--token', 'x']]) {
    const r = await pinbox(['conform', ...argv, DEFAULT_ACTION]);
    t.is(r.code, 2, argv.join(' '));
    t.regex(r.err, /pinbox conform: --\w+ and --\w+ cannot be given together/);
  }
  const backend = await pinbox(['run', '--backend', 'qemu', '--policy', policy, '--image', HELLO_ELF]);
  t.is(backend.code, 2);
  t.regex(backend.err, /--backend/);
});

if (realBackend !== undefined) {
  test('conform --diff: a scenario both KVMs agree on is AGREE; this host\'s documented quirks are labelled; exit 0 [kvm]', async (t) => {
    const agree = await pinbox(['conform', '--diff', DEFAULT_ACTION]);
    t.is(agree.code, 0, agree.out + agree.err);
    t.regex(agree.out, /^pinbox conform --diff: the KVM model against real KVM on Linux /);
    t.regex(agree.out, /AGREE {4}the default action decides/);
    t.regex(agree.out, /1 scenarios?: 1 agree/);
    const json = await pinbox(['conform', '--diff', '--reporter', 'json', INVAL_EXIT]);
    const lines = json.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const summary = lines.at(-1)!;
    if (realBackend!.quirk('pvm-pat-unchecked')) {
      t.is(json.code, 0, json.out + json.err);
      t.like(lines[0], { outcome: 'diverge' });
      t.true((lines[0].divergences as { known?: { id: string } }[]).every((d) => d.known?.id === 'pvm-pat-unchecked'));
    } else {
      t.like(lines[0], { outcome: 'agree' });
    }
    t.truthy(summary.summary);
  });
} else {
  test.todo('conform --diff on this machine [kvm] — not run: no usable /dev/kvm here');
}

await backendTest('run --backend: a program that never halts is stopped, by the budget on the model and by the deadline on real KVM; --budget is the model\'s only', async (t, b) => {
  const loop = join(dir, 'loop.bin');
  writeFileSync(loop, Uint8Array.of(0xeb, 0xfe)); // jmp $
  if (b.name === 'model') {
    const r = await pinbox(['run', '--policy', policy, '--image', loop, '--budget', '1000']);
    t.is(r.code, 1, r.err);
    t.regex(r.out, /stopped: the instruction budget ran out \(RIP 0x100000; --budget raises it\)/);
  } else {
    const refused = await pinbox(['run', '--backend', 'kvm', '--policy', policy, '--image', loop, '--budget', '1000']);
    t.is(refused.code, 2);
    t.regex(refused.err, /pinbox run: --budget counts guest instructions, which only the model does/);
    const r = await pinbox(['run', '--backend', 'kvm', '--policy', policy, '--image', loop]);
    t.is(r.code, 1, r.err);
    t.regex(r.out, /stopped: the run's deadline passed \(RIP 0x100000; real KVM counts no instructions\)/);
  }
});
