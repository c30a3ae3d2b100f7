/**
 * The kernel selftest tools/testing/selftests/kvm/x86/userspace_msr_exit_test.c, re-derived
 * from its description in docs/msr-filter.md §4 and run on the core: msr_filter_allow (§4.1,
 * the 8-step table), msr_filter_deny (§4.2, totals 4 reads / 3 writes) and
 * msr_permission_bitmap (§4.3, three phases). user_exit_msr_flags (§4.4) only calls ioctls and
 * lives with the unit tests (user-space-msr.test.ts, msr-filter.test.ts). The forced-emulation
 * (KVM_FEP) half of msr_filter_allow has no counterpart: pinbox has a single execution path.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import type { VcpuExit } from '../../host/kvm/api/exits.js';
import type { MsrFilterSpec } from '../../host/kvm/api/msr-filter.js';
import { layout as L } from '../../host/vmm/boot/index.js';
import { bitmap, describeExit, Guest } from './guest.js';

const R = abi.KVM_MSR_FILTER_READ;
const W = abi.KVM_MSR_FILTER_WRITE;
const XSS = abi.MSR_IA32_XSS;
const FLUSH_CMD = abi.MSR_IA32_FLUSH_CMD;
const NON_EXISTENT = 0x474f4f00;
const FS_BASE = abi.MSR_FS_BASE;
const GS_BASE = abi.MSR_GS_BASE;
const SYSCALL_MASK = abi.MSR_SYSCALL_MASK;
const POWER_CTL = abi.MSR_IA32_POWER_CTL;
const DEADBEEF = 0xdeadbeef;

/** One-MSR range denying reads and writes, with QEMU's 8-byte zero bitmap. */
const denyOne = (base: number) => ({ flags: R | W, base, nmsrs: 1, bitmap: new Uint8Array(8) });

/** filter_allow: XSS, FLUSH_CMD and MSR_NON_EXISTENT denied for reads and writes. */
const filterAllow: MsrFilterSpec = {
  flags: abi.KVM_MSR_FILTER_DEFAULT_ALLOW,
  ranges: [denyOne(XSS), denyOne(FLUSH_CMD), denyOne(NON_EXISTENT)],
};

function filterGuest(mask: number, filter: MsrFilterSpec): Guest {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [mask]);
  g.vm.setMsrFilter(filter);
  return g;
}

test('msr_filter_allow: the eight accesses exit to user space, whose replies decide value and #GP count', (t) => {
  t.not(new Guest().kvm.checkExtension(abi.KVM_CAP_X86_USER_SPACE_MSR), 0);
  t.not(new Guest().kvm.checkExtension(abi.KVM_CAP_X86_MSR_FILTER), 0);
  const g = filterGuest(abi.KVM_MSR_EXIT_REASON_FILTER, filterAllow);
  let nonExistentData = 0n;
  /** The selftest's handle_rdmsr() / handle_wrmsr(). */
  const reply = (exit: VcpuExit): void => {
    if (exit.reason === 'KVM_EXIT_X86_RDMSR') {
      if (exit.msr.index === XSS) exit.msr.data = 0n;
      else if (exit.msr.index === FLUSH_CMD) exit.msr.error = 1;
      else if (exit.msr.index === NON_EXISTENT) exit.msr.data = nonExistentData;
    } else if (exit.reason === 'KVM_EXIT_X86_WRMSR') {
      const data = exit.msr.data;
      if (exit.msr.index === XSS && data !== 0n) exit.msr.error = 1;
      else if (exit.msr.index === FLUSH_CMD && data !== 1n) exit.msr.error = 1;
      else if (exit.msr.index === NON_EXISTENT) nonExistentData = data;
    }
  };
  const steps = [
    { op: 'rdmsr', msr: XSS, value: 0n, gp: 0 },
    { op: 'wrmsr', msr: XSS, data: 0n, gp: 0 },
    { op: 'wrmsr', msr: XSS, data: 1n, gp: 1 },
    { op: 'rdmsr', msr: FLUSH_CMD, gp: 1 },
    { op: 'wrmsr', msr: FLUSH_CMD, data: 0n, gp: 1 },
    { op: 'wrmsr', msr: FLUSH_CMD, data: 1n, gp: 0 },
    { op: 'wrmsr', msr: NON_EXISTENT, data: 2n, gp: 0 },
    { op: 'rdmsr', msr: NON_EXISTENT, value: 2n, gp: 0 },
  ] as const;
  steps.forEach((step, k) => {
    const what = `step ${k + 1}: ${step.op} 0x${step.msr.toString(16)}`;
    const data = 'data' in step ? step.data : 0n;
    g.start(step.op, { rcx: BigInt(step.msr), rax: data & 0xffff_ffffn, rdx: data >> 32n });
    const exit = g.runExpecting(step.op === 'rdmsr' ? 'KVM_EXIT_X86_RDMSR' : 'KVM_EXIT_X86_WRMSR');
    t.is(exit.msr.index, step.msr, what);
    if (step.op === 'wrmsr') t.is(exit.msr.data, data, what);
    reply(exit);
    const out = g.finish();
    t.is(out.faults, step.gp, `${what}: #GP count`);
    if ('value' in step) t.is(out.regs.rax | (out.regs.rdx << 32n), step.value, `${what}: value`);
  });
});

