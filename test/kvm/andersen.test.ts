/**
 * John Andersen's PV CR pinning (20200617190757.27081-3-john.s.andersen@intel.com; docs/andersen.md)
 * on a VM created with the `andersen` option, with real RDMSR/WRMSR/MOV CR on the core. The
 * expectations are the posting's msr.rst text and kvm_{get,set}_msr_common()/kvm_set_cr0/4()
 * hunks, and its kvm-unit-tests (read the allowed MSR, pin, write the same value: no fault;
 * flip the pinned bit: #GP, bit unchanged) — docs/heki.md §5, §8 #14.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { Guest, type GuestOptions } from './guest.js';

const WP = abi.X86_CR0_WP;
const SMEP = abi.X86_CR4_SMEP;
const SMAP = abi.X86_CR4_SMAP;
const UMIP = abi.X86_CR4_UMIP;
const GP = abi.GP_VECTOR;
const BOOT_CR0 = 0x80050033n;
const BOOT_CR4 = 0x310ea0n;

const andersen = (o: GuestOptions = {}): Guest => new Guest({ andersen: true, ...o });

/** RDMSR at CPL0: the value, or the fault's vector. */
function rdmsr(g: Guest, index: number): bigint | { vector: number } {
  g.start('rdmsr', { rcx: BigInt(index) });
  const out = g.finish();
  return out.fault === null ? (out.regs.rax & 0xffff_ffffn) | (out.regs.rdx << 32n) : { vector: out.fault.vector };
}

/** WRMSR at CPL0: null, or the fault's vector. */
function wrmsr(g: Guest, index: number, value: bigint): number | null {
  g.start('wrmsr', { rcx: BigInt(index), rax: value & 0xffff_ffffn, rdx: value >> 32n });
  return g.finish().fault?.vector ?? null;
}

function writeCr(g: Guest, cr: 0 | 4, value: bigint): number | null {
  g.start(cr === 0 ? 'writeCr0' : 'writeCr4', { rax: value });
  return g.finish().fault?.vector ?? null;
}

test('the numbers of the 17 Jun 2020 posting: KVM_FEATURE_CR_PIN 15, MSRs 0x4b564d08-0d, allowed WP and SMEP|SMAP|UMIP', (t) => {
  t.is(abi.KVM_FEATURE_CR_PIN, 15);
  t.deepEqual([...abi.ANDERSEN_MSR_INDICES], [0x4b564d08, 0x4b564d09, 0x4b564d0a, 0x4b564d0b, 0x4b564d0c, 0x4b564d0d]);
  t.is(abi.MSR_KVM_CR0_PIN_ALLOWED, abi.MSR_KVM_MIGRATION_CONTROL, 'the collision with mainline');
  t.is(abi.KVM_FEATURE_CR_PIN, abi.KVM_FEATURE_MSI_EXT_DEST_ID);
  t.is(abi.KVM_CR0_PIN_ALLOWED, 0x10000n);
  t.is(abi.KVM_CR4_PIN_ALLOWED, 0x300800n);
});

test('without the option, the six MSRs are unknown to KVM: #GP, as on mainline, where the model does not emulate MIGRATION_CONTROL', (t) => {
  const g = new Guest();
  for (const index of abi.ANDERSEN_MSR_INDICES) t.deepEqual(rdmsr(g, index), { vector: GP });
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH, WP), GP);
});

test('the allowed MSRs read WP and SMEP|SMAP|UMIP; a write succeeds only with exactly that value, from the guest or the host', (t) => {
  const g = andersen();
  t.is(rdmsr(g, abi.MSR_KVM_CR0_PIN_ALLOWED), WP);
  t.is(rdmsr(g, abi.MSR_KVM_CR4_PIN_ALLOWED), SMEP | SMAP | UMIP);
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PIN_ALLOWED, WP), null);
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PIN_ALLOWED, 0n), GP);
  t.is(g.vcpu().setMsrs([{ index: abi.MSR_KVM_CR4_PIN_ALLOWED, data: SMEP }]), 0, 'the host cannot redefine it either');
  t.is(g.vcpu().setMsrs([{ index: abi.MSR_KVM_CR4_PIN_ALLOWED, data: SMEP | SMAP | UMIP }]), 1);
});

