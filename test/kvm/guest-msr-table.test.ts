/**
 * The MSR table reached by real RDMSR/WRMSR from a booted guest, with every user-space exit
 * reason enabled (M = 7) so that KVM's verdict is visible: handled (no exit), INVAL (the MSR
 * or value is invalid for this vCPU) or UNKNOWN (KVM does not know the MSR). Expectations are
 * kvm_{get,set}_msr_common() / __kvm_set_msr() / vmx_{get,set}_msr() and the RESET values of
 * kvm_vcpu_reset() (arch/x86/kvm/msrs.c, x86.c, lapic.c, vmx/vmx.c), for the default guest
 * (docs/msr-filter.md §3 for the INVAL/UNKNOWN split, including XSS's asymmetry).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { EMULATED_MSRS } from '../../host/kvm/msr-table.js';
import type { GuestCpuidOptions } from '../../host/kvm/api/cpuid.js';
import { Guest, type GuestOptions } from './guest.js';

const INVAL = abi.KVM_MSR_EXIT_REASON_INVAL;
const UNKNOWN = abi.KVM_MSR_EXIT_REASON_UNKNOWN;
const ALL = INVAL | UNKNOWN | abi.KVM_MSR_EXIT_REASON_FILTER;

/** What a guest access did: the value read or 'ok' for a write, or the exit reason. */
type Verdict = bigint | 'ok' | 'INVAL' | 'UNKNOWN';

function guest(options: GuestOptions = {}): Guest {
  const g = new Guest(options);
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [ALL]);
  return g;
}

function exitVerdict(reason: number): Verdict {
  if (reason === INVAL) return 'INVAL';
  if (reason === UNKNOWN) return 'UNKNOWN';
  throw new Error(`unexpected MSR exit reason ${reason}`);
}

/** RDMSR `index` at CPL0: the value, or the exit reason (answered with error 1). */
function rdmsr(g: Guest, index: number): Verdict {
  g.start('rdmsr', { rcx: BigInt(index), rax: 0xdeadn, rdx: 0xdeadn });
  const exit = g.run();
  if (exit.reason === 'KVM_EXIT_X86_RDMSR') {
    exit.msr.error = 1;
    g.finish();
    return exitVerdict(exit.msr.reason);
  }
  if (exit.reason !== 'KVM_EXIT_HLT') throw new Error(exit.reason);
  const { fault, regs } = g.outcome();
  if (fault !== null) throw new Error(`RDMSR 0x${index.toString(16)} faulted`);
  return regs.rax | (regs.rdx << 32n);
}

/** WRMSR `index` ← value at CPL0: 'ok', or the exit reason (answered with error 1). */
function wrmsr(g: Guest, index: number, value: bigint): Verdict {
  g.start('wrmsr', { rcx: BigInt(index), rax: value & 0xffff_ffffn, rdx: value >> 32n });
  const exit = g.run();
  if (exit.reason === 'KVM_EXIT_X86_WRMSR') {
    exit.msr.error = 1;
    g.finish();
    return exitVerdict(exit.msr.reason);
  }
  if (exit.reason !== 'KVM_EXIT_HLT') throw new Error(exit.reason);
  if (g.outcome().fault !== null) throw new Error(`WRMSR 0x${index.toString(16)} faulted`);
  return 'ok';
}

