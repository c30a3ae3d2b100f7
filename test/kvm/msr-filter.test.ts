/**
 * KVM_X86_SET_MSR_FILTER and kvm_msr_allowed(): docs/msr-filter.md §2.1–2.3 and the
 * filter-level conformance cases of §7 (numbers in test names). Expected results come from
 * docs/msr-filter.md's reading of msrs.c, not from our implementation.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Kvm } from '../../host/kvm/kvm.js';
import { kvmMsrAllowed, MsrFilter } from '../../host/kvm/msr-filter.js';
import { type MsrFilterRange, type MsrFilterSpec } from '../../host/kvm/api/msr-filter.js';
import type { VmArch } from '../../host/kvm/vm-arch.js';
import type { Vm } from '../../host/kvm/vm.js';

const R = abi.KVM_MSR_FILTER_READ as 1;
const W = abi.KVM_MSR_FILTER_WRITE as 2;
const ALLOW = abi.KVM_MSR_FILTER_DEFAULT_ALLOW;
const DENY = abi.KVM_MSR_FILTER_DEFAULT_DENY;

const bytes = (n: number, fill: number): Uint8Array => new Uint8Array(n).fill(fill);
const range = (flags: number, base: number, nmsrs: number, bitmap: Uint8Array | null = bytes(Math.ceil(nmsrs / 8) || 1, 0)): MsrFilterRange => ({ flags, base, nmsrs, bitmap });
const einval = { instanceOf: KvmError, code: 'EINVAL' } as const;
const efault = { instanceOf: KvmError, code: 'EFAULT' } as const;

/** The VM's installed filter (kvm->arch.msr_filter), read through the private field. */
function installed(vm: Vm): MsrFilter | null {
  return (vm['arch'] as VmArch).msrFilter;
}

test('case 15: a range whose base + nmsrs wraps in 32 bits is accepted and matches nothing', (t) => {
  const f = MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0xffffff00, 0x200, bytes(0x40, 0))] });
  t.is(f.count, 1);
  t.true(f.allows(0xffffff10, R));
  t.true(f.allows(0xffffff00, R));
  t.true(f.allows(0x10, R));
});

test('case 16: DEFAULT_DENY with only a dead range (or one dummy range) denies everything but x2APIC', (t) => {
  const dead = MsrFilter.build({ flags: DENY, ranges: [range(R, 0xffffff00, 0x200, bytes(0x40, 0))] });
  t.false(dead.allows(abi.MSR_EFER, R));
  t.false(dead.allows(abi.MSR_EFER, W));
  // Hyperlight's deny-all: {R|W, base 0, nmsrs 1, one zero byte}.
  const hyperlight = MsrFilter.build({ flags: DENY, ranges: [range(R | W, 0, 1, new Uint8Array(1))] });
  t.false(kvmMsrAllowed(hyperlight, abi.MSR_EFER, R));
  t.false(kvmMsrAllowed(hyperlight, 0, W));
  t.true(kvmMsrAllowed(hyperlight, 0x802, R));
  t.true(kvmMsrAllowed(hyperlight, 0x8ff, W));
  t.false(kvmMsrAllowed(hyperlight, 0x7ff, R));
  t.false(kvmMsrAllowed(hyperlight, 0x900, R));
});

test('case 17: bitmap size is ceil(nmsrs/64)*8 bytes, at most 0x600 (nmsrs 0x3000 and 0x2fc1 pass, 0x3001 fails)', (t) => {
  t.notThrows(() => MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0, 0x3000, bytes(0x600, 0xff))] }));
  t.notThrows(() => MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0, 0x2fc1, bytes(0x600, 0xff))] }));
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0, 0x3001, bytes(0x608, 0xff))] }), einval);
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0, 0xffffffff, bytes(8, 0))] }), einval);
});

test('case 18: a non-empty range with flags 0 is EINVAL', (t) => {
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges: [range(0, 0, 1)] }), einval);
});

test('case 19: sixteen empty slots with DEFAULT_ALLOW clear filtering', (t) => {
  const ranges = Array.from({ length: 16 }, () => ({ flags: 0, base: 0, nmsrs: 0, bitmap: null }));
  const f = MsrFilter.build({ flags: ALLOW, ranges });
  t.is(f.count, 0);
  t.true(f.allows(abi.MSR_EFER, R));
  t.true(f.allows(0xdeadbeef, W));
});

test('case 20: nmsrs 0 is skipped before the range flags are looked at', (t) => {
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges: [range(0x4, 0, 1)] }), einval);
  t.notThrows(() => MsrFilter.build({ flags: ALLOW, ranges: [{ flags: 0x4, base: 0, nmsrs: 0 }] }));
  t.notThrows(() => MsrFilter.build({ flags: ALLOW, ranges: [{ flags: 0xffffffff, base: 7, nmsrs: 0, bitmap: null }] }));
});

test('case 21: unknown filter flags are EINVAL before any range is examined', (t) => {
  // Range 0 would be EFAULT (no bitmap); the flags check comes first.
  t.throws(() => MsrFilter.build({ flags: 0x2, ranges: [range(R, 0, 1, null)] }), einval);
});

