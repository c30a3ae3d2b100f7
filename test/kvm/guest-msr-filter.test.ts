/**
 * KVM_X86_SET_MSR_FILTER with real RDMSR/WRMSR on the core: docs/msr-filter.md §7, the cases
 * that involve a guest access (3–16, 23, 26–33; the ioctl-only cases are unit-tested in
 * msr-filter.test.ts). M is the KVM_CAP_X86_USER_SPACE_MSR mask: I = INVAL, U = UNKNOWN,
 * F = FILTER. Expected values come from the table of docs/msr-filter.md §7 and the sources it cites.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import type { MsrFilterSpec } from '../../host/kvm/api/msr-filter.js';
import { bitmap, Guest, type GuestOptions } from './guest.js';

const I = abi.KVM_MSR_EXIT_REASON_INVAL;
const U = abi.KVM_MSR_EXIT_REASON_UNKNOWN;
const F = abi.KVM_MSR_EXIT_REASON_FILTER;
const R = abi.KVM_MSR_FILTER_READ;
const W = abi.KVM_MSR_FILTER_WRITE;
const ALLOW = abi.KVM_MSR_FILTER_DEFAULT_ALLOW;
const DENY = abi.KVM_MSR_FILTER_DEFAULT_DENY;
const GP = abi.GP_VECTOR;
const XSS = abi.MSR_IA32_XSS; // 0xDA0
const ONES = (1n << 64n) - 1n;

/** A VM with cap mask `mask` and, if given, `filter` installed. */
function guest(mask: number, filter?: MsrFilterSpec, options: GuestOptions = {}): Guest {
  const g = new Guest(options);
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [mask]);
  if (filter !== undefined) g.vm.setMsrFilter(filter);
  return g;
}

/** Spec §7 case 3's filter: DEFAULT_ALLOW, {R|W, 0xDA0, 1, [00]}. */
const denyXss: MsrFilterSpec = { flags: ALLOW, ranges: [{ flags: R | W, base: XSS, nmsrs: 1, bitmap: new Uint8Array(1) }] };

test('case 3: a denied RDMSR exits with FILTER and data 0; the reply loads EDX:EAX, clears the upper halves, and retires', (t) => {
  const g = guest(F, denyXss);
  const op = g.start('rdmsr', { rcx: BigInt(XSS), rax: ONES, rdx: ONES });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.exit_reason, abi.KVM_EXIT_X86_RDMSR);
  t.deepEqual({ ...exit.msr }, { error: 0, reason: F, index: XSS, data: 0n });
  t.is(g.regs().rip, BigInt(op.entry), 'the RDMSR is not retired while user space handles it');
  exit.msr.data = 0xaabbccdd11223344n;
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rax, 0x11223344n);
  t.is(out.regs.rdx, 0xaabbccddn);
  t.is(out.regs.rip, BigInt(op.epilogue + 1), 'RIP went past the RDMSR (2 bytes) and the HLT after it');
});

test('case 4: a denied WRMSR exits with EDX:EAX as data; error 1 injects #GP(0) with RIP on the WRMSR', (t) => {
  const g = guest(F, denyXss);
  const op = g.start('wrmsr', { rcx: BigInt(XSS), rdx: 0xffff_ffff_0000_0001n, rax: 0xffff_ffff_0000_0002n });
  const exit = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.is(exit.exit_reason, abi.KVM_EXIT_X86_WRMSR);
  t.deepEqual({ ...exit.msr }, { error: 0, reason: F, index: XSS, data: 0x1_0000_0002n });
  exit.msr.error = 1;
  const out = g.finish();
  t.deepEqual(out.fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(out.faults, 1);
});

test('case 5: any non-zero error byte (0xff) is a #GP(0); RAX and RDX keep their values', (t) => {
  const g = guest(F, denyXss);
  const op = g.start('rdmsr', { rcx: BigInt(XSS), rax: 0x1111n, rdx: 0x2222n });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  exit.msr.data = 0x5555_6666_7777_8888n;
  exit.msr.error = 0xff;
  const out = g.finish();
  t.deepEqual(out.fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(out.regs.rax, 0x1111n);
  t.is(out.regs.rdx, 0x2222n);
});

test('case 6: re-entering without touching kvm_run.msr reads 0 and retires the RDMSR', (t) => {
  const g = guest(F, denyXss);
  // A first exit whose reply leaves data non-zero in the shared kvm_run...
  g.start('rdmsr', { rcx: BigInt(XSS) });
  const first = g.runExpecting('KVM_EXIT_X86_RDMSR');
  first.msr.data = 0x77n;
  t.is(g.finish().regs.rax, 0x77n);
  // ...then a second exit, answered by re-entering only: KVM preset error 0 and data 0.
  g.start('rdmsr', { rcx: BigInt(XSS), rax: ONES, rdx: ONES });
  t.is(g.run().reason, 'KVM_EXIT_X86_RDMSR');
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rax, 0n);
  t.is(out.regs.rdx, 0n);
});

test('case 7: with M = 0 a denied RDMSR is a #GP(0), with no exit', (t) => {
  const g = guest(0, denyXss);
  const op = g.start('rdmsr', { rcx: BigInt(XSS) });
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
});

test('case 8: with M = U|I (no F) a denied RDMSR is a #GP(0): no fallback to another reason', (t) => {
  const g = guest(U | I, denyXss);
  const op = g.start('rdmsr', { rcx: BigInt(XSS) });
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
});

test('case 9: an MSR no range covers gets the default action (allow): KVM emulates it (0xDA1 is unknown)', (t) => {
  const g = guest(F | U, denyXss);
  g.start('rdmsr', { rcx: 0xda1n });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, U, 'in-kernel emulation, not the filter, refused it');
  t.is(exit.msr.index, 0xda1);
});

