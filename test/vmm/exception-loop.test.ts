/**
 * What the VMM makes of an exception loop (issue 9, finding 1): exec stops with
 * `stop: "exception_loop"` and the exception that loops in `fault`; any other op fails with
 * `exception_loop`, a message naming the vector and the handler address; the vCPU is booted
 * again and answers the next request; `pinbox run --budget 1000` returns with a stop line that
 * says so.
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinbox } from './cli-support.js';
import { testVmm } from './vmm-support.js';

/** The issue's bytes: mov rax,0x90e8; mov dword [rax],0xffff8000; mov rax,0xffff800000000000; mov al,[rax] */
const ISSUE_BYTES = Uint8Array.from(Buffer.from('48c7c0e8900000c7000080ffff48b8000000000080ffff8a00', 'hex'));

test('exec of the issue\'s bytes stops with exception_loop and #PF in fault; the next request runs', async (t) => {
  const { vm, named } = testVmm();
  const r = await vm.perform(0, { op: 'exec', code: ISSUE_BYTES });
  t.like(r, { stop: 'exception_loop', fault: { vector: 14, errorCode: 0x10 }, regs: { rip: 0xffff80000000e0e0n } });
  t.deepEqual(named('vcpu_init').map((e) => e.fields.cause), ['create']);
  // The broken gate is guest memory (the guest's own doing); the vCPU is booted again, and an op
  // that does not fault runs.
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { value: 0xd01n });
  t.deepEqual(named('vcpu_init').map((e) => e.fields.cause), ['create', 'abort']);
});

test('XD set in PML4E[0] (the boot mappings are global: INVLPG, not a CR3 reload, drops them): exec stops with exception_loop', async (t) => {
  const { vm } = testVmm();
  // mov eax,0x1000; bts qword [rax],63; mov eax,0x100000; invlpg [rax]; mov eax,0xe000; invlpg [rax]; jmp $+2; nop
  const code = Uint8Array.from(Buffer.from('b800100000480fba283fb8000010000f0138b800e000000f0138eb0090', 'hex'));
  t.like(await vm.perform(0, { op: 'exec', code }), { stop: 'exception_loop', fault: { vector: 14, errorCode: 0x11 } });
});

test('an op other than exec that meets a loop fails with exception_loop, naming the vector and the handler', async (t) => {
  const { vm } = testVmm();
  // Break the #GP and #PF gates (offset 63:32 := 0xffff8000) and end cleanly: the IDT stays broken.
  const breakGp = Uint8Array.from(Buffer.from('48c7c0d8900000c7000080ffff48c7c0e8900000c7000080ffff', 'hex'));
  t.like(await vm.perform(0, { op: 'exec', code: breakGp }), { stop: 'end' });
  const e = await t.throwsAsync(vm.perform(0, { op: 'rdmsr', index: 0x1234 }));
  t.is((e as { code?: string }).code, 'exception_loop');
  t.regex(e!.message, /rdmsr: vCPU 0 of VM "default" is stuck in an exception loop: vector 14 error code 0x10 is delivered to 0xffff80000000e0e0/);
});

test('pinbox run --budget 1000 on the issue\'s bytes returns, exit 1, and names the loop', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-loop-'));
  const policy = join(dir, 'policy.json');
  const image = join(dir, 'loop.bin');
  writeFileSync(policy, '{}');
  writeFileSync(image, ISSUE_BYTES);
  const r = await pinbox(['run', '--policy', policy, '--image', image, '--budget', '1000']);
  t.is(r.code, 1);
  t.regex(r.out, /stopped: the vCPU is stuck in an exception loop: #PF\(0x10\) is delivered to 0xffff80000000e0e0 over and over/);
  const json = await pinbox(['run', '--policy', policy, '--image', image, '--budget', '1000', '--json']);
  t.like(JSON.parse(json.out.trim().split('\n').at(-1)!), { name: 'stop', reason: 'exception_loop', fault: { vector: 14, errorCode: 16 } });
});
