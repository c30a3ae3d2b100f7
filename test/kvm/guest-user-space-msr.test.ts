/**
 * KVM_CAP_X86_USER_SPACE_MSR with real RDMSR/WRMSR on the core, without a filter:
 * docs/msr-filter.md §7 cases 1, 2 and 25, the exit reason taken from the in-kernel result
 * (§2.4, §3), the completion rules (§1.4, §2.4: a WRMSR reply is not performed by KVM; only
 * a __u8 can be in `error`), and the one negative internal error (§3, §8.6).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Guest } from './guest.js';

const I = abi.KVM_MSR_EXIT_REASON_INVAL;
const U = abi.KVM_MSR_EXIT_REASON_UNKNOWN;
const F = abi.KVM_MSR_EXIT_REASON_FILTER;
const GP = abi.GP_VECTOR;
const ONES = (1n << 64n) - 1n;

function guest(mask: number): Guest {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [mask]);
  return g;
}

test('case 1: no filter, M = U: RDMSR 0xDEADBEEF exits UNKNOWN with index, data 0 and error 0', (t) => {
  const g = guest(U);
  const op = g.start('rdmsr', { rcx: 0xdeadbeefn });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.exit_reason, 29);
  t.deepEqual({ ...exit.msr }, { error: 0, reason: U, index: 0xdeadbeef, data: 0n });
  t.is(g.regs().rip, BigInt(op.entry));
});

test('case 2: no filter, M = 0: RDMSR 0xDEADBEEF is #GP(0) with RIP on the RDMSR, and no exit', (t) => {
  const g = guest(0);
  const op = g.start('rdmsr', { rcx: 0xdeadbeefn });
  const out = g.finish();
  t.deepEqual(out.fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(out.faults, 1);
});

test('case 25: a refused mask (8, then 1 << 40) leaves the old one; 7 and 0 are accepted, 0 turns exits off', (t) => {
  const g = guest(U);
  const cap = abi.KVM_CAP_X86_USER_SPACE_MSR;
  t.throws(() => g.vm.enableCap(cap, [8]), { instanceOf: KvmError, code: 'EINVAL' });
  t.throws(() => g.vm.enableCap(cap, [1n << 40n]), { instanceOf: KvmError, code: 'EINVAL' });
  g.start('rdmsr', { rcx: 0xdeadbeefn });
  t.is(g.runExpecting('KVM_EXIT_X86_RDMSR').msr.reason, U, 'still M = U');
  g.finish();
  t.notThrows(() => g.vm.enableCap(cap, [7]));
  t.notThrows(() => g.vm.enableCap(cap, [0]));
  const op = g.start('rdmsr', { rcx: 0xdeadbeefn });
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
});

test('the reason is the in-kernel result alone: a refused read is INVAL, an unknown write UNKNOWN', (t) => {
  const g = guest(I | U | F);
  // SPEC_CTRL without SPEC_CTRL in the guest CPUID: the read returns 1.
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_SPEC_CTRL) });
  const read = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.deepEqual([read.msr.reason, read.msr.index], [I, abi.MSR_IA32_SPEC_CTRL]);
  g.finish();
  g.start('wrmsr', { rcx: 0x474f4f00n, rax: 0xffff_ffff_8765_4321n, rdx: 0xffff_ffff_0000_0abcn });
  const write = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.deepEqual({ ...write.msr }, { error: 0, reason: U, index: 0x474f4f00, data: 0xabc_8765_4321n });
});

test('a WRMSR reply with error 0 retires the instruction; KVM does not perform the write', (t) => {
  const g = guest(I);
  // An invalid PAT write exits INVAL; user space "accepts" it.
  const op = g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_CR_PAT), rax: 0x02n, rdx: 0n });
  g.runExpecting('KVM_EXIT_X86_WRMSR');
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rip, BigInt(op.epilogue + 1));
  t.deepEqual(g.vcpu().getMsrs([abi.MSR_IA32_CR_PAT]), [{ index: abi.MSR_IA32_CR_PAT, data: abi.MSR_IA32_CR_PAT_DEFAULT }]);
});

test('a reply whose error is not a __u8, or whose data is not a u64, makes KVM_RUN fail with EINVAL and changes nothing', (t) => {
  const g = guest(U);
  const op = g.start('rdmsr', { rcx: 0xdeadbeefn, rax: ONES });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  for (const error of [256, -1, 1.5]) {
    exit.msr.error = error;
    t.throws(() => g.run(), { instanceOf: KvmError, code: 'EINVAL', message: /msr\.error/ });
  }
  exit.msr.error = 0;
  for (const data of [1n << 64n, -1n]) {
    exit.msr.data = data;
    t.throws(() => g.run(), { instanceOf: KvmError, code: 'EINVAL', message: /msr\.data/ });
  }
  t.is(g.regs().rip, BigInt(op.entry));
  t.is(g.regs().rax, ONES);
  // The completion is still pending: a valid reply now finishes the RDMSR.
  exit.msr.data = 0x1234n;
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rax, 0x1234n);
});

test('PV_EOI_EN at a GPA outside memory is KVM\'s only negative error: INVAL exit if asked, else KVM_RUN fails with EFAULT', (t) => {
  const outside = BigInt(16 * 1024 * 1024 + 0x1000) | abi.KVM_MSR_ENABLED;
  const regs = { rcx: BigInt(abi.MSR_KVM_PV_EOI_EN), rax: outside & 0xffff_ffffn, rdx: outside >> 32n };
  const asked = guest(I);
  asked.start('wrmsr', regs);
  const exit = asked.runExpecting('KVM_EXIT_X86_WRMSR');
  t.deepEqual([exit.msr.reason, exit.msr.data], [I, outside]);

  const g = guest(U);
  const op = g.start('wrmsr', regs);
  t.throws(() => g.run(), { instanceOf: KvmError, code: 'EFAULT' });
  t.is(g.regs().rip, BigInt(op.entry), 'the WRMSR is neither retired nor faulted');
  t.is(g.faultRecord().count, 0);
});