test('case 10: DEFAULT_DENY with one READ range: RDMSR 0x10 runs in the kernel, WRMSR 0x10 exits FILTER', (t) => {
  const g = guest(F, { flags: DENY, ranges: [{ flags: R, base: 0, nmsrs: 0x3000, bitmap: bitmap(0x600, true) }] });
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_TSC), rax: ONES });
  const read = g.finish();
  t.is(read.fault, null);
  t.true(read.regs.rax <= 0xffff_ffffn, 'the TSC was loaded into EDX:EAX');
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_TSC), rax: 5n, rdx: 0n });
  const exit = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.is(exit.msr.reason, F);
  t.is(exit.msr.data, 5n);
});

test('case 11: of two READ ranges over the same MSR the first decides; swapped, the other one does', (t) => {
  const deny = { flags: R, base: 0x100, nmsrs: 8, bitmap: bitmap(1, false) };
  const allow = { flags: R, base: 0x100, nmsrs: 8, bitmap: bitmap(1, true) };
  const g = guest(F | U, { flags: ALLOW, ranges: [deny, allow] });
  g.start('rdmsr', { rcx: 0x100n });
  let exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, F);
  g.finish();
  g.vm.setMsrFilter({ flags: ALLOW, ranges: [allow, deny] });
  g.start('rdmsr', { rcx: 0x100n });
  exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, U, 'allowed by the filter; then unknown to KVM');
});

test('case 12: a READ range does not match a write: RDMSR 0x1B is denied, WRMSR 0x1B falls to the WRITE range', (t) => {
  const g = guest(F, {
    flags: DENY,
    ranges: [
      { flags: R, base: 0, nmsrs: 64, bitmap: bitmap(8, false) },
      { flags: W, base: 0, nmsrs: 64, bitmap: bitmap(8, true) },
    ],
  });
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE) });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, F);
  // The BSP's reset APIC base (0xfee00000 | EN | BSP): written back unchanged, in the kernel.
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE), rax: 0xfee00900n, rdx: 0n });
  t.is(g.finish().fault, null);
});

const denyX2apicRange: MsrFilterSpec = {
  flags: DENY,
  ranges: [{ flags: R | W, base: abi.X2APIC_MSR_FIRST, nmsrs: 0x100, bitmap: bitmap(0x20, false) }],
};

test('case 13: x2APIC MSRs are never filtered: 0x802 with x2APIC off exits INVAL, with x2APIC on reads the APIC ID', (t) => {
  const g = new Guest({ vcpus: 2 });
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [I | U | F]);
  // vCPU 1 turns x2APIC on (EN | EXTD) before the filter that would deny WRMSR 0x1B.
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE), rax: 0xfee00c00n, rdx: 0n }, 1);
  t.is(g.finish(1).fault, null);
  g.vm.setMsrFilter(denyX2apicRange);

  g.start('rdmsr', { rcx: 0x802n, rax: ONES }, 1);
  const on = g.finish(1);
  t.is(on.fault, null);
  t.is(on.regs.rax, 1n, 'the x2APIC ID of vCPU 1');

  g.start('rdmsr', { rcx: 0x802n }, 0);
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR', 0);
  t.is(exit.msr.reason, I, 'vCPU 0 is in xAPIC mode: the in-kernel read failed — INVAL, never FILTER');
});

