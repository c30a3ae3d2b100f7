/**
 * `pinbox probe` and probeKvm(): on this machine, and the one-line answers for what can stand
 * in the way (no device, not a KVM device, no permission, no FFI package), each made real: a
 * missing path, /dev/null, the command run as user nobody (root-only /dev/kvm), the command
 * run from a copy of the build whose node_modules lacks koffi (where everything else works).
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, cpSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { probeKvm } from '../../host/kvm/real/index.js';
import { pinboxMain } from '../../host/cli/main.js';
import { real, realTest } from './real-guest.js';

const PINBOX = resolve('build/test/e2e/fixtures/pinbox.js');
const linuxX64 = process.platform === 'linux' && process.arch === 'x64';

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await pinboxMain(args, { out: (s) => void (out += s), err: (s) => void (err += s) }, { untilStopped: () => new Promise(() => {}) });
  return { code, out, err };
}

realTest('on this machine the probe finds KVM usable, with its vendor module, API version and capabilities', async (t) => {
  const p = await probeKvm();
  t.is(p.verdict, 'usable');
  t.is(p.apiVersion, 12);
  t.true(p.vendorModules.some((m) => /^kvm_(intel|amd|pvm)/.test(m)), p.vendorModules.join(','));
  const cap = (name: string): number | undefined => p.capabilities.find((c) => c.name === name)?.value;
  t.is(cap('KVM_CAP_X86_USER_SPACE_MSR'), 1);
  t.is(cap('KVM_CAP_X86_MSR_FILTER'), 1);
  t.true(p.ffi.loaded);
  t.deepEqual(p.hekiNumbers.map((h) => h.cap), [235, 236, 237]);
  const human = await cli(['probe']);
  t.is(human.code, 0);
  t.regex(human.out, /^pinbox probe: real KVM is usable: API 12, kvm_/);
  t.regex(human.out, /KVM_CAP_X86_USER_SPACE_MSR\s+188\s+1\n/);
  const json = await cli(['probe', '--json']);
  t.is(json.code, 0);
  t.like(JSON.parse(json.out), { verdict: 'usable', apiVersion: 12 });
});

if (!linuxX64) {
  test('off x86-64 Linux the probe says so in one line', async (t) => {
    const p = await probeKvm();
    t.is(p.verdict, process.platform !== 'linux' ? 'not-linux' : 'not-x86-64');
    t.is((await cli(['probe'])).code, 1);
  });
} else {
  test('a device that does not exist: no-device, exit 1', async (t) => {
    const r = await cli(['probe', '--device', '/nonexistent/kvm']);
    t.is(r.code, 1);
    t.regex(r.out.split('\n')[0]!, /^pinbox probe: no real KVM: \/nonexistent\/kvm does not exist/);
    t.is((await probeKvm({ path: '/nonexistent/kvm' })).verdict, 'no-device');
  });

  test('a file that is not a KVM device: not-kvm (ENOTTY), or no-ffi without koffi', async (t) => {
    const p = await probeKvm({ path: '/dev/null' });
    if (p.ffi.loaded) {
      t.is(p.verdict, 'not-kvm');
      t.regex(p.summary, /\/dev\/null is not a KVM device .*ENOTTY/);
    } else {
      t.is(p.verdict, 'no-ffi');
    }
  });
}

const nobody = spawnSync('setpriv', ['--version']).status === 0 && process.getuid?.() === 0;
const rootOnly = existsSync('/dev/kvm') && (statSync('/dev/kvm').mode & 0o066) === 0;
if (linuxX64 && nobody && rootOnly && real.kvm !== undefined) {
  test('run by a user who may not open /dev/kvm: no-permission, naming the mode and the fix', (t) => {
    const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, PINBOX, 'probe'], { encoding: 'utf8' });
    t.is(r.status, 1, r.stderr);
    t.regex(r.stdout.split('\n')[0]!, /^pinbox probe: no real KVM for this user: \/dev\/kvm is crw------- root:root; only root may open it/);
  });
} else {
  test.todo('probe as a user who may not open /dev/kvm — not run: needs root, setpriv, a root-only /dev/kvm and a usable real KVM');
}

test('without the optional koffi package the probe answers no-ffi, and the rest of pinbox still works', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-no-koffi-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // The built command with every dependency but koffi (and its prebuilt binaries).
  mkdirSync(join(dir, 'node_modules'));
  for (const name of readdirSync('node_modules')) {
    if (name === 'koffi' || name === '@koromix' || name === '.bin' || name.startsWith('.')) continue;
    symlinkSync(resolve('node_modules', name), join(dir, 'node_modules', name));
  }
  cpSync('build/test/e2e/fixtures', join(dir, 'bin'), { recursive: true });
  const pinbox = join(dir, 'bin', 'pinbox.js');
  const probe = spawnSync(process.execPath, [pinbox, 'probe', '--json'], { encoding: 'utf8' });
  t.is(probe.status, 1, probe.stderr);
  const p = JSON.parse(probe.stdout) as { verdict: string; summary: string; ffi: { loaded: boolean } };
  if (!linuxX64) {
    t.not(p.verdict, 'usable');
    return;
  }
  t.false(p.ffi.loaded);
  if (p.verdict === 'no-ffi') t.regex(p.summary, /needs the optional package koffi@3\.3\.4.*npm install koffi@3\.3\.4/);
  else t.true(['no-device', 'no-permission'].includes(p.verdict), p.verdict);
  // Nothing else needs koffi: the model runs the demo as before.
  const demo = execFileSync(process.execPath, [pinbox, 'demo'], { encoding: 'utf8' });
  t.regex(demo, /pinbox demo/);
});