/** A guest read of each table MSR right after boot; undefined: any value (the TSC). */
const READ_AFTER_BOOT: ReadonlyArray<readonly [number, Verdict | undefined]> = [
  [abi.MSR_IA32_TSC, undefined],
  [abi.MSR_KVM_WALL_CLOCK, 0n],
  [abi.MSR_KVM_SYSTEM_TIME, 0n],
  [abi.MSR_IA32_APICBASE, 0xfee00900n], // 0xfee00000 | EN | BSP
  [abi.MSR_IA32_SPEC_CTRL, 'INVAL'], // no SPEC_CTRL in the guest CPUID
  [abi.MSR_IA32_FLUSH_CMD, 'UNKNOWN'], // write-only: no read case
  [abi.MSR_IA32_SYSENTER_CS, 0n],
  [abi.MSR_IA32_SYSENTER_ESP, 0n],
  [abi.MSR_IA32_SYSENTER_EIP, 0n],
  [abi.MSR_IA32_MISC_ENABLE, abi.MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | abi.MSR_IA32_MISC_ENABLE_BTS_UNAVAIL],
  [abi.MSR_IA32_POWER_CTL, 0n],
  [abi.MSR_IA32_CR_PAT, 0x0007_0406_0007_0406n],
  [abi.MSR_IA32_TSC_DEADLINE, 0n],
  [abi.MSR_IA32_XSS, 'INVAL'], // no XSAVES: the read returns 1
  [abi.MSR_KVM_WALL_CLOCK_NEW, 0n],
  [abi.MSR_KVM_SYSTEM_TIME_NEW, 0n],
  [abi.MSR_KVM_ASYNC_PF_EN, 0n],
  [abi.MSR_KVM_STEAL_TIME, 0n],
  [abi.MSR_KVM_PV_EOI_EN, 0n],
  [abi.MSR_KVM_POLL_CONTROL, 1n], // set to 1 at vCPU creation
  [abi.MSR_KVM_ASYNC_PF_INT, 0n],
  [abi.MSR_KVM_ASYNC_PF_ACK, 0n],
  [abi.MSR_EFER, 0xd01n], // SCE | LME | LMA | NX, as booted
  [abi.MSR_STAR, 0n],
  [abi.MSR_LSTAR, 0n],
  [abi.MSR_CSTAR, 0n],
  [abi.MSR_SYSCALL_MASK, 0n],
  [abi.MSR_FS_BASE, 0n],
  [abi.MSR_GS_BASE, 0n],
  [abi.MSR_KERNEL_GS_BASE, 0n],
  [abi.MSR_TSC_AUX, 0n],
  // John Andersen's CR-pinning MSRs exist only on a VM created with the `andersen` option
  // (test/kvm/andersen.test.ts); elsewhere they are what mainline leaves them: not emulated.
  ...abi.ANDERSEN_MSR_INDICES.map((index) => [index, 'UNKNOWN'] as const),
];

test('every table MSR, read by the guest after boot: its reset value, or the reason KVM refuses it', (t) => {
  t.deepEqual(READ_AFTER_BOOT.map(([i]) => i).sort((a, b) => a - b), [...EMULATED_MSRS], 'the list covers the table');
  const g = guest();
  for (const [index, want] of READ_AFTER_BOOT) {
    const got = rdmsr(g, index);
    if (want === undefined) t.is(typeof got, 'bigint', `0x${index.toString(16)}`);
    else t.is(got, want, `0x${index.toString(16)}`);
  }
});

test('MSRs outside the table are UNKNOWN, including ones real KVM emulates (model decision)', (t) => {
  const g = guest();
  for (const index of [0xdeadbeef, 0x474f4f00, 0xfe /* MTRRcap */, abi.MSR_IA32_ARCH_CAPABILITIES, abi.MSR_KVM_MIGRATION_CONTROL]) {
    t.is(rdmsr(g, index), 'UNKNOWN', `0x${index.toString(16)}`);
    t.is(wrmsr(g, index, 0n), 'UNKNOWN', `0x${index.toString(16)}`);
  }
});

interface WriteCase {
  readonly what: string;
  readonly index: number;
  readonly value: bigint | ((g: Guest) => bigint);
  readonly verdict: 'ok' | 'INVAL' | 'UNKNOWN';
  /** After an accepted write: what a guest read returns. */
  readonly reads?: bigint;
  readonly cpuid?: GuestCpuidOptions;
}

const NONCANONICAL = 0x0000_8000_0000_0000n;
const EFER = (g: Guest): bigint => g.vcpu().getSregs().efer;

