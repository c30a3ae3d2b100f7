/**
 * `pinbox run` and the boot contract of docs/boot.md §3.3–3.5: the serial console on stdout, in
 * a file and as `console` events; the exit port's status (QEMU's isa-debug-exit: (V << 1) | 1);
 * the boot-information block in RDI; `--vcpus` running vCPUs in turn; and a guest that loads the
 * conventional GDT (code 0x08, data 0x10) keeping the boot IDT's fix-ups. The guests are flat
 * binaries written here byte by byte, each instruction in a comment.
 */
import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinbox } from './cli-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-run-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const policy = join(dir, 'policy.json');
writeFileSync(policy, JSON.stringify({ name: 'run' }));
let images = 0;
const image = (bytes: readonly number[]): string => {
  const path = join(dir, `image-${images++}.bin`);
  writeFileSync(path, Uint8Array.from(bytes));
  return path;
};
const jsonLines = (out: string) => out.trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);

/** mov dx, 0x3f8 ; then per byte: mov al, B ; out dx, al */
function print(text: string): number[] {
  const out = [0x66, 0xba, 0xf8, 0x03];
  for (const b of Buffer.from(text, 'utf8')) out.push(0xb0, b, 0xee);
  return out;
}
const HLT = 0xf4;
/** mov eax, imm32 ; out 0xf4, eax */
const exitWith = (v: number) => [0xb8, v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24, 0xe7, 0xf4];

test('the console streams to stdout as the guest wrote it, without its port I/O as event lines', async (t) => {
  const r = await pinbox(['run', '--policy', policy, '--image', image([...print('hello\nwörld\n'), HLT])]);
  t.is(r.code, 0, r.err);
  t.regex(r.out, /at CPL0\nhello\nwörld\n {2}VM "run" vcpu 0 @0x10002c vcpu_halted\n\nstopped: the program executed HLT/);
  t.notRegex(r.out, /kvm_pio/);
});

test('--console FILE gets the bytes exactly; stdout keeps the events and the dump', async (t) => {
  const file = join(dir, 'console.txt');
  const r = await pinbox(['run', '--policy', policy, '--image', image([...print('one\r\ntwo'), 0xb0, 0xff, 0xee, HLT]), '--console', file]);
  t.is(r.code, 0, r.err);
  t.deepEqual([...readFileSync(file)], [...Buffer.from('one\r\ntwo'), 0xff]);
  t.notRegex(r.out, /one|two/);
  const bad = await pinbox(['run', '--policy', policy, '--image', image([HLT]), '--console', join(dir, 'no', 'such', 'dir', 'c.txt')]);
  t.is(bad.code, 2);
  t.regex(bad.err, /--console needs a file to write/);
});

test('--json: a console event per line with VM and vCPU, stdout JSON Lines only', async (t) => {
  const r = await pinbox(['run', '--policy', policy, '--image', image([...print('a line\nrest'), HLT]), '--json']);
  t.is(r.code, 0, r.err);
  const lines = jsonLines(r.out);
  const consoles = lines.filter((l) => l.name === 'console');
  t.deepEqual(consoles.map((l) => [l.vm, l.vcpu, l.fields.text]), [['run', 0, 'a line'], ['run', 0, 'rest']]);
  t.is(consoles[0]!.rip, '0x100006', 'the OUT of the line\'s first byte');
  t.is(lines.at(-1)!.name, 'stop');
});

test('a write of V to the exit port ends the run with status (V << 1) | 1, low 8 bits; the dump says so', async (t) => {
  const r = await pinbox(['run', '--policy', policy, '--image', image([...print('bye\n'), ...exitWith(5), ...print('never\n'), HLT])]);
  t.is(r.code, 11);
  t.regex(r.out, /bye\n/);
  t.notRegex(r.out, /never/);
  t.regex(r.out, /stopped: the program wrote 0x5 to the exit port 0xf4 at 0x[0-9a-f]+: exit status 11/);
  t.is((await pinbox(['run', '--policy', policy, '--image', image(exitWith(0))])).code, 1);
  t.is((await pinbox(['run', '--policy', policy, '--image', image(exitWith(0x80))])).code, 1, '(0x80 << 1 | 1) & 0xff');
  const json = jsonLines((await pinbox(['run', '--policy', policy, '--image', image(exitWith(0x2a)), '--json'])).out).at(-1)!;
  t.like(json, { name: 'stop', vcpu: 0, reason: 'exit', exit: { value: 0x2a, status: 0x55 } });
});

