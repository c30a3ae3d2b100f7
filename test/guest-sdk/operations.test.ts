/**
 * Each Guest operation against the scripted host: what the host receives (params, 64-bit values
 * as bigints), what the caller gets back, at the 64-bit edges, and the Safe forms with their
 * exits.
 */
import test from 'ava';
import { MSR_EFER, MSR_IA32_TSC, X86_CR0_TS } from '../../protocol/index.js';
import { asSigned, kvmErrno } from '../../guest-sdk/index.js';
import { RET_EINVAL, RET_ENOSYS, connectedGuest } from './scripted-host.js';

const U64_MAX = (1n << 64n) - 1n;

test('rdmsr sends the index and returns EDX:EAX as a bigint; wrmsr sends the value', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(MSR_EFER, { value: 0xd01n });
  t.is(await guest.rdmsr(MSR_EFER), 0xd01n);
  t.is(await guest.wrmsr(MSR_EFER, 0xd00n), undefined);
  t.is(host.msrs.get(MSR_EFER)!.value, 0xd00n);
  t.deepEqual(host.log, [
    { op: 'rdmsr', index: MSR_EFER },
    { op: 'wrmsr', index: MSR_EFER, value: 0xd00n },
  ]);
  guest.close();
});

test('64-bit values survive the round trip at every encoding edge', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(MSR_IA32_TSC, { value: 0n });
  // The shortest-form boundaries of PROTOCOL.md §2: 2^32-1 | 2^32 (int64) | 2^63-1 | 2^63 (uint64) | 2^64-1.
  for (const v of [0n, 0x7fn, 0xffff_ffffn, 1n << 32n, (1n << 63n) - 1n, 1n << 63n, U64_MAX]) {
    await guest.wrmsr(MSR_IA32_TSC, v);
    t.is(host.msrs.get(MSR_IA32_TSC)!.value, v, `host received ${v}`);
    const back = await guest.rdmsr(MSR_IA32_TSC);
    t.is(typeof back, 'bigint');
    t.is(back, v);
  }
  guest.close();
});

test('a safe-integer number is accepted for a 64-bit input and arrives as the same value', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(MSR_IA32_TSC, { value: 0n });
  await guest.wrmsr(MSR_IA32_TSC, Number.MAX_SAFE_INTEGER);
  t.is(host.msrs.get(MSR_IA32_TSC)!.value, 2n ** 53n - 1n);
  t.is(await guest.rdmsr(MSR_IA32_TSC), 2n ** 53n - 1n);
  guest.close();
});

test('readCr / writeCr / lmsw / clts act on the control registers', async (t) => {
  const { guest, host } = await connectedGuest();
  t.is(await guest.readCr(0), 0x80050033n);
  await guest.writeCr(4, 0x1_0000_06f0n);
  t.is(host.cr.get(4), 0x1_0000_06f0n);
  t.is(await guest.readCr(4), 0x1_0000_06f0n);
  await guest.writeCr(0, 0x80050033n | X86_CR0_TS);
  await guest.clts();
  t.is(await guest.readCr(0), 0x80050033n);
  // LMSW 0xfff0 loads CR0[3:0] = 0 but cannot clear PE.
  await guest.lmsw(0xfff0);
  t.is(await guest.readCr(0), 0x80050031n);
  t.deepEqual(host.log.map((r) => r.op), ['readCr', 'writeCr', 'readCr', 'writeCr', 'clts', 'readCr', 'lmsw', 'readCr']);
  t.deepEqual(host.log[6], { op: 'lmsw', value: 0xfff0 });
  guest.close();
});

test('cpuid sends leaf and subleaf (or none) and returns the four registers as numbers', async (t) => {
  const { guest, host } = await connectedGuest();
  host.cpuidLeaves.set('7.0', [0, 0xffff_ffff, 0x4, 0x8000_0000]);
  host.cpuidLeaves.set('1.0', [0x806c1, 0, 0x80000000, 0]);
  t.deepEqual(await guest.cpuid(7, 0), { eax: 0, ebx: 0xffff_ffff, ecx: 0x4, edx: 0x8000_0000 });
  t.deepEqual(await guest.cpuid(1), { eax: 0x806c1, ebx: 0, ecx: 0x80000000, edx: 0 });
  t.deepEqual(await guest.cpuid(1, { cpl: 3 }), { eax: 0x806c1, ebx: 0, ecx: 0x80000000, edx: 0 });
  t.deepEqual(host.log, [
    { op: 'cpuid', leaf: 7, subleaf: 0 },
    { op: 'cpuid', leaf: 1 },
    { op: 'cpuid', leaf: 1, cpl: 3 },
  ]);
  guest.close();
});

