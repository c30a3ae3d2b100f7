/**
 * The C guest library (guest-sdk/c/pinbox.h) and its examples (examples/c/), built with this
 * machine's gcc by the compile line the README gives and run with `pinbox run`: the console
 * output and the exit status are what docs/heki.md, docs/msr-filter.md and the examples'
 * policy say they must be — the pins taken, the attacks refused with #GP(0), the MSRs the
 * filter and the table refuse. Where gcc is missing the tests are listed as not run.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinbox } from '../vmm/cli-support.js';

/** The compile line of guest-sdk/c/README.md, less the linker script (build() adds it). */
export const C_FLAGS = [
  '-ffreestanding', '-mgeneral-regs-only', '-mno-red-zone', '-nostdlib', '-static', '-fno-pie', '-no-pie',
  '-fno-stack-protector', '-fno-asynchronous-unwind-tables', '-Wl,--build-id=none', '-Wl,--no-warn-rwx-segments',
  '-O2', '-Wall', '-Wextra', '-Werror', '-I', 'guest-sdk/c',
];

const gcc = spawnSync('gcc', ['--version'], { encoding: 'utf8' });
const whyNot = gcc.error !== undefined ? 'gcc not found' : gcc.status !== 0 ? `gcc --version exited ${gcc.status}` : undefined;

const HARDEN_POLICY = 'examples/policies/harden.json';