/**
 * guest_msr_calls(): the guest side of msr_filter_deny. Each RDMSR result goes to kernel
 * scratch (EAX, EDX pairs at +0, +8, +16, +24 for SYSCALL_MASK, GS_BASE, POWER_CTL,
 * 0xDEADBEEF). With the fault record's fix-up at 0, any #GP halts in the stub.
 */
const GUEST_MSR_CALLS = [
  'b9 84 00 00 c0 | mov ecx, 0xc0000084',
  '31 c0 | xor eax, eax',
  '31 d2 | xor edx, edx',
  '0f 30 | wrmsr',
  '0f 32 | rdmsr',
  '89 04 25 00 00 09 00 | mov [0x90000], eax',
  '89 14 25 04 00 09 00 | mov [0x90004], edx',
  'b9 01 01 00 c0 | mov ecx, 0xc0000101',
  '0f 32 | rdmsr',
  '89 04 25 08 00 09 00 | mov [0x90008], eax',
  '89 14 25 0c 00 09 00 | mov [0x9000c], edx',
  'b9 fc 01 00 00 | mov ecx, 0x1fc',
  'b8 34 12 00 00 | mov eax, 0x1234',
  '31 d2 | xor edx, edx',
  '0f 30 | wrmsr',
  '0f 32 | rdmsr',
  '89 04 25 10 00 09 00 | mov [0x90010], eax',
  '89 14 25 14 00 09 00 | mov [0x90014], edx',
  'b9 ef be ad de | mov ecx, 0xdeadbeef',
  '0f 32 | rdmsr',
  '89 04 25 18 00 09 00 | mov [0x90018], eax',
  '89 14 25 1c 00 09 00 | mov [0x9001c], edx',
  'b8 34 12 00 00 | mov eax, 0x1234',
  '31 d2 | xor edx, edx',
  '0f 30 | wrmsr',
  'f4 | hlt',
];

type Access = readonly [op: 'rd' | 'wr', index: number, reason: number];

/**
 * Runs guest_msr_calls() to its HLT, answering like the selftest's deny handlers: a read
 * gets data = index; a write is checked to carry 0x1234 and ignored. Returns the exits seen
 * and the four values the guest read.
 */
function runGuestMsrCalls(t: import('ava').ExecutionContext, g: Guest): { exits: Access[]; values: bigint[] } {
  const code = g.startCode(GUEST_MSR_CALLS);
  const exits: Access[] = [];
  for (;;) {
    const exit = g.run();
    if (exit.reason === 'KVM_EXIT_HLT') break;
    if (exit.reason === 'KVM_EXIT_X86_RDMSR') {
      exits.push(['rd', exit.msr.index, exit.msr.reason]);
      exit.msr.data = BigInt(exit.msr.index);
    } else if (exit.reason === 'KVM_EXIT_X86_WRMSR') {
      exits.push(['wr', exit.msr.index, exit.msr.reason]);
      t.is(exit.msr.data, 0x1234n);
    } else {
      throw new Error(`unexpected ${describeExit(exit)}`);
    }
  }
  t.is(g.faultRecord().count, 0, 'no #GP');
  t.is(g.regs().rip, BigInt(code.end), 'past the final HLT');
  const m = g.vm.memory;
  const values = [0, 8, 16, 24].map((o) => m.read64(L.KERNEL_SCRATCH + o));
  return { exits, values };
}