const WRITES: readonly WriteCase[] = [
  { what: 'LSTAR canonical', index: abi.MSR_LSTAR, value: 0xffff_8000_0000_1000n, verdict: 'ok', reads: 0xffff_8000_0000_1000n },
  ...[abi.MSR_LSTAR, abi.MSR_CSTAR, abi.MSR_FS_BASE, abi.MSR_GS_BASE, abi.MSR_KERNEL_GS_BASE].map(
    (index): WriteCase => ({ what: `0x${index.toString(16)} non-canonical`, index, value: NONCANONICAL, verdict: 'INVAL' }),
  ),
  { what: 'SYSENTER_EIP non-canonical is made canonical', index: abi.MSR_IA32_SYSENTER_EIP, value: NONCANONICAL | 0x1234n, verdict: 'ok', reads: 0xffff_8000_0000_1234n },
  { what: 'SYSENTER_ESP non-canonical is made canonical', index: abi.MSR_IA32_SYSENTER_ESP, value: NONCANONICAL, verdict: 'ok', reads: 0xffff_8000_0000_0000n },
  { what: 'SYSENTER_CS keeps 32 bits', index: abi.MSR_IA32_SYSENTER_CS, value: 0x1_0000_0010n, verdict: 'ok', reads: 0x10n },
  { what: 'STAR takes any value', index: abi.MSR_STAR, value: 0x0023_0010_0000_0000n, verdict: 'ok', reads: 0x0023_0010_0000_0000n },
  { what: 'SYSCALL_MASK bits 63:32 (model decision)', index: abi.MSR_SYSCALL_MASK, value: 1n << 32n, verdict: 'INVAL' },
  { what: 'SYSCALL_MASK', index: abi.MSR_SYSCALL_MASK, value: 0x4_7700n, verdict: 'ok', reads: 0x4_7700n },
  { what: 'TSC_AUX bit 32 (Intel reserved)', index: abi.MSR_TSC_AUX, value: 1n << 32n, verdict: 'INVAL' },
  { what: 'TSC_AUX', index: abi.MSR_TSC_AUX, value: 0x1234n, verdict: 'ok', reads: 0x1234n },
  { what: 'TSC_AUX without RDTSCP or RDPID', index: abi.MSR_TSC_AUX, value: 1n, verdict: 'INVAL', cpuid: { rdtscp: false } },
  { what: 'EFER rewritten', index: abi.MSR_EFER, value: EFER, verdict: 'ok', reads: 0xd01n },
  { what: 'EFER reserved bit 1', index: abi.MSR_EFER, value: (g) => EFER(g) | 2n, verdict: 'INVAL' },
  { what: 'EFER.LME cleared while paging', index: abi.MSR_EFER, value: (g) => EFER(g) & ~abi.EFER_LME, verdict: 'INVAL' },
  { what: 'EFER.LMA cleared (LMA is not writable)', index: abi.MSR_EFER, value: (g) => EFER(g) & ~abi.EFER_LMA, verdict: 'ok', reads: 0xd01n },
  { what: 'EFER.NX without NX', index: abi.MSR_EFER, value: EFER, verdict: 'INVAL', cpuid: { nx: false } },
  { what: 'PAT all write-back', index: abi.MSR_IA32_CR_PAT, value: 0x0606_0606_0606_0606n, verdict: 'ok', reads: 0x0606_0606_0606_0606n },
  { what: 'PAT type 8', index: abi.MSR_IA32_CR_PAT, value: 0x08n, verdict: 'INVAL' },
  { what: 'PAT type 3', index: abi.MSR_IA32_CR_PAT, value: 0x0300n, verdict: 'INVAL' },
  { what: 'MISC_ENABLE BTS_UNAVAIL toggled (read-only)', index: abi.MSR_IA32_MISC_ENABLE, value: abi.MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL, verdict: 'INVAL' },
  {
    what: 'MISC_ENABLE EMON set (ignored)',
    index: abi.MSR_IA32_MISC_ENABLE,
    value: abi.MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | abi.MSR_IA32_MISC_ENABLE_BTS_UNAVAIL | abi.MSR_IA32_MISC_ENABLE_EMON,
    verdict: 'ok',
    reads: abi.MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | abi.MSR_IA32_MISC_ENABLE_BTS_UNAVAIL,
  },
  { what: 'POWER_CTL', index: abi.MSR_IA32_POWER_CTL, value: 0x1234n, verdict: 'ok', reads: 0x1234n },
  { what: 'APIC_BASE reserved bit 0', index: abi.MSR_IA32_APICBASE, value: 0xfee00901n, verdict: 'INVAL' },
  { what: 'APIC_BASE above MAXPHYADDR', index: abi.MSR_IA32_APICBASE, value: (1n << 46n) | 0xfee00900n, verdict: 'INVAL' },
  { what: 'APIC_BASE x2APIC without x2APIC', index: abi.MSR_IA32_APICBASE, value: 0xfee00d00n, verdict: 'INVAL', cpuid: { x2apic: false } },
  { what: 'APIC_BASE EXTD without EN', index: abi.MSR_IA32_APICBASE, value: 0xfee00500n, verdict: 'INVAL' },
  { what: 'SPEC_CTRL without the feature', index: abi.MSR_IA32_SPEC_CTRL, value: 1n, verdict: 'INVAL' },
  { what: 'SPEC_CTRL IBRS', index: abi.MSR_IA32_SPEC_CTRL, value: abi.SPEC_CTRL_IBRS, verdict: 'ok', reads: abi.SPEC_CTRL_IBRS, cpuid: { specCtrl: true } },
  { what: 'SPEC_CTRL bit 3', index: abi.MSR_IA32_SPEC_CTRL, value: 8n, verdict: 'INVAL', cpuid: { specCtrl: true } },
  { what: 'FLUSH_CMD without FLUSH_L1D', index: abi.MSR_IA32_FLUSH_CMD, value: abi.L1D_FLUSH, verdict: 'INVAL' },
  { what: 'FLUSH_CMD L1D_FLUSH', index: abi.MSR_IA32_FLUSH_CMD, value: abi.L1D_FLUSH, verdict: 'ok', cpuid: { flushL1d: true } },
  { what: 'FLUSH_CMD bit 1', index: abi.MSR_IA32_FLUSH_CMD, value: 2n, verdict: 'INVAL', cpuid: { flushL1d: true } },
  { what: 'XSS without XSAVES (a write is UNKNOWN, a read INVAL)', index: abi.MSR_IA32_XSS, value: 0n, verdict: 'UNKNOWN' },
  { what: 'TSC_DEADLINE outside TSC-deadline mode (dropped)', index: abi.MSR_IA32_TSC_DEADLINE, value: 0x1234n, verdict: 'ok', reads: 0n },
  { what: 'ASYNC_PF_EN reserved bits 5:4', index: abi.MSR_KVM_ASYNC_PF_EN, value: 0x10n, verdict: 'INVAL' },
  { what: 'ASYNC_PF_INT bits 63:8', index: abi.MSR_KVM_ASYNC_PF_INT, value: 0x100n, verdict: 'INVAL' },
  { what: 'STEAL_TIME reserved bit 1', index: abi.MSR_KVM_STEAL_TIME, value: 0x9_0002n, verdict: 'INVAL' },
  { what: 'PV_EOI_EN misaligned', index: abi.MSR_KVM_PV_EOI_EN, value: 0x9_0003n, verdict: 'INVAL' },
  { what: 'PV_EOI_EN enabled in memory', index: abi.MSR_KVM_PV_EOI_EN, value: 0x9_0001n, verdict: 'ok', reads: 0x9_0001n },
  { what: 'POLL_CONTROL bit 1', index: abi.MSR_KVM_POLL_CONTROL, value: 2n, verdict: 'INVAL' },
  { what: 'POLL_CONTROL 0', index: abi.MSR_KVM_POLL_CONTROL, value: 0n, verdict: 'ok', reads: 0n },
  { what: 'SYSTEM_TIME_NEW', index: abi.MSR_KVM_SYSTEM_TIME_NEW, value: 0x9_1001n, verdict: 'ok', reads: 0x9_1001n },
];

