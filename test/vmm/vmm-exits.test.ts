/**
 * User-space exits as the VMM answers them: filtered MSR accesses answered by the policy's
 * msrHandlers, an in-process handler, a request's own hook and a control override — the
 * answer decides what the guest sees (docs/msr-filter.md §1.4: error ≠ 0 is #GP, data is what
 * RDMSR returns) — and Heki configure/denial exits recorded (docs/heki.md §3).
 */
import test from 'ava';
import { GP_VECTOR, MSR_IA32_TSC, X86_CR0_WP, X86_CR4_SMAP, X86_CR4_SMEP } from '../../protocol/abi.js';
import type { MsrExitContext } from '../../host/vmm/index.js';
import { testVmm } from './vmm-support.js';

const GP0 = { vector: GP_VECTOR, errorCode: 0 };
const MSR = 0xda0;
const filtered = {
  msrFilter: { default: 'allow', deny: ['0xda0', '0xda1', '0xda2'] },
  msrHandlers: { '0xda0': { read: '0xaabbccdd11223344', write: 'accept' }, '0xda1': { write: 'store' } },
};
/** A read exit as reported: `data` is the answer; `exitData` the 0 KVM put in kvm_run.msr.data (docs/msr-filter.md §7 #3), sent when they differ. */
const readExit = (data: bigint, error: number, index = MSR) => ({ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index, data, error, ...(data !== 0n && { exitData: 0n }) } });
const writeExit = (data: bigint, error: number, index = MSR) => ({ reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'FILTER', index, data, error } });

test('a filtered RDMSR exits; the policy value is what the guest reads (EDX:EAX), and the exit is reported', async (t) => {
  const { vm, named } = testVmm(filtered);
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR }), { value: 0xaabbccdd11223344n, exits: [readExit(0xaabbccdd11223344n, 0)] });
  t.deepEqual(await vm.perform(0, { op: 'wrmsr', index: MSR, value: 5n }), { exits: [writeExit(5n, 0)] });
  t.like(named('msr_exit_reply')[0]!.fields, { write: false, index: MSR, reason: 'filter', error: 0, source: 'value' });
});

test('"store" handlers keep the value per vCPU; an MSR without a handler is denied: error 1, #GP(0)', async (t) => {
  const { vm } = testVmm({ ...filtered, vcpus: 2 });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xda1 }), { value: 0n, exits: [readExit(0n, 0, 0xda1)] });
  await vm.perform(0, { op: 'wrmsr', index: 0xda1, value: 0x1234_5678_9abcn });
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xda1 }), { value: 0x1234_5678_9abcn });
  t.like(await vm.perform(1, { op: 'rdmsr', index: 0xda1 }), { value: 0n }, 'vCPU 1 has its own');
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xda2 }), { fault: GP0, exits: [readExit(0n, 1, 0xda2)] });
  t.deepEqual(await vm.perform(0, { op: 'wrmsr', index: 0xda2, value: 9n }), { fault: GP0, exits: [writeExit(9n, 1, 0xda2)] });
});

test('an in-process handler answers first (sync or async); undefined leaves the exit to the policy', async (t) => {
  const seen: MsrExitContext[] = [];
  const { vm, named } = testVmm(filtered, {
    msrHandler: (exit) => {
      seen.push(exit);
      if (exit.index === 0xda2) return Promise.resolve({ error: 0, data: 0x42n });
      return exit.write ? { error: 1, data: 0n } : undefined;
    },
  });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xda2 }), { value: 0x42n, exits: [readExit(0x42n, 0, 0xda2)] });
  t.like(await vm.perform(0, { op: 'rdmsr', index: MSR }), { value: 0xaabbccdd11223344n }, 'the policy answered');
  t.deepEqual(await vm.perform(0, { op: 'wrmsr', index: MSR, value: 7n }), { fault: GP0, exits: [writeExit(7n, 1)] });
  t.like(seen[2], { vm: 'default', vcpu: 0, write: true, index: MSR, reason: 'FILTER', data: 7n });
  t.deepEqual(named('msr_exit_reply').map((e) => e.fields.source), ['function', 'value', 'function']);
});

