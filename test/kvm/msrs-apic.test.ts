/**
 * IA32_APIC_BASE (kvm_apic_set_base()), the x2APIC MSRs (kvm_x2apic_msr_read/write(),
 * kvm_lapic_reg_read/write()), TSC_DEADLINE and the TPR behind CR8, from
 * arch/x86/kvm/lapic.c; docs/msr-filter.md §7 case 13 for the INVAL class of x2APIC MSRs.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { INVALID, MsrHarness } from './msr-harness.js';

const EN = abi.MSR_IA32_APICBASE_ENABLE;
const EXTD = abi.MSR_IA32_APICBASE_EXTD;
const BSP = abi.MSR_IA32_APICBASE_BSP;
const XAPIC = 0xfee00000n | EN;

/** A vCPU whose APIC the guest has switched to x2APIC mode. */
function x2apic(vcpuId = 0, cpuid = {}): MsrHarness {
  const h = new MsrHarness({ vcpuId, cpuid });
  const r = h.write(abi.MSR_IA32_APICBASE, XAPIC | (vcpuId === 0 ? BSP : 0n) | EXTD);
  if (r !== 0) throw new Error(`enabling x2APIC failed: ${r}`);
  return h;
}

const msr = (offset: number): number => abi.X2APIC_MSR_FIRST + (offset >> 4);

test('APIC base at RESET: 0xfee00000, enabled, BSP on vCPU 0 only', (t) => {
  t.deepEqual(new MsrHarness().read(abi.MSR_IA32_APICBASE), [0, XAPIC | BSP]);
  t.deepEqual(new MsrHarness({ vcpuId: 1 }).read(abi.MSR_IA32_APICBASE), [0, XAPIC]);
});

test('APIC base: bits 7:0 and 9 and bits at or above MAXPHYADDR are reserved; writing the current value always works', (t) => {
  const h = new MsrHarness({ cpuid: { maxPhysAddr: 40 } });
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | 1n), INVALID);
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | (1n << 9n)), INVALID);
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | (1n << 40n)), INVALID);
  t.is(h.write(abi.MSR_IA32_APICBASE, (1n << 39n) | EN), 0, 'a base below MAXPHYADDR moves');
  t.is(h.write(abi.MSR_IA32_APICBASE, (1n << 39n) | EN), 0);
});

test('APIC base: EXTD needs x2APIC in CPUID and EN; the guest may not go x2APIC→xAPIC or disabled→x2APIC', (t) => {
  const noX2 = new MsrHarness({ cpuid: { x2apic: false } });
  t.is(noX2.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | EXTD), INVALID);
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_IA32_APICBASE, 0xfee00000n | BSP | EXTD), INVALID, 'EXTD without EN is invalid, even for the host');
  t.is(h.write(abi.MSR_IA32_APICBASE, 0xfee00000n | BSP | EXTD, true), INVALID);
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | EXTD), 0);
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP), INVALID, 'x2APIC → xAPIC');
  t.is(h.write(abi.MSR_IA32_APICBASE, 0xfee00000n | BSP), 0, 'x2APIC → disabled');
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | EXTD), INVALID, 'disabled → x2APIC');
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP | EXTD, true), 0, 'the host may');
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | BSP, true), 0, 'the host may');
});

test('case 13: an x2APIC MSR outside x2APIC mode is INVAL (1); in x2APIC mode it is emulated', (t) => {
  const h = new MsrHarness({ vcpuId: 5 });
  t.is(h.read(0x802)[0], INVALID);
  t.is(h.write(0x808, 0n), INVALID);
  t.is(h.write(abi.MSR_IA32_APICBASE, XAPIC | EXTD), 0);
  t.deepEqual(h.read(0x802), [0, 5n], 'x2APIC ID is the vCPU id');
});

