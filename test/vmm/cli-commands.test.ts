/**
 * The `pinbox` command's actions: help and usage errors, `run` on a gcc-built ELF and on flat
 * images, `serve` in this process, and the essential lines of `demo` (`conform` both ways:
 * test/e2e/conform.test.ts).
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../guest-sdk/index.js';
import { PINBOX, PINBOX_VERSION } from '../../host/cli/commands.js';
import { decodeEventLine, encodeEventLine } from '../../protocol/events/index.js';
import { connectWhenUp, pinbox, startPinbox } from './cli-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-cmd-'));
const policy = join(dir, 'policy.json');
writeFileSync(policy, JSON.stringify({ name: 'cli' }));
const HELLO_ELF = 'test/fixtures/images/hello.elf';
const flat = (name: string, ...bytes: number[]): string => {
  const path = join(dir, name);
  writeFileSync(path, Uint8Array.from(bytes));
  return path;
};

test('--help on every command and on the program; --version is package.json\'s', async (t) => {
  for (const command of PINBOX.commands.map((c) => c.name)) {
    const r = await pinbox([command, '--help']);
    t.is(r.code, 0, command);
    t.regex(r.out, new RegExp(`^pinbox ${command} — .*\\n\\nUsage: pinbox ${command}`), command);
  }
  const all = await pinbox(['--help']);
  t.regex(all.out, /Commands:[\s\S]*demo[\s\S]*serve[\s\S]*run[\s\S]*conform[\s\S]*events[\s\S]*ctl[\s\S]*trace[\s\S]*probe[\s\S]*audit/);
  t.deepEqual(PINBOX.commands.map((c) => c.name), ['demo', 'serve', 'run', 'conform', 'events', 'ctl', 'trace', 'probe', 'audit']);
  const v = await pinbox(['--version']);
  t.is(v.out, `pinbox ${PINBOX_VERSION}\n`);
  t.is(JSON.parse(readFileSync('package.json', 'utf8')).version, PINBOX_VERSION);
});

test('bad arguments: a message naming the mistake, a hint, exit 2', async (t) => {
  const r = await pinbox(['serve', '--policy', policy]);
  t.is(r.code, 2);
  t.is(r.err, "pinbox serve: --listen is required (unix:PATH, tcp:HOST:PORT or tcp:PORT)\nTry 'pinbox serve --help'.\n");
  t.like(await pinbox(['frobnicate']), { code: 2 });
  t.regex((await pinbox(['serve', '--listen', 'unix:/tmp/x', '--policy', policy, '--max-vms', '0'])).err, /--max-vms needs a whole number from 1 to 4096, got '0' \(below 1\)/);
  t.regex((await pinbox(['serve', '--listen', 'unix:/tmp/x', '--policy', policy, '--token', 'x'])).err, /--token needs --control too/);
  t.regex((await pinbox(['run', '--policy', policy, '--image', HELLO_ELF, '--budget', 'lots'])).err, /--budget needs a whole number/);
});

test('run boots the gcc-built hello.elf and halts with RAX = 0x7b0, RBX = 0x150, RCX = 3 (hello.c)', async (t) => {
  const r = await pinbox(['run', '--policy', policy, '--image', HELLO_ELF]);
  t.is(r.code, 0, r.err);
  t.regex(r.out, /stopped: the program executed HLT/);
  t.regex(r.out, /rax 00000000000007b0\s+rbx 0000000000000150\s+rcx 0000000000000003/);
  const json = await pinbox(['run', '--policy', policy, '--image', HELLO_ELF, '--json']);
  const lines = json.out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  const stop = lines.at(-1)!;
  t.deepEqual(Object.keys(stop), ['name', 'vcpu', 'reason', 'regs', 'cr']);
  t.like(stop, { name: 'stop', vcpu: 0, reason: 'hlt', regs: { rax: '0x7b0', rbx: '0x150', rcx: '0x3' }, cr: { cr0: '0x80050033', efer: '0xd01' } });
  // The events are the trace's lines (docs/events.md): name, seq and time as JSON numbers.
  const events = lines.slice(0, -1);
  t.true(events.length > 0);
  t.true(events.every((l) => typeof l.name === 'string' && typeof l.seq === 'number' && typeof l.time === 'number' && !('event' in l)));
  t.deepEqual(events.map((l) => encodeEventLine(decodeEventLine(JSON.stringify(l)))), json.out.split('\n').slice(0, events.length).map((l) => l + '\n'));
});

test('run: a fault the program does not handle, the budget, and a triple fault stop it with exit 1', async (t) => {
  // ud2: #UD, recorded by the boot IDT, which halts the program
  const ud2 = await pinbox(['run', '--policy', policy, '--image', flat('ud2.bin', 0x0f, 0x0b), '--json']);
  t.is(ud2.code, 1);
  t.like(JSON.parse(ud2.out.trim().split('\n').at(-1)!), { reason: 'fault', fault: { vector: 6 }, regs: { rip: '0x100000' } });
  const loop = await pinbox(['run', '--policy', policy, '--image', flat('loop.bin', 0xeb, 0xfe), '--budget', '500']);
  t.is(loop.code, 1);
  t.regex(loop.out, /the instruction budget ran out \(RIP 0x100000/);
  // lidt [rip+2] with a zero-limit IDT ; ud2
  const triple = await pinbox(['run', '--policy', policy, '--image', flat('tf.bin', 0x0f, 0x01, 0x1d, 2, 0, 0, 0, 0x0f, 0x0b, ...new Array(10).fill(0))]);
  t.is(triple.code, 1);
  t.regex(triple.out, /shut down \(triple fault\)/);
  const loaded = await pinbox(['run', '--policy', policy, '--image', flat('hlt.bin', 0x90, 0xf4), '--load', '0x400000', '--json']);
  t.like(JSON.parse(loaded.out.trim().split('\n').at(-1)!), { reason: 'hlt', regs: { rip: '0x400002' } });
});

test('run: a triple fault is told as the chain of exceptions that led to it, with the IDT entries involved (text and JSON)', async (t) => {
  // lidt [rip+2] loads IDTR limit 0, base 0; then ud2. SDM vol. 3A §6.15: #UD's gate is beyond
  // the limit, so #GP with the IDT-format error code (index 6 << 3 | IDT 2 | EXT 1); its own
  // gate too (index 13), and two contributory faults make #DF, whose gate (index 8) is beyond
  // the limit again: shutdown. The RIP of each is the UD2's.
  const image = flat('tf-chain.bin', 0x0f, 0x01, 0x1d, 2, 0, 0, 0, 0x0f, 0x0b, ...new Array(10).fill(0));
  const json = await pinbox(['run', '--policy', policy, '--image', image, '--json']);
  t.is(json.code, 1);
  const stop = JSON.parse(json.out.trim().split('\n').at(-1)!) as { reason: string; chain: { vector: number; errorCode?: number; rip: string; gate: { kind: string; address: string; limit: number } }[] };
  t.is(stop.reason, 'shutdown');
  t.deepEqual(stop.chain.map((e) => [e.vector, e.errorCode]), [[6, undefined], [13, (6 << 3) | 3], [13, (13 << 3) | 3], [8, 0], [13, (8 << 3) | 3]]);
  t.true(stop.chain.every((e) => e.rip === '0x100007'));
  t.deepEqual(stop.chain.map((e) => [e.gate.kind, e.gate.address, e.gate.limit]), [
    ['beyond-limit', '0x60', 0], ['beyond-limit', '0xd0', 0], ['beyond-limit', '0xd0', 0], ['beyond-limit', '0x80', 0], ['beyond-limit', '0xd0', 0],
  ]);
  const text = await pinbox(['run', '--policy', policy, '--image', image]);
  t.regex(text.out, /shut down \(triple fault\)/);
  t.regex(text.out, /the exceptions that led to it: #UD → #GP\(0x33\) → #GP\(0x6b\) → #DF\(0\) → #GP\(0x43\)/);
  t.regex(text.out, /1\. #UD at RIP 0x100007 — IDT\[6\] at 0x60: beyond the IDT limit 0x0/);
});

test('run: a bad policy or image is exit 2 with what is wrong', async (t) => {
  const badPolicy = join(dir, 'bad.json');
  writeFileSync(badPolicy, '{"vcpus": 0}');
  const p = await pinbox(['run', '--policy', badPolicy, '--image', HELLO_ELF]);
  t.is(p.code, 2);
  t.regex(p.err, /invalid policy[\s\S]*\/vcpus/);
  const i = await pinbox(['run', '--policy', policy, '--image', flat('empty.bin')]);
  t.is(i.code, 2);
  t.regex(i.err, /the image is empty/);
  const e = await pinbox(['run', '--policy', policy, '--image', HELLO_ELF, '--entry', '0x123']);
  t.is(e.code, 2);
  t.regex(e.err, /entry 0x123 is not in an executable segment/);
});

test('serve listens, prints where, serves a guest, and stops cleanly when told', async (t) => {
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const sock = join(dir, 'serve.sock');
  const trace = join(dir, 'serve.jsonl');
  const running = pinbox(['serve', '--listen', `unix:${sock}`, '--control', `unix:${sock}.ctl`, '--policy', policy, '--trace', trace], () => stopped);
  const guest = await connectWhenUp(`unix:${sock}`);
  t.is(guest.vm, 'default');
  t.is(await guest.rdmsr(0xc0000080), 0xd01n);
  // mov dx, 0x3f8 ; mov al, 'o' ; out dx, al ; mov al, 'k' ; out dx, al ; mov al, '\n' ; out dx, al
  const printed = await guest.exec(Uint8Array.of(0x66, 0xba, 0xf8, 0x03, 0xb0, 0x6f, 0xee, 0xb0, 0x6b, 0xee, 0xb0, 0x0a, 0xee));
  t.is(printed.console, 'ok\n');
  guest.close();
  stop();
  const r = await running;
  t.is(r.code, 0, r.err);
  t.regex(r.out, new RegExp(`guests connect to   unix:${sock}`));
  t.regex(r.out, /control token in    .*serve\.sock\.ctl\.token \(readable by its owner only\)/);
  t.regex(r.out, /pinbox serve: ready/);
  // Every console line names its VM (issue 11 #15), in docs/events.md's text form.
  t.regex(r.out, /(?:^|\n) {2}VM "default" vm_created vcpus=1 memory=16777216 profile=v2 policy=\S+policy\.json\n/);
  t.regex(r.out, /(?:^|\n) {2}VM "default" vcpu 0 guest_connected connection=\d+\n/);
  t.regex(readFileSync(trace, 'utf8'), /"name":"guest_connected"/);
  // The guest's serial console: a console event per line, on serve's output and in the trace.
  t.regex(r.out, /(?:^|\n) {2}VM "default" vcpu 0 @0x100006 console text=ok\n/);
  t.regex(readFileSync(trace, 'utf8'), /"name":"console","vm":"default","vcpu":0,"rip":"0x100006","fields":\{"text":"ok"\}/);
});

test('serve --listen tcp:PORT listens on 127.0.0.1, as PROTOCOL.md §1 reads the URL', async (t) => {
  const serve = startPinbox(['serve', '--listen', 'tcp:0', '--policy', policy]);
  const [, port] = await serve.waitFor(/guests connect to   tcp:127\.0\.0\.1:(\d+)\n/);
  const guest = await connect(`tcp:${port}`);
  t.is(await guest.rdmsr(0xc0000080), 0xd01n);
  guest.close();
  t.is((await serve.stop()).code, 0);
});

test('demo tells the story: the pins set, SMEP and WP clears refused with #GP(0), the VMM\'s denials, the MSR probe', async (t) => {
  const r = await pinbox(['demo']);
  t.is(r.code, 0, r.err);
  const out = r.out.replace(/\s+/g, ' ');
  const lines = [
    /A pin is a control-register bit/,
    /KVM_HC_LOCK_CR_UPDATE\(0, 0x10000\): pin CR0 WP VMM KVM_EXIT_HEKI_CONFIGURE: CR0 bits 0x10000 \(WP\) are pinned/,
    /KVM_HC_LOCK_CR_UPDATE\(4, 0x310800\): pin CR4 UMIP FSGSBASE SMEP SMAP/,
    /mov cr4, 0x210ea0 VMM KVM_EXIT_HEKI_DENIAL: vCPU 0 tried to load CR4 = 0x210ea0.*?→ #GP\(0\): the write was refused, CR4 is still 0x310ea0/,
    /mov cr0, 0x80040033 VMM KVM_EXIT_HEKI_DENIAL: vCPU 1 tried to load CR0 = 0x80040033.*?→ #GP\(0\): the write was refused, CR0 is still 0x80050033/,
    /summary: 6 MSRs probed: 4 writable, 2 readable/,
    /2 of 2 attempts to clear a pinned bit were refused with #GP\(0\)/,
    /2 heki_configure and 2 heki_denial events/,
    // The live monitor: one VTL1 line per intercept, in the order the guest wrote. Boot CR0 is
    // 0x80050033 (PE MP ET NE WP AM PG); TS is bit 3 and WP bit 16; SMEP is CR4 bit 20.
    /VTL1 Cr0Write: CR0 0x80050033 → 0x8005003b: allow .*?guest → done/,
    /clts VTL1 Cr0Write: CR0 0x8005003b → 0x80050033: allow .*?guest → done/,
    /VTL1 Cr0Write: CR0 0x80050033 → 0x80040033: deny \(it would clear CR0\.WP\) guest → #GP\(0\)/,
    /VTL1 Cr4Write: CR4 0x310ea0 → 0x210ea0: deny \(it would clear CR4\.SMEP\) guest → #GP\(0\)/,
  ];
  for (const re of lines) t.regex(out, re);
  // The kernel's own IDT again is allowed; one a page up (the attacker's) is denied.
  const idt = /VTL1 IdtrWrite: IDTR (0x[0-9a-f]+)\/0x([0-9a-f]+) → \1\/0x\2: allow .*?guest → done/.exec(out);
  t.truthy(idt, 'the monitor allows the kernel\'s IDT');
  const up = `0x${(BigInt(idt![1]!) + 0x1000n).toString(16)}`;
  t.true(out.includes(`VTL1 IdtrWrite: IDTR ${idt![1]}/0x${idt![2]} → ${up}/0x${idt![2]}: deny (not the kernel's IDT) guest → #GP(0)`));
  t.is(out.match(/VTL1 /g)?.length, 6, 'one VTL1 line per intercept');
  t.regex(out, /The monitor held CR0\.WP, CR4\.SMEP and the kernel's IDT/);
});