/** Each vCPU halts with its block in registers: mov rbx,rdi ; mov eax,[rdi] ; mov ecx,[rdi+12] ; mov edx,[rdi+16] ; mov esi,[rdi+20] ; mov r8,[rdi+24] ; mov r9,[rdi+32] ; mov r10d,[rdi+40] ; mov r11,[rdi+48] ; movzx r12d, byte [r9] ; hlt */
const READ_BLOCK = [
  0x48, 0x89, 0xfb, 0x8b, 0x07, 0x8b, 0x4f, 0x0c, 0x8b, 0x57, 0x10, 0x8b, 0x77, 0x14, 0x4c, 0x8b, 0x47, 0x18,
  0x4c, 0x8b, 0x4f, 0x20, 0x44, 0x8b, 0x57, 0x28, 0x4c, 0x8b, 0x5f, 0x30, 0x45, 0x0f, 0xb6, 0x21, HLT,
];

test('every vCPU enters with RDI at its boot block: magic, number, count, profile, memory, command line, fault record', async (t) => {
  const v3 = join(dir, 'v3.json');
  writeFileSync(v3, JSON.stringify({ name: 'v3', profile: 'v3', memory: '32MiB' }));
  const r = await pinbox(['run', '--policy', v3, '--image', image(READ_BLOCK), '--vcpus', '3', '--append', 'quiet console=ttyS0', '--json']);
  t.is(r.code, 0, r.err);
  const stops = jsonLines(r.out).filter((l) => l.name === 'stop');
  t.deepEqual(stops.map((s) => s.vcpu), [0, 1, 2]);
  for (const s of stops) {
    const v = s.vcpu as number;
    t.like(s.regs, {
      rbx: `0x${(0xff000 + 64 * v).toString(16)}`, rax: '0x584f4250', rcx: `0x${v.toString(16)}`, rdx: '0x3', rsi: '0x3',
      r8: '0x2000000', r9: '0xfe000', r10: '0x13', r11: `0x${(0x50000 + 4096 * (v + 1) - 64).toString(16)}`, r12: '0x71', // 'q'
    }, `vCPU ${v}`);
  }
  const one = jsonLines((await pinbox(['run', '--policy', policy, '--image', image(READ_BLOCK), '--json'])).out).at(-1)!;
  t.like(one.regs, { rcx: '0x0', rdx: '0x1', rsi: '0x2', r8: '0x1000000', r10: '0x0', r12: '0x0' }, 'no --append: an empty line; v2; 16 MiB');
});

test('--append too long for its page, or with a NUL, is refused with exit 2', async (t) => {
  const r = await pinbox(['run', '--policy', policy, '--image', image([HLT]), '--append', 'x'.repeat(4096)]);
  t.is(r.code, 2);
  t.regex(r.err, /--append: the command line is 4096 bytes; at most 4095/);
});

/**
 * vCPU 0 spins until vCPU 1 sets a flag: with the vCPUs run one after the other it would never end;
 * in turns it does, the same way every time.
 *   mov eax,[rdi+12] ; test eax,eax ; jnz b
 *   a: cmp byte [0x90000],0 ; je a ; hlt
 *   b: mov byte [0x90000],1 ; hlt
 */
const SPIN = [
  0x8b, 0x47, 0x0c, 0x85, 0xc0, 0x75, 0x0b,
  0x80, 0x3c, 0x25, 0x00, 0x00, 0x09, 0x00, 0x00, 0x74, 0xf6, HLT,
  0xc6, 0x04, 0x25, 0x00, 0x00, 0x09, 0x00, 0x01, HLT,
];

test('--vcpus N runs the vCPUs in turn: one may wait for another, and the run is the same every time', async (t) => {
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const r = await pinbox(['run', '--policy', policy, '--image', image(SPIN), '--vcpus', '2', '--json']);
    t.is(r.code, 0, r.err);
    runs.push(jsonLines(r.out).filter((l) => l.name === 'stop' || l.name === 'vcpu_halted').map((l) => (l.name === 'stop' ? [l.vcpu, l.reason, l.regs] : [l.vcpu, l.name])));
  }
  t.deepEqual(runs[0]!.slice(0, 2), [[1, 'vcpu_halted'], [0, 'vcpu_halted']], 'vCPU 1 halts first: vCPU 0 waited for it');
  t.deepEqual(runs[0], runs[1]);
  const text = await pinbox(['run', '--policy', policy, '--image', image(SPIN), '--vcpus', '2']);
  t.regex(text.out, /on VM "run" \(2 vCPUs\), vCPUs 0-1 in turn from 0x100000/);
  t.regex(text.out, /vCPU 0 stopped: the program executed HLT[\s\S]*vCPU 1 stopped: the program executed HLT/);
  // Alone, vCPU 0 waits for nobody: its budget runs out (per vCPU), and the run says 1.
  const alone = await pinbox(['run', '--policy', policy, '--image', image(SPIN), '--budget', '50000']);
  t.is(alone.code, 1);
  t.regex(alone.out, /the instruction budget ran out/);
});