test('a handler that fails fails the request (internal), and the vCPU comes back for the next one', async (t) => {
  const { vm, named } = testVmm(filtered, { msrHandler: () => { throw new Error('handler bug'); } });
  await t.throwsAsync(vm.perform(0, { op: 'rdmsr', index: MSR }), { message: /handler bug/ });
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { value: 0xd01n });
  t.deepEqual(named('vcpu_init').map((e) => e.fields.cause), ['create', 'abort'], 'booted again before the next request');
});

test('a request\'s own onExit hook sees kvm_run before the answer and may answer; "untouched" reads 0', async (t) => {
  const { vm } = testVmm(filtered);
  const seen: unknown[] = [];
  const r = await vm.perform(0, { op: 'rdmsr', index: MSR }, {
    onExit: (exit) => {
      seen.push(exit);
      return { error: 0, data: 0x99n };
    },
  });
  t.deepEqual(seen, [{ reason: 'KVM_EXIT_X86_RDMSR', exitReason: 29, msr: { reason: 4, index: MSR, data: 0n } }]);
  t.deepEqual(r, { value: 0x99n, exits: [readExit(0x99n, 0)] });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR }, { onExit: () => 'untouched' }), { value: 0n, exits: [readExit(0n, 0)] });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR }, { onExit: async () => ({ error: 255, data: 0n }) }), { fault: GP0, exits: [readExit(0n, 255)] });
});

test('a control override (setMsrExitReply) answers every MSR exit until cleared', async (t) => {
  const { vm } = testVmm(filtered);
  vm.setMsrExitReply({ error: 0, data: 0x77n });
  t.like(await vm.perform(0, { op: 'rdmsr', index: 0xda2 }), { value: 0x77n });
  vm.setMsrExitReply({ error: 1, data: 0n });
  t.like(await vm.perform(0, { op: 'rdmsr', index: MSR }), { fault: GP0 });
  vm.setMsrExitReply(null);
  t.like(await vm.perform(0, { op: 'rdmsr', index: MSR }), { value: 0xaabbccdd11223344n });
});

test('without a FILTER exit in userSpaceMsr, a filtered access is #GP(0) with no exit (docs/msr-filter.md §7 case 7)', async (t) => {
  const { vm } = testVmm({ ...filtered, userSpaceMsr: [] });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR }), { fault: GP0, exits: [] });
});

test('an UNKNOWN MSR exits with reason UNKNOWN when asked (docs/msr-filter.md §7 case 1)', async (t) => {
  const { vm } = testVmm({ userSpaceMsr: ['unknown'], msrHandlers: { '0xdeadbeef': { read: 5 } } });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: 0xdeadbeef }), {
    value: 5n, exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'UNKNOWN', index: 0xdeadbeef, data: 5n, error: 0, exitData: 0n } }],
  });
});

test('Heki: a pin is a CONFIGURE exit and a heki_configure event; a denied CR4 write is #GP(0), a DENIAL exit and a heki_denial event', async (t) => {
  const { vm, named } = testVmm();
  const pin = await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, X86_CR4_SMEP | X86_CR4_SMAP] });
  t.deepEqual(pin, { ret: 0n, exits: [{ reason: 'KVM_EXIT_HEKI_CONFIGURE', heki: { reason: 'CR4', value: X86_CR4_SMEP | X86_CR4_SMAP } }] });
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: X86_CR4_SMEP | X86_CR4_SMAP });
  const cr4 = ((await vm.perform(0, { op: 'readCr', cr: 4 })) as { value: bigint }).value;
  const attempt = cr4 & ~X86_CR4_SMEP;
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: attempt }), {
    fault: GP0, exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL', heki: { reason: 'CR4', value: attempt } }],
  });
  t.like(await vm.perform(0, { op: 'readCr', cr: 4 }), { value: cr4 }, 'CR4 unchanged');
  const [denial] = named('heki_denial');
  t.like(denial, { vm: 'default', vcpu: 0, fields: { reason: 2, cr: 4, cr_value: attempt, path: 'exit', action: 'log' } });
  t.is(typeof denial!.rip, 'bigint');
  t.like(named('heki_configure')[0], { fields: { reason: 2, cr: 4, cr_pinned: X86_CR4_SMEP | X86_CR4_SMAP } });
});