test('hypercall sends nr, a0..a3 and options; RAX comes back as a u64, read with asSigned and kvmErrno', async (t) => {
  const { guest, host } = await connectedGuest();
  const ret = await guest.hypercall(13, 4, 0x1_00b1_0800n, 0);
  // Bit 32 (FRED) is not in the v2 pinnable mask: -KVM_EINVAL (docs/heki.md §1.4).
  t.is(ret, 0xffff_ffff_ffff_ffean);
  t.is(ret, RET_EINVAL);
  t.is(asSigned(ret), -22n);
  t.is(kvmErrno(ret), 'EINVAL');
  t.is(await guest.hypercall(99n, { insn: 'vmmcall' }), RET_ENOSYS);
  t.is(kvmErrno(await guest.hypercall(13, 0, 0, 1, { cpl: 3 })), 'EPERM');
  t.deepEqual(host.log, [
    { op: 'hypercall', nr: 13n, args: [4n, 0x1_00b1_0800n, 0n] },
    { op: 'hypercall', nr: 99n, insn: 'vmmcall' },
    { op: 'hypercall', nr: 13n, args: [0n, 0n, 1n], cpl: 3 },
  ]);
  guest.close();
});

test('asSigned and kvmErrno read a kernel long from RAX', (t) => {
  t.is(asSigned(U64_MAX), -1n);
  t.is(asSigned(1n << 63n), -(1n << 63n));
  t.is(asSigned((1n << 63n) - 1n), (1n << 63n) - 1n);
  t.is(asSigned(1n), 1n);
  // include/uapi/linux/kvm_para.h: ENOSYS 1000, EFAULT 14, EINVAL 22, E2BIG 7, EPERM 1, EOPNOTSUPP 95.
  t.is(kvmErrno(2n ** 64n - 1000n), 'ENOSYS');
  t.is(kvmErrno(2n ** 64n - 14n), 'EFAULT');
  t.is(kvmErrno(2n ** 64n - 7n), 'E2BIG');
  t.is(kvmErrno(2n ** 64n - 1n), 'EPERM');
  t.is(kvmErrno(2n ** 64n - 95n), 'EOPNOTSUPP');
  t.is(kvmErrno(0n), undefined);
  t.is(kvmErrno(1n), undefined);
  t.is(kvmErrno(22n), undefined, 'a positive 22 is a result, not -EINVAL');
  t.is(kvmErrno(2n ** 64n - 5n), undefined, '-5 is no KVM_E* code');
});

test('exec sends the code, registers and budget; the result has stop, all registers and the fault', async (t) => {
  const { guest, host } = await connectedGuest();
  const ran = await guest.exec(new Uint8Array([0x90, 0x90]), { regs: { rax: 1n, r15: U64_MAX, rsi: 7 }, budget: 10 });
  t.is(ran.stop, 'end');
  t.is(ran.regs.rax, 1n);
  t.is(ran.regs.r15, U64_MAX);
  t.is(ran.regs.rsi, 7n);
  t.is(ran.regs.rip, 0x1002n);
  t.is(ran.fault, undefined);
  t.deepEqual(host.log[0], { op: 'exec', code: new Uint8Array([0x90, 0x90]), regs: { rax: 1n, rsi: 7n, r15: U64_MAX }, budget: 10 });

  const faulted = await guest.exec(new Uint8Array([0x0f, 0x0b]), { cpl: 3 });
  t.is(faulted.stop, 'fault');
  t.deepEqual(faulted.fault, { vector: 6 });
  t.deepEqual(host.log[1], { op: 'exec', code: new Uint8Array([0x0f, 0x0b]), cpl: 3 });
  guest.close();
});

test('Safe forms return the value or the fault, each with the exits the action caused', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(0x10, { value: 5n });
  host.msrs.set(0x1a0, { value: 1n, filtered: true });
  t.deepEqual(await guest.rdmsrSafe(0x10), { ok: true, value: 5n, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.rdmsrSafe(0x1a0), {
    ok: false,
    fault: { vector: 13, errorCode: 0 },
    exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: 0x1a0, data: 0n, error: 1 } }],
    exitsDropped: 0,
  });
  t.deepEqual(await guest.wrmsrSafe(0x1a0, 3n), {
    ok: false,
    fault: { vector: 13, errorCode: 0 },
    exits: [{ reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'FILTER', index: 0x1a0, data: 3n, error: 1 } }],
    exitsDropped: 0,
  });
  t.deepEqual(await guest.wrmsrSafe(0x10, 6n), { ok: true, value: undefined, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.readCrSafe(4, { cpl: 3 }), { ok: false, fault: { vector: 13, errorCode: 0 }, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.writeCrSafe(4, 0n), { ok: true, value: undefined, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.lmswSafe(1, { cpl: 3 }), { ok: false, fault: { vector: 13, errorCode: 0 }, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.cltsSafe(), { ok: true, value: undefined, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.cpuidSafe(0), { ok: true, value: { eax: 0, ebx: 0, ecx: 0, edx: 0 }, exits: [], exitsDropped: 0 });
  t.deepEqual(await guest.hypercallSafe(13, 0, 0, 1), { ok: true, value: 1n, exits: [], exitsDropped: 0 });
  guest.close();
});

test('the Guest reports the VM, vCPU, profile and server of its hello', async (t) => {
  const { guest } = await connectedGuest();
  t.is(guest.vm, 'default');
  t.is(guest.vcpu, 0);
  t.is(guest.vcpus, 2);
  t.is(guest.profile, 'v2');
  t.is(guest.server, 'scripted');
  t.false(guest.closed);
  guest.close();
  t.true(guest.closed);
});