test('case 14: under the same DEFAULT_DENY filter, 0x7FF and 0x900 (outside 0x800-0x8FF) exit FILTER', (t) => {
  const g = guest(I | U | F, denyX2apicRange);
  for (const index of [0x7ff, 0x900]) {
    g.start('rdmsr', { rcx: BigInt(index) });
    const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
    t.is(exit.msr.reason, F, `0x${index.toString(16)}`);
    g.finish();
  }
});

const deadRange = { flags: R, base: 0xffff_ff00, nmsrs: 0x200, bitmap: bitmap(0x40, false) };

test('case 15: a range whose end wraps past 2^32 is accepted and matches nothing', (t) => {
  const g = guest(F | U);
  t.notThrows(() => g.vm.setMsrFilter({ flags: ALLOW, ranges: [deadRange] }));
  g.start('rdmsr', { rcx: 0xffff_ff10n });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, U, 'default allow, then unknown to KVM');
});

test('case 16: DEFAULT_DENY with only a dead range (or a one-MSR dummy range) denies EFER', (t) => {
  const dummy = { flags: R | W, base: 0, nmsrs: 1, bitmap: new Uint8Array(1) };
  for (const range of [deadRange, dummy]) {
    const g = guest(F);
    t.notThrows(() => g.vm.setMsrFilter({ flags: DENY, ranges: [range] }));
    g.start('rdmsr', { rcx: BigInt(abi.MSR_EFER) });
    const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
    t.is(exit.msr.reason, F);
  }
});

test('case 22: a refused DEFAULT_DENY with no ranges leaves the previous filter in force', (t) => {
  const g = guest(F | U, denyXss);
  t.throws(() => g.vm.setMsrFilter({ flags: DENY, ranges: [] }), { instanceOf: KvmError, message: /EINVAL/ });
  g.start('rdmsr', { rcx: BigInt(XSS) });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, F);
});

test('case 23: a filter refused at its second range installs nothing: the old filter stays whole', (t) => {
  const g = guest(F | U, { flags: ALLOW, ranges: [{ flags: R, base: XSS, nmsrs: 1, bitmap: new Uint8Array(1) }] });
  const bad: MsrFilterSpec = {
    flags: ALLOW,
    ranges: [
      { flags: R, base: abi.MSR_IA32_FLUSH_CMD, nmsrs: 1, bitmap: new Uint8Array(1) },
      { flags: 0, base: 0, nmsrs: 1, bitmap: new Uint8Array(1) },
    ],
  };
  t.throws(() => g.vm.setMsrFilter(bad), { instanceOf: KvmError, code: 'EINVAL' });
  g.start('rdmsr', { rcx: BigInt(XSS) });
  let exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, F, 'F1 still denies 0xDA0');
  g.finish();
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_FLUSH_CMD) });
  exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, U, '0x10B was not half-installed: KVM handled it (FLUSH_CMD is write-only)');
});

test('case 26: ignore_msrs makes an unknown MSR read 0 and drop writes, but a FILTER denial still exits', (t) => {
  const g = guest(U, undefined, { ignoreMsrs: true });
  g.start('rdmsr', { rcx: 0xdeadbeefn, rax: ONES, rdx: ONES });
  const read = g.finish();
  t.is(read.fault, null);
  t.deepEqual([read.regs.rax, read.regs.rdx], [0n, 0n]);
  g.start('wrmsr', { rcx: 0xdeadbeefn, rax: 1n, rdx: 2n });
  t.is(g.finish().fault, null);

  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [F]);
  g.vm.setMsrFilter({ flags: ALLOW, ranges: [{ flags: R, base: 0xdeadbeef, nmsrs: 1, bitmap: new Uint8Array(1) }] });
  g.start('rdmsr', { rcx: 0xdeadbeefn });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, F);
});

test('case 27: a reserved PAT memory type (2) is INVAL: an exit with M = I, a #GP(0) with M = U', (t) => {
  const g = guest(I);
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_CR_PAT), rax: 2n, rdx: 0n });
  const exit = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.is(exit.msr.reason, I);
  t.is(exit.msr.data, 2n);
  exit.msr.error = 1;
  g.finish();

  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [U]);
  const op = g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_CR_PAT), rax: 2n, rdx: 0n });
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.deepEqual(g.vcpu().getMsrs([abi.MSR_IA32_CR_PAT]), [{ index: abi.MSR_IA32_CR_PAT, data: abi.MSR_IA32_CR_PAT_DEFAULT }]);
});