test('Heki without denial exits: KVM injects #GP itself, and the VMM still records the denial (path in-kernel)', async (t) => {
  const { vm, named } = testVmm({ heki: { denialExits: ['cr4'] } });
  await vm.perform(0, { op: 'hypercall', nr: 13n, args: [0n, X86_CR0_WP] });
  const cr0 = ((await vm.perform(0, { op: 'readCr', cr: 0 })) as { value: bigint }).value;
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 0, value: cr0 & ~X86_CR0_WP }), { fault: GP0, exits: [] }, 'no exit for CR0');
  t.like(named('heki_denial'), [{ vcpu: 0, fields: { reason: 1, cr: 0, cr_value: cr0 & ~X86_CR0_WP, path: 'in-kernel', action: 'log' } }]);
  t.is(typeof named('heki_denial')[0]!.rip, 'bigint', 'with the RIP of the MOV');
});

test('Heki pins are per VM: a pin set on vCPU 0 denies the write on vCPU 1', async (t) => {
  const { vm } = testVmm({ vcpus: 2 });
  await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, X86_CR4_SMEP] });
  const cr4 = ((await vm.perform(1, { op: 'readCr', cr: 4 })) as { value: bigint }).value;
  t.like(await vm.perform(1, { op: 'writeCr', cr: 4, value: cr4 & ~X86_CR4_SMEP }), { fault: GP0 });
});

test('IN reads all-ones and OUT is dropped; both are reported as KVM_EXIT_IO', async (t) => {
  const { vm } = testVmm();
  // mov dx, 0x80 ; mov al, 0x5a ; out dx, al ; in al, 0x60
  const r = await vm.perform(0, { op: 'exec', code: Uint8Array.from([0x66, 0xba, 0x80, 0x00, 0xb0, 0x5a, 0xee, 0xe4, 0x60]) });
  t.like(r, { stop: 'end' });
  t.is((r as { regs: { rax: bigint } }).regs.rax & 0xffn, 0xffn);
  t.deepEqual((r as { exits: unknown }).exits, [
    { reason: 'KVM_EXIT_IO', io: { port: 0x80, size: 1, direction: 'out', value: 0x5a } },
    { reason: 'KVM_EXIT_IO', io: { port: 0x60, size: 1, direction: 'in', value: 0xff } },
  ]);
});

test('MSR exits beyond 1024 in one request are counted in exitsDropped', async (t) => {
  const { vm } = testVmm({ msrFilter: { default: 'allow', deny: [`0x${MSR_IA32_TSC.toString(16)}`] }, msrHandlers: { '0x10': { read: 1 } } });
  // mov ecx, 0x10 ; mov ebx, 1100 ; l: rdmsr ; dec ebx ; jnz l
  const loop = Uint8Array.from([0xb9, 0x10, 0, 0, 0, 0xbb, 0x4c, 0x04, 0, 0, 0x0f, 0x32, 0xff, 0xcb, 0x75, 0xfa]);
  const r = (await vm.perform(0, { op: 'exec', code: loop })) as { stop: string; exits: unknown[]; exitsDropped?: number };
  t.is(r.stop, 'end');
  t.is(r.exits.length, 1024);
  t.is(r.exitsDropped, 1100 - 1024);
});
