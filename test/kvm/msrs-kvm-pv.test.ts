/**
 * KVM's PV MSRs (kvm_{set,get}_msr_common() in arch/x86/kvm/msrs.c): feature gating by
 * guest_pv_has() — binding only under KVM_CAP_ENFORCE_PV_FEATURE_CPUID — and each MSR's
 * reserved bits; kvm_write_wall_clock().
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { INVALID, MsrHarness, UNSUPPORTED } from './msr-harness.js';

const PV_MSRS = [
  abi.MSR_KVM_WALL_CLOCK, abi.MSR_KVM_SYSTEM_TIME, abi.MSR_KVM_WALL_CLOCK_NEW, abi.MSR_KVM_SYSTEM_TIME_NEW,
  abi.MSR_KVM_ASYNC_PF_EN, abi.MSR_KVM_STEAL_TIME, abi.MSR_KVM_PV_EOI_EN, abi.MSR_KVM_POLL_CONTROL,
  abi.MSR_KVM_ASYNC_PF_INT, abi.MSR_KVM_ASYNC_PF_ACK,
];

test('without enforcement, PV MSRs work whatever CPUID 0x40000001 says (guest_pv_has() is true)', (t) => {
  const h = new MsrHarness({ cpuid: { kvmPvFeatures: 0 } });
  for (const index of PV_MSRS) t.is(h.read(index)[0], 0, `0x${index.toString(16)}`);
});

test('with enforcement, a PV MSR whose feature bit is missing is UNKNOWN for the guest', (t) => {
  const h = new MsrHarness({ cpuid: { kvmPvFeatures: 0 }, pvEnforce: true });
  for (const index of PV_MSRS) {
    t.is(h.read(index)[0], UNSUPPORTED, `read 0x${index.toString(16)}`);
    t.is(h.write(index, 0n), UNSUPPORTED, `write 0x${index.toString(16)}`);
  }
});

test('host accesses to an advertised but unsupported MSR: reads give 0, writes of 0 succeed, other writes fail', (t) => {
  const h = new MsrHarness({ cpuid: { kvmPvFeatures: 0 }, pvEnforce: true });
  t.deepEqual(h.read(abi.MSR_KVM_STEAL_TIME, true), [0, 0n]);
  t.is(h.write(abi.MSR_KVM_STEAL_TIME, 0n, true), 0);
  t.is(h.write(abi.MSR_KVM_STEAL_TIME, 0x1000n, true), UNSUPPORTED);
});

test('each feature gates its own MSRs (CLOCKSOURCE: 0x11/0x12; CLOCKSOURCE2: 0x4b564d00/01)', (t) => {
  const h = new MsrHarness({ cpuid: { kvmPvFeatures: 1 << abi.KVM_FEATURE_CLOCKSOURCE2 }, pvEnforce: true });
  t.is(h.read(abi.MSR_KVM_SYSTEM_TIME)[0], UNSUPPORTED);
  t.is(h.read(abi.MSR_KVM_SYSTEM_TIME_NEW)[0], 0);
  t.is(h.write(abi.MSR_KVM_SYSTEM_TIME_NEW, 0x5001n), 0);
  t.deepEqual(h.read(abi.MSR_KVM_SYSTEM_TIME_NEW), [0, 0x5001n]);
});

test('ASYNC_PF_EN: bits 5:4 reserved, delivery modes need their features, an enabled GPA must be in memory', (t) => {
  const h = new MsrHarness({ pvEnforce: true });
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_EN, 0x1000n | 0x10n), INVALID);
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_EN, 0x1000n | abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT), INVALID, 'no ASYNC_PF_VMEXIT by default');
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_EN, 0x1000n | abi.KVM_ASYNC_PF_DELIVERY_AS_INT | 1n), 0);
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_EN, (1n << 30n) | 1n), INVALID, 'GPA outside the 1 MiB of memory');
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_EN, 1n << 30n), 0, 'disabled: the GPA is not checked');
});

test('ASYNC_PF_INT takes a vector (bits 63:8 reserved); ASYNC_PF_ACK reads 0', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_INT, 0xecn), 0);
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_INT, 0x100n), INVALID);
  t.is(h.write(abi.MSR_KVM_ASYNC_PF_ACK, 1n), 0);
  t.deepEqual(h.read(abi.MSR_KVM_ASYNC_PF_ACK), [0, 0n]);
});

test('STEAL_TIME: bits 5:1 reserved; POLL_CONTROL: only bit 0, 1 at creation', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_KVM_STEAL_TIME, 0x2000n | 1n), 0);
  t.is(h.write(abi.MSR_KVM_STEAL_TIME, 0x2000n | 2n), INVALID);
  t.deepEqual(h.read(abi.MSR_KVM_POLL_CONTROL), [0, 1n]);
  t.is(h.write(abi.MSR_KVM_POLL_CONTROL, 0n), 0);
  t.is(h.write(abi.MSR_KVM_POLL_CONTROL, 2n), INVALID);
});

test('PV_EOI_EN: a misaligned address is INVAL; enabling it outside memory fails with -EFAULT, not 1', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_KVM_PV_EOI_EN, 0x1002n | 1n), INVALID);
  t.is(h.write(abi.MSR_KVM_PV_EOI_EN, 0x1004n | 1n), 0);
  t.is(h.write(abi.MSR_KVM_PV_EOI_EN, (1n << 32n) | 1n), -abi.Errno.EFAULT);
  t.is(h.write(abi.MSR_KVM_PV_EOI_EN, 1n << 32n), 0, 'disabled: no mapping needed');
});

test('WALL_CLOCK writes {version, sec, nsec} at the GPA with an even version, and per VM', (t) => {
  const h = new MsrHarness();
  const gpa = 0x3000;
  h.vm.memory.write32(gpa, 5); // an odd leftover version
  t.is(h.write(abi.MSR_KVM_WALL_CLOCK_NEW, BigInt(gpa)), 0);
  t.is(h.vm.memory.read32(gpa), 8, 'odd 5 → 6, then +1 while writing, +1 after');
  t.is(h.vm.memory.read32(gpa + 4), 1_700_000_000, 'seconds of the kvmclock epoch');
  t.is(h.vm.memory.read32(gpa + 8), 123_456_789);
  t.is(h.vm.wallClock, BigInt(gpa), 'kvm->arch.wall_clock');
  t.deepEqual(h.read(abi.MSR_KVM_WALL_CLOCK), [0, BigInt(gpa)], 'both wall-clock MSRs read the one per-VM value');
  t.is(h.write(abi.MSR_KVM_WALL_CLOCK, 1n << 40n), 0, 'outside memory: nothing written, no error');
});
