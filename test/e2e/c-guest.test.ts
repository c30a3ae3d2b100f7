/**
 * The C guest library (guest-sdk/c/pinbox.h) and its examples (examples/c/), built with this
 * machine's gcc by the compile line the README gives and run with `pinbox run`: the console
 * output and the exit status are what docs/heki.md, docs/msr-filter.md and the examples'
 * policy say they must be — the pins taken, the attacks refused with #GP(0), the MSRs the
 * filter and the table refuse. Where gcc is missing the tests are listed as not run.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinbox } from '../vmm/cli-support.js';

/** The compile line of guest-sdk/c/README.md. */
export const C_FLAGS = [
  '-ffreestanding', '-mgeneral-regs-only', '-mno-red-zone', '-nostdlib', '-static', '-fno-pie', '-no-pie',
  '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-Wl,--build-id=none', '-Wl,--no-warn-rwx-segments',
  '-O2', '-Wall', '-Wextra', '-Werror', '-I', 'guest-sdk/c', '-T', 'guest-sdk/c/pinbox.ld',
];

const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
const whyNot = gcc.error !== undefined ? 'gcc not found' : gcc.status !== 0 ? `gcc --version exited ${gcc.status}` : undefined;

const HARDEN_POLICY = 'examples/policies/harden.json';

