/**
 * The table as a whole: unknown MSRs, ignore_msrs and the advertised-MSR host rules of
 * kvm_do_msr_access(), the filter step of kvm_emulate_msr_{read,write}() and __msr_io();
 * docs/msr-filter.md §2.4, §2.6, §3 and §7 cases 13, 26, 28, 29.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KVM_MSR_RET_FILTERED } from '../../host/kvm/msrs/msr-vcpu.js';
import { MsrFilter } from '../../host/kvm/msr-filter.js';
import { EMULATED_MSRS, kvmEmulateMsrAccess, kvmIsAdvertisedMsr, kvmMsrIo } from '../../host/kvm/msr-table.js';
import { INVALID, MsrHarness, UNSUPPORTED } from './msr-harness.js';

const R = abi.KVM_MSR_FILTER_READ;
const W = abi.KVM_MSR_FILTER_WRITE;

function guest(h: MsrHarness, filter: MsrFilter | null, index: number, write = false, data = 0n): [number, bigint] {
  h.access.index = index;
  h.access.data = data;
  const r = kvmEmulateMsrAccess(h, filter, h.access, write);
  return [r, h.access.data];
}

test('the table holds the MSRs a kernel touches', (t) => {
  for (const index of [
    abi.MSR_IA32_TSC, abi.MSR_IA32_APICBASE, abi.MSR_EFER, abi.MSR_IA32_CR_PAT, abi.MSR_IA32_MISC_ENABLE,
    abi.MSR_IA32_SYSENTER_CS, abi.MSR_IA32_SYSENTER_ESP, abi.MSR_IA32_SYSENTER_EIP, abi.MSR_STAR, abi.MSR_LSTAR,
    abi.MSR_CSTAR, abi.MSR_SYSCALL_MASK, abi.MSR_FS_BASE, abi.MSR_GS_BASE, abi.MSR_KERNEL_GS_BASE,
    abi.MSR_TSC_AUX, abi.MSR_IA32_SPEC_CTRL, abi.MSR_KVM_SYSTEM_TIME_NEW, abi.MSR_KVM_WALL_CLOCK_NEW,
  ]) {
    t.true(EMULATED_MSRS.includes(index), `0x${index.toString(16)}`);
  }
});

test('MSRs the table does not know are UNSUPPORTED (UNKNOWN class): 0xdeadbeef, 0x474f4f00, MIGRATION_CONTROL', (t) => {
  const h = new MsrHarness();
  for (const index of [0xdeadbeef, 0x474f4f00, abi.MSR_KVM_MIGRATION_CONTROL, 0x8b]) {
    t.deepEqual(h.read(index), [UNSUPPORTED, 0n], `read 0x${index.toString(16)} (data zeroed)`);
    t.is(h.write(index, 1n), UNSUPPORTED);
    t.is(h.read(index, true)[0], UNSUPPORTED, 'not advertised: host reads fail too');
  }
});

test('case 26: ignore_msrs turns UNKNOWN into success (read 0, write dropped) but never touches INVAL or FILTER', (t) => {
  const h = new MsrHarness({ ignoreMsrs: true });
  t.deepEqual(h.read(0xdeadbeef), [0, 0n]);
  t.is(h.write(0xdeadbeef, 0x1234n), 0);
  t.is(h.write(abi.MSR_IA32_CR_PAT, 2n), INVALID, 'an invalid PAT still fails');
  const deny = MsrFilter.build({ flags: abi.KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: R | W, base: 0xdeadbeef, nmsrs: 1, bitmap: Uint8Array.of(0) }] });
  t.is(guest(h, deny, 0xdeadbeef)[0], KVM_MSR_RET_FILTERED);
  t.is(guest(h, deny, 0xdeadbeef, true, 1n)[0], KVM_MSR_RET_FILTERED);
});

test('a guest access is filtered before the table: FILTERED even for MSRs the table would refuse or not know', (t) => {
  const h = new MsrHarness();
  const deny = MsrFilter.build({ flags: abi.KVM_MSR_FILTER_DEFAULT_DENY, ranges: [{ flags: R, base: 0, nmsrs: 1, bitmap: Uint8Array.of(0) }] });
  t.is(guest(h, deny, abi.MSR_IA32_CR_PAT, true, 2n)[0], KVM_MSR_RET_FILTERED);
  t.is(guest(h, deny, 0xdeadbeef)[0], KVM_MSR_RET_FILTERED);
  t.deepEqual(guest(h, null, abi.MSR_IA32_CR_PAT), [0, 0x0007040600070406n]);
});

test('case 29: KVM\'s PV MSRs are filterable like any other', (t) => {
  const h = new MsrHarness();
  const f = MsrFilter.build({ flags: abi.KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: R | W, base: 0x4b564d00, nmsrs: 8, bitmap: Uint8Array.of(0) }] });
  t.is(guest(h, f, abi.MSR_KVM_SYSTEM_TIME_NEW, true, 1n)[0], KVM_MSR_RET_FILTERED);
  t.is(h.msrState.systemTime, 0n, 'nothing written');
});

test('case 13: a filter covering the x2APIC range is ignored; the in-kernel result decides (INVAL with x2APIC off)', (t) => {
  const h = new MsrHarness();
  const f = MsrFilter.build({ flags: abi.KVM_MSR_FILTER_DEFAULT_DENY, ranges: [{ flags: R | W, base: 0x800, nmsrs: 0x100, bitmap: new Uint8Array(32) }] });
  t.is(guest(h, f, 0x802)[0], INVALID);
  t.is(h.write(abi.MSR_IA32_APICBASE, 0xfee00000n | abi.MSR_IA32_APICBASE_ENABLE | abi.MSR_IA32_APICBASE_BSP | abi.MSR_IA32_APICBASE_EXTD), 0);
  t.deepEqual(guest(h, f, 0x802), [0, 0n]);
  t.is(guest(h, f, 0x7ff)[0], KVM_MSR_RET_FILTERED, 'case 14');
  t.is(guest(h, f, 0x900)[0], KVM_MSR_RET_FILTERED, 'case 14');
});

test('case 28: host-initiated KVM_GET/SET_MSRS are never filtered; __msr_io stops at the first failure', (t) => {
  const h = new MsrHarness();
  const out: { index: number; data: bigint }[] = [];
  const n = kvmMsrIo(h, h.access, [
    { index: abi.MSR_IA32_CR_PAT, data: 0n },
    { index: abi.MSR_EFER, data: 0n },
    { index: 0xdeadbeef, data: 0n },
    { index: abi.MSR_STAR, data: 0n },
  ], false, out);
  t.is(n, 2);
  t.deepEqual(out.map((e) => e.index), [abi.MSR_IA32_CR_PAT, abi.MSR_EFER]);
  const written = kvmMsrIo(h, h.access, [
    { index: abi.MSR_STAR, data: 0x23001000000000n },
    { index: abi.MSR_IA32_CR_PAT, data: 2n },
    { index: abi.MSR_LSTAR, data: 0xffff_ffff_8100_0000n },
  ], true);
  t.is(written, 1, 'stops at the bad PAT');
  t.is(h.read(abi.MSR_STAR)[1], 0x23001000000000n);
  t.is(h.read(abi.MSR_LSTAR)[1], 0n, 'entries after the failure are not written');
});

test('advertised MSRs are those of msrs_to_save/emulated_msrs, not EFER, APIC_BASE or the FS/GS bases', (t) => {
  for (const index of [abi.MSR_STAR, abi.MSR_IA32_CR_PAT, abi.MSR_KVM_STEAL_TIME, abi.MSR_IA32_MISC_ENABLE, abi.MSR_IA32_TSC_DEADLINE]) {
    t.true(kvmIsAdvertisedMsr(index), `0x${index.toString(16)}`);
  }
  for (const index of [abi.MSR_EFER, abi.MSR_IA32_APICBASE, abi.MSR_FS_BASE, abi.MSR_GS_BASE, 0xdeadbeef]) {
    t.false(kvmIsAdvertisedMsr(index), `0x${index.toString(16)}`);
  }
});