test('msr_filter_deny: FILTER exits for SYSCALL_MASK and GS_BASE reads and the POWER_CTL write, UNKNOWN for 0xDEADBEEF; 4 reads, 3 writes', (t) => {
  const page = (deny: readonly number[] = []) => bitmap(abi.KVM_MSR_FILTER_MAX_BITMAP_SIZE, true, deny.map((msr) => msr & 0x5ff));
  const filterDeny: MsrFilterSpec = {
    flags: abi.KVM_MSR_FILTER_DEFAULT_DENY,
    ranges: [
      { flags: R, base: 0, nmsrs: 0x3000, bitmap: page() },
      { flags: W, base: 0, nmsrs: 0x3000, bitmap: page([POWER_CTL]) },
      { flags: R | W, base: 0x4000_0000, nmsrs: 0x3000, bitmap: page() },
      { flags: R, base: 0xc000_0000, nmsrs: 0x3000, bitmap: page([SYSCALL_MASK, GS_BASE]) },
      { flags: W, base: 0xc000_0000, nmsrs: 0x3000, bitmap: page() },
      { flags: W | R, base: DEADBEEF, nmsrs: 1, bitmap: Uint8Array.of(0x01) },
    ],
  };
  const F = abi.KVM_MSR_EXIT_REASON_FILTER;
  const U = abi.KVM_MSR_EXIT_REASON_UNKNOWN;
  const g = filterGuest(abi.KVM_MSR_EXIT_REASON_INVAL | U | F, filterDeny);

  const trapped = runGuestMsrCalls(t, g);
  t.deepEqual(trapped.exits, [
    ['rd', SYSCALL_MASK, F],
    ['rd', GS_BASE, F],
    ['wr', POWER_CTL, F],
    ['rd', DEADBEEF, U],
    ['wr', DEADBEEF, U],
  ]);
  // The values the guest read: the replies for the trapped ones; POWER_CTL from the kernel,
  // still 0 because user space ignored the write.
  t.deepEqual(trapped.values, [BigInt(SYSCALL_MASK), BigInt(GS_BASE), 0n, BigInt(DEADBEEF)]);

  g.vm.setMsrFilter({ flags: abi.KVM_MSR_FILTER_DEFAULT_ALLOW }); // no_filter_deny
  const untrapped = runGuestMsrCalls(t, g);
  t.deepEqual(untrapped.exits, [
    ['rd', DEADBEEF, U],
    ['wr', DEADBEEF, U],
  ]);
  t.deepEqual(untrapped.values, [0n, 0n, 0x1234n, BigInt(DEADBEEF)], 'SYSCALL_MASK and GS_BASE from the kernel, not their indices');

  const all = [...trapped.exits, ...untrapped.exits];
  t.is(all.filter(([op]) => op === 'rd').length, 4, 'msr_reads');
  t.is(all.filter(([op]) => op === 'wr').length, 3, 'msr_writes');
});

test('msr_permission_bitmap: filter_fs traps FS_BASE only, filter_gs GS_BASE only, filter_allow neither', (t) => {
  const readOnly = (base: number): MsrFilterSpec => ({
    flags: abi.KVM_MSR_FILTER_DEFAULT_ALLOW,
    ranges: [{ flags: R, base, nmsrs: 1, bitmap: new Uint8Array(8) }],
  });
  const g = filterGuest(abi.KVM_MSR_EXIT_REASON_FILTER, readOnly(FS_BASE));
  /** test_rdmsr(msr): the value the guest reads; a read exit is answered with data = index. */
  const guestRead = (msr: number): { value: bigint; exited: boolean } => {
    g.start('rdmsr', { rcx: BigInt(msr) });
    let exited = false;
    let exit = g.run();
    if (exit.reason === 'KVM_EXIT_X86_RDMSR') {
      t.is(exit.msr.index, msr);
      exit.msr.data = BigInt(msr);
      exited = true;
      exit = g.run();
    }
    t.is(exit.reason, 'KVM_EXIT_HLT');
    const regs = g.regs();
    return { value: regs.rax | (regs.rdx << 32n), exited };
  };
  const both = () => [guestRead(FS_BASE), guestRead(GS_BASE)];

  t.deepEqual(both(), [{ value: BigInt(FS_BASE), exited: true }, { value: 0n, exited: false }], 'filter_fs');
  g.vm.setMsrFilter(readOnly(GS_BASE));
  t.deepEqual(both(), [{ value: 0n, exited: false }, { value: BigInt(GS_BASE), exited: true }], 'filter_gs');
  g.vm.setMsrFilter(filterAllow);
  t.deepEqual(both(), [{ value: 0n, exited: false }, { value: 0n, exited: false }], 'filter_allow');
});