for (const c of WRITES) {
  test(`WRMSR ${c.what}: ${c.verdict}`, (t) => {
    const g = guest({ guestCpuid: c.cpuid });
    const value = typeof c.value === 'function' ? c.value(g) : c.value;
    t.is(wrmsr(g, c.index, value), c.verdict);
    if (c.reads !== undefined) t.is(rdmsr(g, c.index), c.reads);
  });
}

test('MSR_KVM_WALL_CLOCK_NEW writes struct pvclock_wall_clock at the GPA: an even version, then the time', (t) => {
  const g = guest();
  const gpa = 0x9_0100;
  t.is(wrmsr(g, abi.MSR_KVM_WALL_CLOCK_NEW, BigInt(gpa)), 'ok');
  const m = g.vm.memory;
  const version = m.read32(gpa);
  t.true(version > 0 && version % 2 === 0, `version ${version}`);
  const seconds = m.read32(gpa + 4);
  t.true(Math.abs(seconds - Date.now() / 1000) < 3600, 'sec is the wall-clock time at kvmclock 0');
  t.true(m.read32(gpa + 8) < 1_000_000_000, 'nsec');
  t.is(rdmsr(g, abi.MSR_KVM_WALL_CLOCK_NEW), BigInt(gpa));
});

test('with KVM_CAP_ENFORCE_PV_FEATURE_CPUID, a PV MSR whose feature the guest lacks is UNKNOWN', (t) => {
  const g = guest({ guestCpuid: { kvmPvFeatures: 1 << abi.KVM_FEATURE_CLOCKSOURCE } });
  t.is(rdmsr(g, abi.MSR_KVM_SYSTEM_TIME_NEW), 0n, 'not enforced yet');
  g.vcpu().enableCap(abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, [1]);
  t.is(rdmsr(g, abi.MSR_KVM_SYSTEM_TIME_NEW), 'UNKNOWN');
  t.is(wrmsr(g, abi.MSR_KVM_STEAL_TIME, 0n), 'UNKNOWN');
  t.is(rdmsr(g, abi.MSR_KVM_SYSTEM_TIME), 0n, 'CLOCKSOURCE is offered');
});