function cases(): void {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-c-'));
  test.after.always(() => rmSync(dir, { recursive: true, force: true }));
  const built = new Map<string, string>();
  const build = (name: string, source = `examples/c/${name}.c`): string => {
    const existing = built.get(name);
    if (existing !== undefined) return existing;
    const out = join(dir, `${name}.elf`);
    execFileSync('gcc', [...C_FLAGS, '-o', out, source], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    built.set(name, out);
    return out;
  };
  /** The guest's console: stdout less pinbox's header, event lines and final dump. */
  const consoleOf = (out: string): string =>
    out.split('\n').filter((l) => !l.startsWith('pinbox run:') && !l.startsWith('  VM ')).join('\n').split('\n\nstopped')[0]!.split('\n\nvCPU')[0]!;

  test('harden.c pins CR0.WP and CR4 with Heki, its attacks on SMEP and WP take #GP(0), and it halts: status 0', async (t) => {
    const r = await pinbox(['run', '--policy', HARDEN_POLICY, '--image', build('harden')]);
    t.is(r.code, 0, r.out + r.err);
    const c = consoleOf(r.out);
    t.regex(c, /^boot: vCPU 0 of 1, 16 MiB, command line ""$/m);
    t.regex(c, /^heki: version 1$/m, 'HEKI_ABI_VERSION (docs/heki.md §0)');
    t.regex(c, /^heki: lock-down done \(0\), profile v2$/m);
    t.regex(c, /^attack: clear CR4\.SMEP +-> blocked: vector 13 \(#GP\), error code 0$/m);
    t.regex(c, /^attack: clear CR0\.WP +-> blocked: vector 13 \(#GP\), error code 0$/m);
    t.regex(c, /^verdict: every protection held$/m);
    // The VMM saw both pins and both denials (the policy has configure and denial exits for both).
    t.regex(r.out, /heki_configure reason=1\(CR0\) cr=0 cr_pinned=0x10000/);
    t.regex(r.out, /heki_configure reason=2\(CR4\) cr=4 cr_pinned=0x310800/, 'CR4 0x310ea0 & the v2 pinnable mask 0xb10800');
    t.regex(r.out, /heki_denial reason=2\(CR4\) cr=4 cr_value=0x210ea0 path=exit/);
    t.regex(r.out, /heki_denial reason=1\(CR0\) cr=0 cr_value=0x80040033 path=exit/);
    t.regex(r.out, /stopped: the program executed HLT/);
  });

  test('harden.c on two vCPUs: vCPU 0 pins, vCPU 1 attacks and is refused — the pins are per VM', async (t) => {
    const r = await pinbox(['run', '--policy', HARDEN_POLICY, '--image', build('harden'), '--vcpus', '2', '--json']);
    t.is(r.code, 0, r.out + r.err);
    const lines = r.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    const consoles = lines.filter((l) => l.name === 'console').map((l) => [l.vcpu, l.fields.text]);
    t.deepEqual(consoles[0], [0, 'boot: vCPU 0 of 2, 16 MiB, command line ""']);
    t.true(consoles.some(([v, text]) => v === 1 && /^attack: clear CR4\.SMEP +-> blocked: vector 13/.test(text)));
    t.deepEqual(consoles.at(-1), [1, 'verdict: every protection held']);
    t.deepEqual(lines.filter((l) => l.name === 'heki_denial').map((l) => l.vcpu), [1, 1]);
  });

  test('harden.c without pins (--append nopin): both attacks get through, and it exits through the port with 2: status 5', async (t) => {
    const r = await pinbox(['run', '--policy', HARDEN_POLICY, '--image', build('harden'), '--append', 'nopin']);
    t.is(r.code, (2 << 1) | 1);
    const c = consoleOf(r.out);
    t.regex(c, /^attack: clear CR4\.SMEP +-> got through: CR4 is now 0x210ea0$/m);
    t.regex(c, /^attack: clear CR0\.WP +-> got through: CR0 is now 0x80040033$/m);
    t.regex(c, /^verdict: 2 protections fell$/m);
  });

  test('harden.c under the v3 profile pins with the v3 mask and is refused the same', async (t) => {
    const dir2 = mkdtempSync(join(tmpdir(), 'pinbox-c-v3-'));
    try {
      const policy = join(dir2, 'v3.json');
      writeFileSync(policy, JSON.stringify({ name: 'v3', profile: 'v3', heki: { denialExits: ['cr4'] } }));
      const r = await pinbox(['run', '--policy', policy, '--image', build('harden')]);
      t.is(r.code, 0, r.out + r.err);
      t.regex(r.out, /^heki: lock-down done \(0\), profile v3$/m);
      // CR0 has no denial exit here: KVM injects the #GP itself and the VMM records it from its log.
      t.regex(r.out, /heki_denial reason=1\(CR0\) cr=0 cr_value=0x80040033 path=in-kernel/);
      t.regex(r.out, /^verdict: every protection held$/m);
    } finally {
      rmSync(dir2, { recursive: true, force: true });
    }
  });

  test('msr-survey.c: rdmsr_safe through the boot IDT\'s fix-up — the policy\'s answers, the faults, the exit status', async (t) => {
    const r = await pinbox(['run', '--policy', HARDEN_POLICY, '--image', build('msr-survey')]);
    const c = consoleOf(r.out);
    // 0x35 is denied by the filter and answered by the policy's msrHandlers in user space.
    t.regex(c, /^ {2}00000035 MSR_CORE_THREAD_COUNT +0x10002$/m);
    t.regex(c, /^ {2}c0000080 EFER +0xd01$/m, 'the boot EFER: SCE, LME, LMA, NXE');
    t.regex(c, /^ {2}0000001b IA32_APIC_BASE +0xfee00900$/m, 'xAPIC enabled, BSP');
    // IA32_FEATURE_CONTROL #GPs without VMX in the guest CPUID (vmx_feature_control_msr_valid()).
    t.regex(c, /^ {2}0000003a IA32_FEATURE_CONTROL +fault: vector 13, error code 0$/m);
    t.regex(c, /^ {2}wrmsr LSTAR: fault$/m, 'the filter denies writes of 0xc0000082; no handler: #GP');
    t.regex(c, /^msr survey: 1 faulted$/m);
    t.is(r.code, (1 << 1) | 1);
  });

  test('the library\'s memory side: the probes, CR0.WP and SMEP, STAC, and KVM_HC_PROTECT_MEMORY on a v2-profile VM', async (t) => {
    // harden.json keeps the default profile, v2: KVM_HC_PROTECT_MEMORY is 14, a refused access an injected #PF.
    const r = await pinbox(['run', '--policy', HARDEN_POLICY, '--image', build('memory', 'test/e2e/fixtures/c/memory.c')]);
    t.is(r.code, 0, r.out + r.err);
    const c = consoleOf(r.out);
    t.regex(c, /^rw: write -1 read -1 value 0x1122334455667788$/m);
    // #PF error codes as SDM vol. 3A §4.7 makes them: P, W/R, I/D (a fetch with NXE on); CR2 the address.
    t.regex(c, /^read null: vector 14 error 0x0 cr2 0x8$/m, 'the null page is not present');
    t.regex(c, /^write rodata: vector 14 error 0x3 cr2 0xd000$/m, 'CR0.WP: a supervisor write to a read-only page');
    t.regex(c, /^write rodata, WP off: vector -1 /m, 'WP clear: supervisor writes ignore R/W');
    t.regex(c, /^cr0 after set_cr0_wp\(1\): 0x80050033$/m, 'the boot CR0, WP back');
    t.regex(c, /^call exec area: returned 0x1337$/m);
    t.regex(c, /^call scratch: vector 14 error 0x11 cr2 0x90000$/m, 'an NX page: P|I/D; call_safe resumes with the stack whole');
    t.regex(c, /^write user page, SMAP: vector 14 error 0x3 cr2 0x300000$/m);
    t.regex(c, /^write user page, STAC: vector -1$/m);
    t.regex(c, /^call user page, SMEP: vector 14 error 0x11 cr2 0x300000$/m);
    t.regex(c, /^call user page, SMEP off: returned 0x1337$/m);
    t.regex(c, /^cr4 after set_cr4_smep\(1\): 0x310ea0$/m);
    // RFC v2 (docs/memory-protection.md §5): (4096 - 24) / 24 entries per node; a page without
    // WRITE takes the #PF KVM injects under the v2 profile (W|P); IMMUTABLE → -EPERM (-1);
    // unaligned → -KVM_EINVAL; the chain is followed through next_pa.
    t.regex(c, /^v2 max entries: 169$/m);
    t.regex(c, /^v2 protect: 0$/m);
    t.regex(c, /^v2 write protected: vector 14 error 0x3 cr2 0x500000$/m);
    t.regex(c, /^v2 write next page: -1$/m);
    t.regex(c, /^v2 immutable: -1$/m);
    t.regex(c, /^v2 unaligned: -22$/m);
    t.regex(c, /^v2 chain: 0$/m);
    t.regex(c, /^v2 write second node's page: 14$/m);
    t.regex(c, /^done$/m);
  });

  test('the library: printf conversions, port I/O of the UART, CPUID, read_cr/lmsw/clts, and a fault that is not expected halts the program', async (t) => {
    const r = await pinbox(['run', '--policy', HARDEN_POLICY, '--image', build('library', 'test/e2e/fixtures/c/library.c')]);
    const c = consoleOf(r.out);
    t.regex(c, /^printf: \[42\] \[-7\] \[ 42\] \[-7  \] \[0042\] \[ff\] \[FF\] \[0x1f\] \[18446744073709551615\] \[x\] \[str  \] \[%\]$/m);
    t.regex(c, /^uart: LSR 0x60 IIR 0x1 SCR 0x5a DLL 0x1$/m);
    t.regex(c, /^cpuid: GenuineIntel, vcpu 0$/m);
    t.regex(c, /^cr0 0x80050033 ts-after-clts 0 lmsw-ts 8 cr7 #6$/m);
    t.regex(c, /^wrmsr EFER.LME off: #GP 0$/m);
    // The last line provokes a #UD outside any guard: the fault record's fix-up is 0 again, so it halts there.
    t.regex(r.out, /stopped: the program raised #UD at 0x[0-9a-f]+, which it does not handle/);
    t.is(r.code, 1);
  });
}

if (whyNot !== undefined) {
  test.todo(`C guests (guest-sdk/c, examples/c) built and run — not run: ${whyNot}`);
} else {
  cases();
}