test('selftest user_exit_msr_flags: filter flags 1<<i succeed only for i = 0; range flags only for i = 0, 1', (t) => {
  const base = (): MsrFilterSpec => ({ flags: ALLOW, ranges: [range(R, 0, 1, new Uint8Array(8))] });
  for (let i = 0; i < 32; i++) {
    const f = base();
    f.flags = (1 << i) >>> 0;
    if (i === 0) t.notThrows(() => MsrFilter.build(f), `filter flag bit ${i}`);
    else t.throws(() => MsrFilter.build(f), einval, `filter flag bit ${i}`);
  }
  for (let i = 0; i < 32; i++) {
    const f = base();
    f.ranges![0]!.flags = (1 << i) >>> 0;
    if (i <= 1) t.notThrows(() => MsrFilter.build(f), `range flag bit ${i}`);
    else t.throws(() => MsrFilter.build(f), einval, `range flag bit ${i}`);
  }
});

test('case 22: DEFAULT_DENY with every nmsrs 0 is EINVAL, whatever the range flags, and the previous filter stays', (t) => {
  const vm = new Kvm().createVm();
  vm.setMsrFilter({ flags: ALLOW, ranges: [range(R, abi.MSR_IA32_XSS, 1, new Uint8Array(1))] });
  const before = installed(vm);
  t.throws(() => vm.setMsrFilter({ flags: DENY, ranges: Array.from({ length: 16 }, () => ({ flags: R | W, base: 0, nmsrs: 0 })) }), einval);
  t.throws(() => vm.setMsrFilter({ flags: DENY }), einval);
  t.is(installed(vm), before);
  t.false(kvmMsrAllowed(installed(vm), abi.MSR_IA32_XSS, R));
});

test('case 23: a failed install is all-or-nothing — the old filter stays in force, the valid ranges of the new one are not half-installed', (t) => {
  const vm = new Kvm().createVm();
  vm.setMsrFilter({ flags: ALLOW, ranges: [range(R, abi.MSR_IA32_XSS, 1, new Uint8Array(1))] });
  t.throws(
    () => vm.setMsrFilter({ flags: ALLOW, ranges: [range(R, abi.MSR_IA32_FLUSH_CMD, 1, new Uint8Array(1)), range(0, 0, 1)] }),
    einval,
  );
  const f = installed(vm);
  t.false(kvmMsrAllowed(f, abi.MSR_IA32_XSS, R), '0xDA0 still denied by F1');
  t.true(kvmMsrAllowed(f, abi.MSR_IA32_FLUSH_CMD, R), '0x10B still allowed: r0 of the failed call is not installed');
});

test('case 24: ranges are processed in index order and the first error wins (EFAULT at 3 before EINVAL at 5)', (t) => {
  const ranges: MsrFilterRange[] = Array.from({ length: 6 }, (_, i) => range(R, 0x100 * i, 1));
  ranges[3] = { flags: R, base: 0x300, nmsrs: 1, bitmap: null };
  ranges[5] = range(0, 0x500, 1);
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges }), efault);
  ranges[3] = { flags: 0x8, base: 0x300, nmsrs: 1, bitmap: null };
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges }), einval);
});

test('case 30: bits at or past nmsrs are never consulted', (t) => {
  const f = MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0x100, 1, Uint8Array.of(0x00, 0xff, 0xff))] });
  t.false(f.allows(0x100, R));
  t.true(f.allows(0x101, R), 'not covered: default allow');
  const deny = MsrFilter.build({ flags: DENY, ranges: [range(R, 0x100, 1, Uint8Array.of(0xfe))] });
  t.false(deny.allows(0x100, R), 'bit 0 is 0');
  t.false(deny.allows(0x101, R), 'not covered: default deny, although bit 1 is 1');
});

test('case 33: clearing the filter after F1 lets the previously denied MSR through', (t) => {
  const vm = new Kvm().createVm();
  vm.setMsrFilter({ flags: ALLOW, ranges: [range(R | W, abi.MSR_IA32_XSS, 1, new Uint8Array(1))] });
  t.false(kvmMsrAllowed(installed(vm), abi.MSR_IA32_XSS, W));
  vm.setMsrFilter({ flags: ALLOW });
  t.true(kvmMsrAllowed(installed(vm), abi.MSR_IA32_XSS, W));
  t.true(kvmMsrAllowed(installed(vm), abi.MSR_IA32_XSS, R));
});

test('case 34 (model decision): more than 16 ranges is EINVAL', (t) => {
  const ranges = Array.from({ length: 17 }, (_, i) => range(R, i, 1));
  t.throws(() => MsrFilter.build({ flags: ALLOW, ranges }), einval);
  t.notThrows(() => MsrFilter.build({ flags: ALLOW, ranges: ranges.slice(0, 16) }));
});