test('pinned high: the pin reads back, the same value writes, a write that clears the bit is #GP(0) and CR0 keeps it', (t) => {
  const g = andersen();
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH, WP), null);
  t.is(rdmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH), WP, 'the code lets the guest read its pins');
  t.is(writeCr(g, 0, BOOT_CR0), null);
  g.start('writeCr0', { rax: BOOT_CR0 & ~WP });
  const out = g.finish();
  t.is(out.fault?.vector, GP);
  t.is(out.fault?.errorCode, 0);
  t.is(g.cr(0), BOOT_CR0);
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, SMEP | SMAP), null);
  t.is(writeCr(g, 4, BOOT_CR4 & ~SMAP), GP);
  t.is(writeCr(g, 4, BOOT_CR4 & ~UMIP), null, 'UMIP is not pinned');
});

test('pinned low: a bit pinned to 0 cannot be set (the posting\'s "pin high … pinned low, or vice versa")', (t) => {
  const g = andersen();
  t.is(writeCr(g, 4, BOOT_CR4 & ~UMIP), null);
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_LOW, UMIP), null);
  t.is(writeCr(g, 4, BOOT_CR4), GP, 'setting UMIP again');
  t.is(g.cr(4), BOOT_CR4 & ~UMIP);
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, UMIP), GP, 'a bit pinned low cannot be pinned high');
});

test('a write with a bit outside the allowed ones is #GP, and so is a guest write that would drop a pin; the guest may only add', (t) => {
  const g = andersen();
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH, WP | abi.X86_CR0_PE), GP);
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, abi.X86_CR4_FSGSBASE), GP);
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, SMEP), null);
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, SMAP), GP, '~data & current: SMEP would be dropped');
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, SMEP | SMAP), null);
  t.is(rdmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH), SMEP | SMAP);
});

test('the host may clear or change the pins at any point (KVM_SET_MSRS assigns); its writes still obey the allowed bits', (t) => {
  const g = andersen();
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH, WP), null);
  t.is(g.vcpu().setMsrs([{ index: abi.MSR_KVM_CR0_PINNED_HIGH, data: 0n }]), 1);
  t.deepEqual(g.vcpu().getMsrs([abi.MSR_KVM_CR0_PINNED_HIGH]), [{ index: abi.MSR_KVM_CR0_PINNED_HIGH, data: 0n }]);
  t.is(writeCr(g, 0, BOOT_CR0 & ~WP), null, 'no longer pinned');
  t.is(g.vcpu().setMsrs([{ index: abi.MSR_KVM_CR0_PINNED_HIGH, data: abi.X86_CR0_PE }]), 0);
});

test('pins are per vCPU; kvm_vcpu_reset() clears them at INIT', (t) => {
  const g = andersen({ vcpus: 2 });
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH, WP), null);
  g.start('writeCr0', { rax: BOOT_CR0 & ~WP }, 1);
  t.is(g.finish(1).fault, null, 'vCPU 1 has no pins');
  g.vcpu().init();
  g.reboot();
  t.is(rdmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH), 0n);
  t.is(writeCr(g, 0, BOOT_CR0 & ~WP), null);
});

test('host writes through KVM_SET_SREGS are not checked (__set_sregs() does not go through kvm_set_cr0/4)', (t) => {
  const g = andersen();
  t.is(wrmsr(g, abi.MSR_KVM_CR4_PINNED_HIGH, SMEP), null);
  const s = g.vcpu().getSregs();
  g.vcpu().setSregs({ ...s, cr4: BOOT_CR4 & ~SMEP });
  t.is(g.cr(4), BOOT_CR4 & ~SMEP);
});

test('under KVM_CAP_ENFORCE_PV_FEATURE_CPUID the MSRs need KVM_FEATURE_CR_PIN (model decision)', (t) => {
  const g = andersen({ guestCpuid: { kvmPvFeatures: 0 } });
  g.vcpu().enableCap(abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, [1]);
  t.deepEqual(rdmsr(g, abi.MSR_KVM_CR0_PIN_ALLOWED), { vector: GP });
  const h = andersen({ guestCpuid: { kvmPvFeatures: 1 << abi.KVM_FEATURE_CR_PIN } });
  h.vcpu().enableCap(abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID, [1]);
  t.is(rdmsr(h, abi.MSR_KVM_CR0_PIN_ALLOWED), WP);
});

test('LMSW goes through kvm_set_cr0(): with WP pinned, an LMSW (which cannot touch WP) still retires', (t) => {
  const g = andersen();
  t.is(wrmsr(g, abi.MSR_KVM_CR0_PINNED_HIGH, WP), null);
  g.start('lmsw', { rax: 0x3n });
  t.is(g.finish().fault, null);
  t.is(g.cr(0), BOOT_CR0 | abi.X86_CR0_MP);
});