function cases(): void {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-c-'));
  test.after.always(() => rmSync(dir, { recursive: true, force: true }));
  const built = new Map<string, string>();
  /** Builds with the README's line and `script` (pinbox.ld, unless the example brings its own). */
  const build = (name: string, source = `examples/c/${name}.c`, script = 'guest-sdk/c/pinbox.ld'): string => {
    const existing = built.get(name);
    if (existing !== undefined) return existing;
    const out = join(dir, `${name}.elf`);
    execFileSync('gcc', [...C_FLAGS, '-T', script, '-o', out, source], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
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

  // memlock.c (docs/memory-protection.md §8): the policy locks, MBEC on, refused accesses exit
  // to the VMM, which logs them and reflects the #PF (issue 15 contract §1-§3). Expectations from
  // the policy and the sources: a write to a page left R and X is #PF(W|P) = 0x3, a fetch from a
  // page left R and W #PF(I/D|P) = 0x11 (__vmx_handle_ept_violation()); CR2 and the event's GVA
  // are the linear address; the event's GPA is the page; its qualification is the SDM's table
  // (bits 0-2 the access, 3-6 the frame's R, W, X, UX, 7-8 GVA valid and final, 9-11 the guest
  // page's U/S, R/W, XD).
  const MEMLOCK_POLICY = 'examples/policies/memlock.json';
  const memlock = (): string => build('memlock', undefined, 'examples/c/memlock.ld');
  /** memlock.json changed by `edit`, written next to the images. */
  const memlockVariant = (name: string, edit: (policy: Record<string, any>) => void): string => {
    const policy = JSON.parse(readFileSync(MEMLOCK_POLICY, 'utf8')) as Record<string, any>;
    edit(policy);
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify(policy));
    return file;
  };
  /** The attack lines: what → [error code, CR2] when blocked, 'through' when it got through. */
  const attacks = (c: string): Map<string, [number, bigint] | 'through'> => {
    const out = new Map<string, [number, bigint] | 'through'>();
    for (const m of c.matchAll(/^attack: (.+?) +-> (?:blocked: vector 14 \(#PF\), error code (0x[0-9a-f]+), CR2 (0x[0-9a-f]+)|(got through): .*)$/gm)) {
      out.set(m[1]!, m[4] !== undefined ? 'through' : [Number(m[2]), BigInt(m[3]!)]);
    }
    return out;
  };
  const PAGE = 0xfffn;
  const TEXT_PT = 0x100_0000n - 0x1000n; // page-rights.ts: the highest free page of 16 MiB
  const ATTACKS = ['clear CR0.WP, patch kernel text', "make the text's PTE writable", 'jump into kernel data', 'clear CR4.SMEP, jump to a user page'];

  test('memlock.c under memlock.json: WP and SMEP cleared, yet each attack takes #PF and the VMM logs each as memory_denial; status 0', async (t) => {
    const r = await pinbox(['run', '--policy', MEMLOCK_POLICY, '--image', memlock()]);
    t.is(r.code, 0, r.out + r.err);
    const c = consoleOf(r.out);
    const boot = /^boot: text 0x400000-0x([0-9a-f]+), data 0x100000-0x([0-9a-f]+), user payload 0x300000; CR0 0x80050033, CR4 0x310ea0, profile v3$/m.exec(c);
    t.truthy(boot, c);
    const textEnd = BigInt(`0x${boot![1]}`), dataEnd = BigInt(`0x${boot![2]}`);
    const a = attacks(c);
    t.deepEqual([...a.keys()], ATTACKS);
    const [text, pte, data, user] = ATTACKS.map((k) => a.get(k)) as [number, bigint][];
    t.is(text[0], 0x3);
    t.true(text[1] >= 0x40_0000n && text[1] < textEnd, 'CR2 in the text');
    t.deepEqual(pte, [0x3, TEXT_PT + 8n * ((text[1] >> 12n) & 511n)], "the text page's PTE, in the image's page table");
    t.is(data[0], 0x11);
    t.true(data[1] >= 0x10_0000n && data[1] < dataEnd, 'CR2 in the data');
    t.deepEqual(user, [0x11, 0x30_0000n]);
    t.regex(c, /^verdict: every protection held$/m);
    // The VMM's lines, in order, one per attack: `@RIP memory_denial` (text.ts's key=value form).
    const hex = (v: bigint | number): string => `0x${v.toString(16)}`;
    const denial = (rip: string, gpa: bigint, gva: bigint, access: string, qualification: number, name: string): string =>
      `@${rip} memory_denial gpa=${hex(gpa)} gva=${hex(gva)} access=${access} path=exit action=log qualification=${hex(qualification)} name="${name}"`;
    const lines = r.out.split('\n').filter((l) => / memory_denial /.test(l)).map((l) => l.replace(/^ {2}VM "memlock" vcpu 0 /, ''));
    const stores = lines.slice(0, 2).map((l) => /^@(0x[0-9a-f]+) /.exec(l)?.[1] ?? '?');
    t.true(stores.every((rip) => BigInt(rip) >= 0x40_0000n && BigInt(rip) < textEnd), 'the stores are in the text');
    t.deepEqual(lines, [
      // write; the frame R X UX; GVA valid, final; the guest page supervisor, read-only, executable
      denial(stores[0]!, text[1] & ~PAGE, text[1], 'write', 0x1ea, 'kernel text'),
      // write; R X UX; valid, final; supervisor, writable, XD (high memory)
      denial(stores[1]!, TEXT_PT, pte[1], 'write', 0xdea, 'text page table'),
      // fetch, at its target; R W; valid, final; supervisor, writable
      denial(hex(data[1]), data[1] & ~PAGE, data[1], 'fetch', 0x59c, 'kernel data'),
      // fetch; R W; valid, final; user, writable
      denial('0x300000', 0x30_0000n, 0x30_0000n, 'fetch', 0x79c, 'user payload'),
    ]);
  });

  test('memlock.c under memlock.json without its memory section: all four attacks get through, no memory_denial; status (4 << 1) | 1', async (t) => {
    const open = memlockVariant('memlock-open', (p) => delete p.memory);
    const r = await pinbox(['run', '--policy', open, '--image', memlock()]);
    t.is(r.code, (4 << 1) | 1, r.out + r.err);
    const a = attacks(consoleOf(r.out));
    t.deepEqual([...a.entries()], ATTACKS.map((k) => [k, 'through']));
    t.regex(r.out, /^attack: clear CR0\.WP, patch kernel text +-> got through: kernel_check\(\) now returns 1$/m);
    t.regex(r.out, /^attack: clear CR4\.SMEP, jump to a user page +-> got through: it ran in ring 0, returned 0x1337$/m);
    t.regex(r.out, /^verdict: 4 protections fell$/m);
    t.notRegex(r.out, /memory_denial/);
  });

  test('memlock.c: with MBEC, taking only kernel execute from the user page does not stop ret2usr — the fetch needs user execute (SDM: by the page\'s U/S, not the CPL)', async (t) => {
    const kernelOnly = memlockVariant('memlock-kx', (p) => {
      p.memory.protect.find((e: { name: string }) => e.name === 'user payload').deny = ['exec'];
    });
    const r = await pinbox(['run', '--policy', kernelOnly, '--image', memlock()]);
    t.is(r.code, (1 << 1) | 1, r.out + r.err);
    const a = attacks(consoleOf(r.out));
    t.is(a.get('clear CR4.SMEP, jump to a user page'), 'through');
    t.is(ATTACKS.filter((k) => a.get(k) !== 'through').length, 3);
    t.is(r.out.split('\n').filter((l) => / memory_denial /.test(l)).length, 3);
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
    // KVM injected both #PFs itself (v2's delivery); the VMM heard of each from its trace. The
    // qualification: write; the frame R and X (EXEC put back without MBEC); valid, final; the
    // guest page supervisor, writable, XD. No policy range covers a Heki lock: no name.
    t.deepEqual(r.out.split('\n').filter((l) => / memory_denial /.test(l)).map((l) => l.replace(/^.* memory_denial /, '')), [
      'gpa=0x500000 gva=0x500000 access=write path=inject action=log qualification=0xdaa',
      'gpa=0x502000 gva=0x502000 access=write path=inject action=log qualification=0xdaa',
    ]);
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
