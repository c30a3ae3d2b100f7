/** `exec`: raw code in the vCPU's exec slot at CPL0 or CPL3, and why and where it stopped. */
import test from 'ava';
import { GP_VECTOR, UD_VECTOR } from '../../protocol/abi.js';
import { kernelStackTop, userExecSlot, userStackTop } from '../../host/vmm/boot/layout.js';
import { code, testVmm } from './vmm-support.js';

type ExecResult = { stop: string; regs: Record<string, bigint>; fault?: unknown; exits: unknown[] };
const KERNEL_SLOT = 0x100000n;

test('code that runs off its end stops with "end": RIP at the end, registers as the code left them, others 0', async (t) => {
  const { vm } = testVmm();
  // mov rax, 42 ; add rbx, rax
  const r = (await vm.perform(0, { op: 'exec', code: code(0x48, 0xc7, 0xc0, 42, 0, 0, 0, 0x48, 0x01, 0xc3), regs: { rbx: 100n } })) as ExecResult;
  t.is(r.stop, 'end');
  t.like(r.regs, { rax: 42n, rbx: 142n, rcx: 0n, r15: 0n, rip: KERNEL_SLOT + 10n, rsp: BigInt(kernelStackTop(0)) });
  t.deepEqual(r.exits, []);
});

test('a fault stops with "fault" and the registers as the faulting instruction found them', async (t) => {
  const { vm } = testVmm();
  // mov rax, 7 ; push rax ; ud2
  const r = (await vm.perform(0, { op: 'exec', code: code(0x48, 0xc7, 0xc0, 7, 0, 0, 0, 0x50, 0x0f, 0x0b) })) as ExecResult;
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, { vector: UD_VECTOR });
  t.like(r.regs, { rax: 7n, rip: KERNEL_SLOT + 8n, rsp: BigInt(kernelStackTop(0)) - 8n, rflags: 0x2n });
});

test('its own HLT stops with "hlt" (RIP past it); at CPL3 a HLT is #GP(0)', async (t) => {
  const { vm, named } = testVmm();
  const r = (await vm.perform(0, { op: 'exec', code: code(0x90, 0xf4, 0x90) })) as ExecResult;
  t.is(r.stop, 'hlt');
  t.is(r.regs.rip, KERNEL_SLOT + 2n);
  t.is(named('vcpu_halted').length, 1);
  const u = (await vm.perform(0, { op: 'exec', code: code(0xf4), cpl: 3 })) as ExecResult;
  t.deepEqual([u.stop, u.fault], ['fault', { vector: GP_VECTOR, errorCode: 0 }]);
});

test('CPL3 code runs on the user stack and ends through the done gate with its own registers', async (t) => {
  const { vm } = testVmm();
  // mov rax, rsp ; push 5
  const r = (await vm.perform(0, { op: 'exec', code: code(0x48, 0x89, 0xe0, 0x6a, 0x05), cpl: 3 })) as ExecResult;
  t.is(r.stop, 'end');
  t.is(r.regs.rax, BigInt(userStackTop(0)));
  t.is(r.regs.rsp, BigInt(userStackTop(0)) - 8n);
  t.is(r.regs.rflags, 0x2n);
  // mov rax, cr0 at CPL3: #GP(0), RIP at the MOV
  const f = (await vm.perform(0, { op: 'exec', code: code(0x90, 0x0f, 0x20, 0xc0), cpl: 3 })) as ExecResult;
  t.deepEqual(f.fault, { vector: GP_VECTOR, errorCode: 0 });
  t.is(f.regs.rip, BigInt(userExecSlot(1, 0).base + 1), 'one byte into the user slot: at the MOV');
});

test('code larger than the vCPU\'s exec slot is a limit error naming the slot', async (t) => {
  const { vm } = testVmm({ vcpus: 64 });
  await t.throwsAsync(vm.perform(0, { op: 'exec', code: new Uint8Array(65536).fill(0x90) }), { code: 'limit', message: /exec slot/ });
});