test('x2APIC: LDR is cluster (id >> 4) in 31:16 and bit (id & 15); version 0x14, 6 LVTs, directed EOI', (t) => {
  const h = x2apic(0x13);
  t.deepEqual(h.read(msr(abi.APIC_LDR)), [0, (1n << 16n) | (1n << 3n)]);
  t.deepEqual(h.read(msr(abi.APIC_LVR)), [0, 0x01050014n]);
  t.is(h.write(msr(abi.APIC_ID), 7n), INVALID, 'ID is read-only');
  t.is(h.write(msr(abi.APIC_LDR), 7n), INVALID, 'LDR is read-only');
});

test('x2APIC: TPR keeps 8 bits and is CR8 << 4; PPR follows it with nothing in service', (t) => {
  const h = x2apic();
  t.is(h.write(msr(abi.APIC_TASKPRI), 0x1b5n), 0);
  t.deepEqual(h.read(msr(abi.APIC_TASKPRI)), [0, 0xb5n]);
  t.deepEqual(h.read(msr(abi.APIC_PROCPRI)), [0, 0xb5n]);
  t.is(h.lapic.getCr8(), 0xbn);
  h.lapic.setCr8(0x3n);
  t.deepEqual(h.read(msr(abi.APIC_TASKPRI)), [0, 0x30n]);
});

test('x2APIC: bits 63:32 are reserved except in the 64-bit ICR; ICR reserved bits refused, BUSY dropped', (t) => {
  const h = x2apic();
  t.is(h.write(msr(abi.APIC_TASKPRI), 1n << 32n), INVALID);
  t.is(h.write(msr(abi.APIC_ICR), 0x0000_0003_0000_40fdn), 0);
  t.deepEqual(h.read(msr(abi.APIC_ICR)), [0, 0x0000_0003_0000_40fdn]);
  t.is(h.write(msr(abi.APIC_ICR), 0x0000_0001_0000_10fdn), 0);
  t.deepEqual(h.read(msr(abi.APIC_ICR)), [0, 0x0000_0001_0000_00fdn], 'BUSY (bit 12) cleared');
  for (const bit of [13n, 16n, 17n, 20n, 31n]) t.is(h.write(msr(abi.APIC_ICR), 1n << bit), INVALID, `ICR bit ${bit}`);
});

test('x2APIC: ESR accepts only 0, SELF_IPI only a vector, EOI and SELF_IPI are write-only, ICR2/DFR/ARBPRI absent', (t) => {
  const h = x2apic();
  t.is(h.write(msr(abi.APIC_ESR), 0n), 0);
  t.is(h.write(msr(abi.APIC_ESR), 1n), INVALID);
  t.is(h.write(msr(abi.APIC_SELF_IPI), 0xffn), 0);
  t.is(h.write(msr(abi.APIC_SELF_IPI), 0x100n), INVALID);
  t.is(h.write(msr(abi.APIC_EOI), 0n), 0);
  t.is(h.read(msr(abi.APIC_EOI))[0], INVALID);
  t.is(h.read(msr(abi.APIC_SELF_IPI))[0], INVALID);
  for (const reg of [abi.APIC_ICR2, abi.APIC_DFR, abi.APIC_ARBPRI]) {
    t.is(h.read(msr(reg))[0], INVALID, `read 0x${reg.toString(16)}`);
    t.is(h.write(msr(reg), 0n), INVALID, `write 0x${reg.toString(16)}`);
  }
  t.is(h.read(0x8ff)[0], INVALID, 'beyond the register file');
  t.is(h.write(msr(abi.APIC_LVTCMCI), 0n), INVALID, 'no CMCI LVT');
});