test('case 10: a READ-only range leaves writes to the default action', (t) => {
  const f = MsrFilter.build({ flags: DENY, ranges: [range(R, 0, 0x3000, bytes(0x600, 0xff))] });
  t.true(f.allows(abi.MSR_IA32_TSC, R));
  t.false(f.allows(abi.MSR_IA32_TSC, W));
});

test('case 11: the first matching range wins; swapping the ranges swaps the verdict', (t) => {
  const deny = range(R, 0x100, 8, Uint8Array.of(0x00));
  const allow = range(R, 0x100, 8, Uint8Array.of(0xff));
  t.false(MsrFilter.build({ flags: ALLOW, ranges: [deny, allow] }).allows(0x100, R));
  t.true(MsrFilter.build({ flags: ALLOW, ranges: [allow, deny] }).allows(0x100, R));
});

test('case 12: a range only matches the access types its flags cover', (t) => {
  const f = MsrFilter.build({ flags: DENY, ranges: [range(R, 0, 64, bytes(8, 0)), range(W, 0, 64, bytes(8, 0xff))] });
  t.false(f.allows(abi.MSR_IA32_APICBASE, R));
  t.true(f.allows(abi.MSR_IA32_APICBASE, W));
});

test('bitmap bit i is byte i >> 3, bit i & 7, least significant first', (t) => {
  const f = MsrFilter.build({ flags: DENY, ranges: [range(R, 0x1000, 16, Uint8Array.of(0b0000_0101, 0b1000_0000))] });
  const allowed = Array.from({ length: 16 }, (_, i) => f.allows(0x1000 + i, R));
  t.deepEqual(allowed.map((a, i) => (a ? i : -1)).filter((i) => i >= 0), [0, 2, 15]);
});

test('the bitmap is copied at install: later changes to the caller\'s array do not reach the filter', (t) => {
  const bitmap = Uint8Array.of(0x00);
  const f = MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0x10, 1, bitmap)] });
  bitmap[0] = 0xff;
  t.false(f.allows(0x10, R));
});

test('model decision: a bitmap shorter than nmsrs bits is accepted and its missing bytes deny', (t) => {
  const f = MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0, 64, Uint8Array.of(0xff))] });
  t.true(f.allows(7, R));
  t.false(f.allows(8, R));
  t.false(f.allows(63, R));
});

test('u32 wraparound: base 0xffffffff with nmsrs 1 matches nothing, and MSR 0xffffffff can never be covered', (t) => {
  const f = MsrFilter.build({ flags: ALLOW, ranges: [range(R, 0xffffffff, 1, Uint8Array.of(0))] });
  t.true(f.allows(0xffffffff, R));
  const top = MsrFilter.build({ flags: DENY, ranges: [range(R, 0xffffff00, 0xff, bytes(32, 0xff))] });
  t.true(top.allows(0xfffffffe, R));
  t.false(top.allows(0xffffffff, R), 'not covered (index < end fails): default deny');
});

test('x2APIC MSRs 0x800–0x8ff are allowed even when a range covers them; no filter allows all', (t) => {
  const f = MsrFilter.build({ flags: DENY, ranges: [range(R | W, 0x800, 0x100, bytes(32, 0))] });
  for (const index of [0x800, 0x802, 0x830, 0x8ff]) {
    t.true(kvmMsrAllowed(f, index, R));
    t.true(kvmMsrAllowed(f, index, W));
  }
  t.false(kvmMsrAllowed(f, 0x7ff, R));
  t.false(kvmMsrAllowed(f, 0x900, R));
  t.true(kvmMsrAllowed(null, 0xdeadbeef, W));
});

test('values the C struct cannot hold are EINVAL naming the field', (t) => {
  const bad = (spec: unknown): void => void MsrFilter.build(spec as MsrFilterSpec);
  t.throws(() => bad(null), { ...einval, message: /must be an object/ });
  t.throws(() => bad({ flags: -1 }), { ...einval, message: /filter flags/ });
  t.throws(() => bad({ flags: 0, ranges: 'x' }), { ...einval, message: /ranges must be an array/ });
  t.throws(() => bad({ flags: 0, ranges: [{ flags: 1, base: 2 ** 32, nmsrs: 1, bitmap: new Uint8Array(1) }] }), { ...einval, message: /range 0: base/ });
  t.throws(() => bad({ flags: 0, ranges: [undefined] }), { ...einval, message: /range 0 must be an object/ });
  t.throws(() => bad({ flags: 0, ranges: [{ flags: 1, base: 0, nmsrs: 1, bitmap: [0] }] }), { ...efault, message: /range 0: bitmap/ });
});

test('KvmError carries the errno number and name and names the ioctl', (t) => {
  const e = t.throws(() => MsrFilter.build({ flags: ALLOW, ranges: [range(0, 0, 1)] }), einval);
  t.is(e?.errno, 22);
  t.is(e?.ioctl, 'KVM_X86_SET_MSR_FILTER');
  t.regex(e?.message ?? '', /^KVM_X86_SET_MSR_FILTER: EINVAL \(22\): range 0 has flags 0$/);
});
