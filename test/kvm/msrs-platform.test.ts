/**
 * TSC, TSC_AUX, PAT, MISC_ENABLE, POWER_CTL, SPEC_CTRL, FLUSH_CMD and XSS: the rules of
 * kvm_{set,get}_msr_common(), __kvm_{set,get}_msr() and vmx_{set,get}_msr().
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { kvmPatValid } from '../../host/kvm/msrs/platform-msrs.js';
import { INVALID, MsrHarness, UNSUPPORTED } from './msr-harness.js';

test('PAT: each byte must be a type 0, 1, 4, 5, 6 or 7 (case 27: type 2 is invalid)', (t) => {
  const h = new MsrHarness();
  t.is(h.read(abi.MSR_IA32_CR_PAT)[1], 0x0007040600070406n, 'RESET value');
  for (const type of [0n, 1n, 4n, 5n, 6n, 7n]) t.true(kvmPatValid(type << 56n), `type ${type}`);
  for (const type of [2n, 3n, 8n, 0x10n, 0xffn]) t.false(kvmPatValid(type << 8n), `type ${type}`);
  t.is(h.write(abi.MSR_IA32_CR_PAT, 0x2n), INVALID);
  t.is(h.write(abi.MSR_IA32_CR_PAT, 0x2n, true), INVALID, 'host too');
  t.is(h.write(abi.MSR_IA32_CR_PAT, 0x0706050401000706n), 0);
  t.is(h.read(abi.MSR_IA32_CR_PAT)[1], 0x0706050401000706n);
});

test('TSC_AUX: the guest needs RDTSCP or RDPID; bits 63:32 are reserved for everyone', (t) => {
  const none = new MsrHarness({ cpuid: { rdtscp: false, rdpid: false } });
  t.is(none.read(abi.MSR_TSC_AUX)[0], INVALID);
  t.is(none.write(abi.MSR_TSC_AUX, 1n), INVALID);
  t.is(none.write(abi.MSR_TSC_AUX, 7n, true), 0, 'the host may');
  t.deepEqual(none.read(abi.MSR_TSC_AUX, true), [0, 7n]);
  const rdpid = new MsrHarness({ cpuid: { rdtscp: false, rdpid: true } });
  t.is(rdpid.write(abi.MSR_TSC_AUX, 3n), 0);
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_TSC_AUX, 1n << 32n), INVALID);
  t.is(h.write(abi.MSR_TSC_AUX, 1n << 32n, true), INVALID);
  t.is(h.write(abi.MSR_TSC_AUX, 0xffff_ffffn), 0);
  t.deepEqual(h.read(abi.MSR_TSC_AUX), [0, 0xffff_ffffn]);
});

test('TSC: a write sets the value the guest reads', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_IA32_TSC, 0x1234_5678_9abcn), 0);
  t.deepEqual(h.read(abi.MSR_IA32_TSC), [0, 0x1234_5678_9abcn]);
});

test('MISC_ENABLE: the guest may not change BTS/PEBS_UNAVAIL, its EMON writes are ignored; the host may set anything', (t) => {
  const h = new MsrHarness();
  const reset = abi.MSR_IA32_MISC_ENABLE_BTS_UNAVAIL | abi.MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL;
  t.deepEqual(h.read(abi.MSR_IA32_MISC_ENABLE), [0, reset]);
  t.is(h.write(abi.MSR_IA32_MISC_ENABLE, 0n), INVALID);
  t.is(h.write(abi.MSR_IA32_MISC_ENABLE, reset | abi.MSR_IA32_MISC_ENABLE_EMON | 1n), 0);
  t.is(h.read(abi.MSR_IA32_MISC_ENABLE)[1], reset | 1n, 'EMON dropped, fast-strings kept');
  t.is(h.write(abi.MSR_IA32_MISC_ENABLE, abi.MSR_IA32_MISC_ENABLE_EMON, true), 0);
  t.is(h.read(abi.MSR_IA32_MISC_ENABLE)[1], abi.MSR_IA32_MISC_ENABLE_EMON);
  t.is(h.write(abi.MSR_IA32_MISC_ENABLE, 1n << 18n), 0, 'MWAIT is plain storage with the default quirk');
});

test('POWER_CTL is plain storage (the selftest reads and writes it in the kernel)', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_IA32_POWER_CTL, 0x1234n), 0);
  t.deepEqual(h.read(abi.MSR_IA32_POWER_CTL), [0, 0x1234n]);
});

test('SPEC_CTRL: INVAL for a guest without SPEC_CTRL; with it, only the host-supported IBRS|STIBP|SSBD', (t) => {
  const without = new MsrHarness();
  t.is(without.read(abi.MSR_IA32_SPEC_CTRL)[0], INVALID);
  t.is(without.write(abi.MSR_IA32_SPEC_CTRL, 1n), INVALID);
  t.is(without.write(abi.MSR_IA32_SPEC_CTRL, 1n, true), 0, 'the host may');
  const h = new MsrHarness({ cpuid: { specCtrl: true } });
  t.is(h.write(abi.MSR_IA32_SPEC_CTRL, 7n), 0);
  t.deepEqual(h.read(abi.MSR_IA32_SPEC_CTRL), [0, 7n]);
  t.is(h.write(abi.MSR_IA32_SPEC_CTRL, 8n), INVALID);
  t.is(h.write(abi.MSR_IA32_SPEC_CTRL, 8n, true), INVALID);
});

test('FLUSH_CMD is write-only: reads are unknown, guest writes need FLUSH_L1D, only bit 0 may be set', (t) => {
  const h = new MsrHarness();
  t.is(h.read(abi.MSR_IA32_FLUSH_CMD)[0], UNSUPPORTED);
  t.is(h.write(abi.MSR_IA32_FLUSH_CMD, 1n), INVALID);
  t.is(h.write(abi.MSR_IA32_FLUSH_CMD, 1n, true), 0);
  const l1d = new MsrHarness({ cpuid: { flushL1d: true } });
  t.is(l1d.write(abi.MSR_IA32_FLUSH_CMD, 1n), 0);
  t.is(l1d.write(abi.MSR_IA32_FLUSH_CMD, 2n), INVALID);
});

test('XSS without XSAVES: a guest read is INVAL, any write UNKNOWN (KVM\'s asymmetry), a host read works', (t) => {
  const h = new MsrHarness();
  t.is(h.read(abi.MSR_IA32_XSS)[0], INVALID);
  t.is(h.write(abi.MSR_IA32_XSS, 0n), UNSUPPORTED);
  t.is(h.write(abi.MSR_IA32_XSS, 1n, true), UNSUPPORTED);
  t.deepEqual(h.read(abi.MSR_IA32_XSS, true), [0, 0n]);
});