test('an exit port write on one vCPU ends the run at once; a vCPU still running says so', async (t) => {
  // mov eax,[rdi+12] ; test eax,eax ; jnz b ; a: jmp a ; b: mov eax,7 ; out 0xf4,eax
  const r = await pinbox(['run', '--policy', policy, '--image', image([0x8b, 0x47, 0x0c, 0x85, 0xc0, 0x75, 0x02, 0xeb, 0xfe, ...exitWith(7)]), '--vcpus', '2', '--json']);
  t.is(r.code, 15);
  const stops = jsonLines(r.out).filter((l) => l.name === 'stop');
  t.like(stops, [{ vcpu: 0, reason: 'running', regs: { rip: '0x100007' } }, { vcpu: 1, reason: 'exit', exit: { value: 7, status: 15 } }]);
});

/**
 * A guest that loads the conventional GDT (null, code 0x08, data 0x10), reloads CS (by IRETQ:
 * the core has no far RET yet, and it loads SS 0x10 too), then RDMSRs an MSR that does not exist with the boot fault record armed:
 * the #GP is delivered through the boot IDT (whose gates name 0x08) and fixed up. Registers at
 * the HLT: RBX the record's count (1), RCX its vector (13).
 */
const FAULT_RECORD = 0x50fc0; // vCPU 0: 0x50000 + 4096 - 64
const le32 = (v: number) => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
const OWN_GDT = [
  0x0f, 0x01, 0x15, ...le32(137), //               0: lgdt [rip+137] (gdtr at 144)
  0x48, 0x89, 0xe0, //                             7: mov rax, rsp
  0x6a, 0x10, 0x50, 0x9c, 0x6a, 0x08, //          10: push 0x10 (SS) ; push rax (RSP) ; pushfq ; push 0x08 (CS)
  0x48, 0x8d, 0x05, ...le32(3), //                16: lea rax, [rip+3] (26)
  0x50, //                                        23: push rax (RIP)
  0x48, 0xcf, //                                  24: iretq: CS 0x08 from the new GDT
  0xb8, 0x10, 0, 0, 0, //                         26: mov eax, 0x10
  0x90, 0x90, 0x90, 0x90, 0x90, 0x90, //          31: (mov ds/es, eax: the core has no MOV to Sreg yet; SS came from the IRETQ)
  0x48, 0xc7, 0x04, 0x25, ...le32(FAULT_RECORD), 0, 0, 0, 0, //      37: mov qword [count], 0
  0x48, 0x8d, 0x05, ...le32(15), //                                  49: lea rax, [rip+15] (71)
  0x48, 0x89, 0x04, 0x25, ...le32(FAULT_RECORD + 24), //             56: mov [fixup], rax
  0xb9, ...le32(0x12345), //                                         64: mov ecx, 0x12345
  0x0f, 0x32, //                                                     69: rdmsr
  0x48, 0x8b, 0x1c, 0x25, ...le32(FAULT_RECORD), //                  71: mov rbx, [count]
  0x48, 0x8b, 0x0c, 0x25, ...le32(FAULT_RECORD + 8), //              79: mov rcx, [vector]
  0x48, 0xc7, 0x04, 0x25, ...le32(FAULT_RECORD), 0, 0, 0, 0, //      87: mov qword [count], 0
  0x48, 0xc7, 0x04, 0x25, ...le32(FAULT_RECORD + 24), 0, 0, 0, 0, // 99: mov qword [fixup], 0
  HLT, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, //           111: hlt, padding
  ...[0, 0, 0, 0, 0, 0, 0, 0], //                                   120: the GDT: null
  ...[0xff, 0xff, 0, 0, 0, 0x9b, 0xaf, 0x00], //                    128: 0x08 code, 64-bit, DPL 0
  ...[0xff, 0xff, 0, 0, 0, 0x93, 0xcf, 0x00], //                    136: 0x10 data
  23, 0, ...le32(0x100000 + 120), 0, 0, 0, 0, //                    144: gdtr: limit 23, base
];

test('a guest with the conventional GDT (code 0x08, data 0x10) keeps the boot IDT: a #GP is fixed up, not a triple fault', async (t) => {
  const r = await pinbox(['run', '--policy', policy, '--image', image(OWN_GDT), '--json']);
  const stop = jsonLines(r.out).at(-1)!;
  t.is(stop.reason, 'hlt', JSON.stringify(stop));
  t.like(stop.regs, { rbx: '0x1', rcx: '0xd', rip: `0x${(0x100000 + 112).toString(16)}` });
  t.is(r.code, 0);
});