test('case 28: KVM_GET_MSRS / KVM_SET_MSRS are host-initiated and never filtered', (t) => {
  const g = guest(F, { flags: DENY, ranges: [{ flags: R | W, base: 0, nmsrs: 1, bitmap: new Uint8Array(1) }] });
  const v = g.vcpu();
  t.is(v.setMsrs([{ index: abi.MSR_IA32_CR_PAT, data: 0x0606060606060606n }, { index: abi.MSR_LSTAR, data: 0xffff_ffff_8100_0000n }]), 2);
  t.deepEqual(v.getMsrs([abi.MSR_IA32_CR_PAT, abi.MSR_LSTAR, abi.MSR_EFER]), [
    { index: abi.MSR_IA32_CR_PAT, data: 0x0606060606060606n },
    { index: abi.MSR_LSTAR, data: 0xffff_ffff_8100_0000n },
    { index: abi.MSR_EFER, data: g.boot.efer },
  ]);
  // The guest, meanwhile, is denied the same MSR.
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_CR_PAT) });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, F);
});

test('case 29: KVM PV MSRs are filterable: WRMSR KVM_SYSTEM_TIME_NEW exits FILTER', (t) => {
  const g = guest(F, { flags: ALLOW, ranges: [{ flags: R | W, base: abi.MSR_KVM_WALL_CLOCK_NEW, nmsrs: 8, bitmap: new Uint8Array(1) }] });
  g.start('wrmsr', { rcx: BigInt(abi.MSR_KVM_SYSTEM_TIME_NEW), rax: 0x5001n, rdx: 0n });
  const exit = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.is(exit.msr.reason, F);
  t.is(exit.msr.index, abi.MSR_KVM_SYSTEM_TIME_NEW);
  t.is(exit.msr.data, 0x5001n);
});

test('case 30: bitmap bits at or past nmsrs are never read: 0x101 is outside {R, 0x100, 1, [00 FF]}', (t) => {
  const g = guest(F | U, { flags: ALLOW, ranges: [{ flags: R, base: 0x100, nmsrs: 1, bitmap: Uint8Array.of(0x00, 0xff, 0xff) }] });
  g.start('rdmsr', { rcx: 0x101n });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, U, 'default allow, then unknown to KVM');
});

test('case 31: RDMSR and WRMSR at CPL3 are #GP(0) from the privilege check: no filter, no exit', (t) => {
  const g = guest(I | U | F, { flags: DENY, ranges: [{ flags: R | W, base: 0, nmsrs: 1, bitmap: new Uint8Array(1) }] });
  for (const op of ['rdmsr', 'wrmsr'] as const) {
    const tpl = g.startUser(op, { rcx: BigInt(abi.MSR_EFER) });
    const out = g.finish();
    t.deepEqual(out.fault, { vector: GP, errorCode: 0, rip: BigInt(tpl.entry) }, op);
  }
  t.is(g.vcpu().stat.exits, g.vcpu().stat.halt_exits, 'no exit other than the final HLTs');
});

test('case 32: a reply still applies after the filter changed under the pending exit; the new filter governs the next access', (t) => {
  const g = guest(F | U, denyXss);
  g.start('rdmsr', { rcx: BigInt(XSS) });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  g.vm.setMsrFilter({ flags: ALLOW, ranges: [] });
  exit.msr.data = 5n;
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rax, 5n);
  // The next access to 0xDA0 is KVM's: a guest XSS read without XSAVES is INVAL (docs/msr-filter.md §3),
  // which M = F|U does not ask for: a #GP, where the old filter would have exited.
  const op = g.start('rdmsr', { rcx: BigInt(XSS) });
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
});

test('case 33: an empty DEFAULT_ALLOW filter clears filtering: the MSR F1 denied runs in the kernel', (t) => {
  const g = guest(F, { flags: ALLOW, ranges: [{ flags: R, base: abi.MSR_IA32_POWER_CTL, nmsrs: 1, bitmap: new Uint8Array(1) }] });
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_POWER_CTL) });
  t.is(g.run().reason, 'KVM_EXIT_X86_RDMSR');
  g.finish();
  g.vm.setMsrFilter({ flags: ALLOW, ranges: [{ flags: 0, base: 0, nmsrs: 0, bitmap: null }] });
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_POWER_CTL), rax: ONES });
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rax, 0n, 'POWER_CTL reads its reset value 0');
});

test('the filter is per VM: installed once, it governs every vCPU', (t) => {
  const g = new Guest({ vcpus: 2 });
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [F]);
  g.vm.setMsrFilter(denyXss);
  for (const n of [0, 1]) {
    g.start('rdmsr', { rcx: BigInt(XSS) }, n);
    const exit = g.runExpecting('KVM_EXIT_X86_RDMSR', n);
    t.is(exit.msr.reason, F, `vCPU ${n}`);
  }
});