test('x2APIC: LVTs at RESET are masked (BSP LINT0 ExtINT), keep only their writable bits, and are masked while SPIV disables the APIC', (t) => {
  const h = x2apic(0);
  t.deepEqual(h.read(msr(abi.APIC_LVTT)), [0, BigInt(abi.APIC_LVT_MASKED)]);
  t.deepEqual(h.read(msr(abi.APIC_LVT0)), [0, 0x700n]);
  t.deepEqual(h.read(msr(abi.APIC_SPIV)), [0, 0xffn]);
  // SPIV bit 8 clear: writes to LVTs come out masked.
  t.is(h.write(msr(abi.APIC_LVTERR), 0x00ef_f0fen), 0);
  t.deepEqual(h.read(msr(abi.APIC_LVTERR)), [0, BigInt(abi.APIC_LVT_MASKED | 0x10fe)]);
  t.is(h.write(msr(abi.APIC_SPIV), 0x11ffn), 0);
  t.deepEqual(h.read(msr(abi.APIC_SPIV)), [0, 0x11ffn], 'directed EOI kept for an x2APIC guest');
  t.is(h.write(msr(abi.APIC_LVT1), 0xffff_ffffn), 0);
  t.deepEqual(h.read(msr(abi.APIC_LVT1)), [0, 0x1f7ffn], 'LINT mask');
  t.is(h.write(msr(abi.APIC_LVTPC), 0x0001_07ffn), 0);
  t.deepEqual(h.read(msr(abi.APIC_LVTPC)), [0, 0x107ffn]);
  t.is(h.write(msr(abi.APIC_SPIV), 0x0ffn), 0, 'software-disable');
  t.deepEqual(h.read(msr(abi.APIC_LVTPC)), [0, 0x107ffn], 'already masked');
  t.deepEqual(h.read(msr(abi.APIC_LVT1)), [0, 0x1f7ffn]);
  t.deepEqual(h.read(msr(abi.APIC_LVT0)), [0, 0x10700n], 'masked by the disable');
});

test('x2APIC: TDCR keeps bits 0,1,3; TMCCT reads 0 (no timer model); timer mode bits follow the TSC-deadline feature', (t) => {
  const h = x2apic(0, { tscDeadline: true });
  t.is(h.write(msr(abi.APIC_SPIV), 0x1ffn), 0);
  t.is(h.write(msr(abi.APIC_TDCR), 0xffn), 0);
  t.deepEqual(h.read(msr(abi.APIC_TDCR)), [0, 0xbn]);
  t.is(h.write(msr(abi.APIC_TMICT), 1000n), 0);
  t.deepEqual(h.read(msr(abi.APIC_TMCCT)), [0, 0n]);
  t.is(h.write(msr(abi.APIC_LVTT), BigInt(abi.APIC_LVT_TIMER_TSCDEADLINE | 0x30)), 0);
  t.deepEqual(h.read(msr(abi.APIC_LVTT)), [0, BigInt(abi.APIC_LVT_TIMER_TSCDEADLINE | 0x30)]);
  const periodicOnly = x2apic(0, { tscDeadline: false });
  periodicOnly.write(msr(abi.APIC_SPIV), 0x1ffn);
  periodicOnly.write(msr(abi.APIC_LVTT), BigInt(abi.APIC_LVT_TIMER_TSCDEADLINE | 0x30));
  t.deepEqual(periodicOnly.read(msr(abi.APIC_LVTT)), [0, 0x30n], 'mode bit 18 is not writable without the feature');
});

test('TSC_DEADLINE: always accepted, kept and read back only in TSC-deadline timer mode', (t) => {
  const h = x2apic(0, { tscDeadline: true });
  t.is(h.write(abi.MSR_IA32_TSC_DEADLINE, 12345n), 0);
  t.deepEqual(h.read(abi.MSR_IA32_TSC_DEADLINE), [0, 0n], 'one-shot mode: ignored');
  h.write(msr(abi.APIC_SPIV), 0x1ffn);
  h.write(msr(abi.APIC_LVTT), BigInt(abi.APIC_LVT_TIMER_TSCDEADLINE | 0x30));
  t.is(h.write(abi.MSR_IA32_TSC_DEADLINE, 12345n), 0);
  t.deepEqual(h.read(abi.MSR_IA32_TSC_DEADLINE), [0, 12345n]);
});