test('ignore_msrs: unknown MSRs read 0 and drop writes without an exit; INVAL is untouched and logged nothing', (t) => {
  const g = guest({ ignoreMsrs: true });
  const ignored: string[] = [];
  g.kvm.tracepoints.on('kvm_msr_ignored', (e) => ignored.push(e.message));
  t.is(rdmsr(g, 0xdeadbeef), 0n);
  t.is(wrmsr(g, 0xdeadbeef, 0x1234n), 'ok');
  t.is(wrmsr(g, abi.MSR_IA32_CR_PAT, 0x08n), 'INVAL', 'ignore_msrs applies only to UNSUPPORTED');
  t.is(rdmsr(g, abi.MSR_IA32_XSS), 'INVAL');
  t.is(wrmsr(g, abi.MSR_IA32_XSS, 0n), 'ok', 'the XSS write is UNSUPPORTED, so ignored');
  t.deepEqual(ignored, ['ignored rdmsr: 0xdeadbeef data 0x0', 'ignored wrmsr: 0xdeadbeef data 0x1234', 'ignored wrmsr: 0xda0 data 0x0']);
});

test('x2APIC MSRs need x2APIC mode: 0x802 is INVAL in xAPIC mode, the APIC ID once x2APIC is on', (t) => {
  const g = guest({ vcpus: 2 });
  const apicId = (n: number): Verdict => {
    g.start('rdmsr', { rcx: 0x802n }, n);
    const exit = g.run(n);
    if (exit.reason === 'KVM_EXIT_X86_RDMSR') {
      exit.msr.error = 1;
      g.finish(n);
      return exitVerdict(exit.msr.reason);
    }
    return g.outcome(n).regs.rax;
  };
  t.is(apicId(1), 'INVAL');
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE), rax: 0xfee00c00n, rdx: 0n }, 1);
  t.is(g.finish(1).fault, null);
  t.is(apicId(1), 1n);
  t.is(apicId(0), 'INVAL', 'vCPU 0 is still in xAPIC mode');
  // x2APIC → xAPIC directly is refused for the guest.
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE), rax: 0xfee00800n, rdx: 0n }, 1);
  t.is(g.run(1).reason, 'KVM_EXIT_X86_WRMSR');
});
