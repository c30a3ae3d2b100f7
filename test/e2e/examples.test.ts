/**
 * The examples, as users run them: each built script on its own (with its embedded VMM), and
 * harden and smep-bypass against `pinbox serve` in another process.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import smepPolicy from '../../examples/policies/smep-bypass.json' with { type: 'json' };
import hardenPolicy from '../../examples/policies/harden.json' with { type: 'json' };
import { backendTest, HEKI_V2, realBackend } from '../support/backends.js';
import { startServe } from './serve-process.js';

const run = promisify(execFile);
/** build/examples, next to build/test (build.mjs --tests builds both). */
const EXAMPLES = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'examples');

/** The example's output with each run of white space as one space: lines wrap at 100 columns. */
async function example(name: string, ...args: string[]): Promise<string> {
  const { stdout } = await run(process.execPath, [join(EXAMPLES, `${name}.js`), ...args]);
  return stdout.replace(/\s+/g, ' ');
}

test('smep-bypass: without pins the user page runs in ring 0; with pins the CR4 write is #GP(0) and the VMM logs the denial', async (t) => {
  const out = await example('smep-bypass');
  t.regex(out, /kernel code calls the user page: #PF\(0x11\) — SMEP forbids/);
  t.regex(out, /→ the user page ran in ring 0: it read CR0 = 0x80050033\. CR4 is now 0x210ea0, SMEP off\./);
  t.regex(out, /VMM KVM_EXIT_HEKI_DENIAL: vCPU 0 tried to load CR4 = 0x210ea0[\s\S]*→ #GP\(0\) at 0x100008, the MOV to CR4: the payload never ran\. CR4 is still 0x310ea0, SMEP on\./);
  t.regex(out, /Without pins the exploit worked; with pins it was stopped\./);
});

test('smep-bypass against pinbox serve: the server\'s trace holds the denial of the pinned VM only', async (t) => {
  const s = await startServe(smepPolicy);
  try {
    const out = await example('smep-bypass', '--host', s.guestUrl);
    t.regex(out, /with pins it was stopped/);
    t.notRegex(out, /VMM /, 'the VMM is another process: its events are in its trace');
    const denials = s.trace().filter((e) => e.name === 'heki_denial');
    t.deepEqual(denials.map((e) => [e.vm, e.fields.cr_value, e.fields.path]), [['pinned', 0x210ea0n, 'exit']]);
    t.is(await s.stop(), 0);
  } finally {
    s.cleanup();
  }
});

test('harden: locked, both bypasses refused, the MSR probe; also against pinbox serve', async (t) => {
  const out = await example('harden');
  t.regex(out, /Every protection held: 2 pins, 2 of 2 bypasses refused\./);
  t.regex(out, /0xc0000082 LSTAR: readable — reads 0x0, WRMSR raises #GP\(0\)/);
  const s = await startServe(hardenPolicy);
  try {
    const remote = await example('harden', '--host', s.guestUrl);
    t.regex(remote, /Every protection held/);
    // Issue 11 #17: the example says which VM it got, and that the server's policy made it.
    t.regex(remote, new RegExp(`The guest is attached to VM "harden" of the pinbox server at ${s.guestUrl.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, 2 vCPUs, Heki ABI v2: the server made that VM from its own policy \\(pinbox serve --policy\\), not from this example's`));
    t.notRegex(remote, /expect its results to differ/);
    t.is(s.trace().filter((e) => e.name === 'heki_denial').length, 2);
    t.is(await s.stop(), 0);
  } finally {
    s.cleanup();
  }
});

test('msr-probe: classes by range, and the MSRs the VMM answered', async (t) => {
  const out = await example('msr-probe');
  t.regex(out, /0x35 readable \(1\)/);
  t.regex(out, /0x35: readable — read FILTER → error 0, data 0x10001; write FILTER → error 1/);
  t.regex(out, /0xc0000102: faulting — read FILTER → error 1/);
  t.regex(out, /6 handled by the VMM/);
});

test('an example given a bad argument says how to use it and exits 1', async (t) => {
  const e = await t.throwsAsync(example('harden', '--bogus')) as Error & { code?: number; stderr?: string };
  t.is(e.code, 1);
  t.regex(e.stderr ?? '', /usage: node harden\.js \[--host/);
});

test('msr-probe against a server of another policy says which VM it got and that its results may differ', async (t) => {
  const s = await startServe({ vcpus: 2, profile: 'v3' });
  try {
    const out = await example('msr-probe', '--host', s.guestUrl);
    t.regex(out, /attached to VM "msr-probe" of the pinbox server at .*, 2 vCPUs, Heki ABI v3: the server made that VM from its own policy/);
    t.regex(out, /This example's policy asks for 1 vCPU and Heki ABI v2: expect its results to differ\./);
    t.is(await s.stop(), 0);
  } finally {
    s.cleanup();
  }
});

test('control-watch: a control client sees the pins, resets and restores them, and holds an exit; also against pinbox serve', async (t) => {
  const local = await example('control-watch');
  t.regex(local, /ctl VM "harden" vcpu 0 @0x[0-9a-f]+ heki_configure reason=1\(CR0\) cr=0 cr_pinned=0x10000/);
  t.regex(local, /ctl VM "harden" vm_reset cause=control pins_cleared=true guest mov cr4, 0x[0-9a-f]+ → went through/);
  t.regex(local, /exit_held reason=KVM_EXIT_X86_RDMSR exit_reason=29/);
  t.regex(local, /rdmsr 0x35 → 0x10002, answered once released/);
  t.regex(local, /The pins held, went with the reset and came back with the snapshot\./);
  const s = await startServe(hardenPolicy);
  try {
    const remote = await example('control-watch', '--control', s.controlUrl);
    t.regex(remote, /The pins held, went with the reset and came back with the snapshot\./);
    t.true(s.trace().some((e) => e.name === 'exit_held' && e.vm === 'harden'));
    t.is(await s.stop(), 0);
  } finally {
    s.cleanup();
  }
});

// The examples on either KVM backend (--backend model|kvm): the same guests, the same VMM.
await backendTest('msr-probe --backend: classes by range, and the MSRs the VMM answered', async (t, b) => {
  const out = await example('msr-probe', '--backend', b.name);
  t.regex(out, new RegExp(`on a VMM in this process \\(VM "[^"]+", \\d vCPUs?${b.name === 'kvm' ? ', on Linux ' : '\\)'}`));
  // The MSR filter and the VMM's answers are the policy's on any host; how many MSRs KVM itself knows is the host's (docs/real-kvm.md §9).
  t.regex(out, /0x35: readable — read FILTER → error 0, data 0x10001; write FILTER → error 1/);
  t.regex(out, /0xc0000102: faulting — read FILTER → error 1/);
  t.regex(out, /6 handled by the VMM/);
}, { serial: true });

await backendTest('harden --backend: locked, both bypasses refused', async (t, b) => {
  t.regex(await example('harden', '--backend', b.name), /Every protection held: 2 pins, 2 of 2 bypasses refused\./);
}, { needs: HEKI_V2, serial: true });

if (realBackend !== undefined && !realBackend.support.heki.v2.present) {
  test.serial('harden --backend kvm on a host without Heki: the lock call is refused as host_unsupported, and the example exits 1 [kvm]', async (t) => {
    const e = await t.throwsAsync(example('harden', '--backend', 'kvm')) as Error & { code?: number; stdout?: string; stderr?: string };
    t.is(e.code, 1);
    t.regex((e.stdout ?? '').replace(/\s+/g, ' '), /Does the hypervisor support Heki CR pinning\? $/);
    t.regex((e.stderr ?? '').replace(/\s+/g, ' '), /^hypercall 13\(0x0, 0x0, 0x1\): the host refused it: .*\[host_unsupported\]/);
  });
}
