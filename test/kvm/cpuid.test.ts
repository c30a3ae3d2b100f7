/**
 * The guest CPUID model: the leaves KVM returns (kvm_cpuid(), including KVM's own
 * 0x40000000/0x40000001), the dynamic bits (kvm_update_cpuid_runtime()), Intel's
 * out-of-range rule (get_out_of_range_cpuid_entry()), and the CR4 bits a CPUID reserves
 * (__cr4_reserved_bits()).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { cr4GuestReservedBits, DEFAULT_GUEST_CPUID, guestPvHas, kvmCpuid, resolveGuestCpuid, type CpuidRuntime } from '../../host/kvm/cpuid.js';
import { KvmError } from '../../host/kvm/api/errors.js';

const rt: CpuidRuntime = { vcpuId: 3, cr4: 0n, apicBase: 0xfee00000n | abi.MSR_IA32_APICBASE_ENABLE };

function cpuid(leaf: number, subleaf = 0, c = DEFAULT_GUEST_CPUID, r = rt): number[] {
  const out = new Uint32Array(4);
  kvmCpuid(c, r, leaf, subleaf, out);
  return [...out];
}

const ascii = (...regs: number[]): string =>
  Buffer.from(Uint32Array.from(regs).buffer).toString('latin1');

test('leaf 0: GenuineIntel (EBX, EDX, ECX); leaf 0x40000000: "KVMKVMKVM\\0\\0\\0" with max leaf 0x40000001', (t) => {
  const [max, b, c, d] = cpuid(0);
  t.is(max, 7);
  t.is(ascii(b!, d!, c!), 'GenuineIntel');
  const [kmax, kb, kc, kd] = cpuid(abi.KVM_CPUID_SIGNATURE);
  t.is(kmax, 0x40000001);
  t.is(ascii(kb!, kc!, kd!), 'KVMKVMKVM\0\0\0');
});

test('leaf 0x40000001 EAX is the PV feature set', (t) => {
  t.is(cpuid(abi.KVM_CPUID_FEATURES)[0], DEFAULT_GUEST_CPUID.kvmPvFeatures);
  t.is(cpuid(abi.KVM_CPUID_FEATURES, 0, resolveGuestCpuid({ kvmPvFeatures: 0x18 }, 't'))[0], 0x18);
});

test('the default guest: SMEP, SMAP, UMIP, FSGSBASE, NX, RDTSCP, x2APIC; not CET, PKU, LA57, VMX', (t) => {
  const [, , ecx1] = cpuid(1);
  const [, ebx7, ecx7, edx7] = cpuid(7);
  const [, , , edx81] = cpuid(0x80000001);
  t.truthy(ebx7! & abi.CPUID_7_EBX_SMEP);
  t.truthy(ebx7! & abi.CPUID_7_EBX_SMAP);
  t.truthy(ebx7! & abi.CPUID_7_EBX_FSGSBASE);
  t.truthy(ecx7! & abi.CPUID_7_ECX_UMIP);
  t.truthy(edx81! & abi.CPUID_80000001_EDX_NX);
  t.truthy(edx81! & abi.CPUID_80000001_EDX_RDTSCP);
  t.truthy(edx81! & abi.CPUID_80000001_EDX_LM);
  t.truthy(ecx1! & abi.CPUID_1_ECX_X2APIC);
  t.truthy(ecx1! & abi.CPUID_1_ECX_HYPERVISOR);
  t.falsy(ecx7! & (abi.CPUID_7_ECX_PKU | abi.CPUID_7_ECX_LA57 | abi.CPUID_7_ECX_CET_SS));
  t.falsy(edx7! & abi.CPUID_7_EDX_CET_IBT);
  t.falsy(ecx1! & abi.CPUID_1_ECX_VMX);
});

test('dynamic bits: initial APIC ID, APIC from APIC_BASE.EN, OSXSAVE from CR4, OSPKE from CR4', (t) => {
  t.is(cpuid(1)[1]! >>> 24, 3);
  t.truthy(cpuid(1)[3]! & abi.CPUID_1_EDX_APIC);
  t.falsy(cpuid(1, 0, DEFAULT_GUEST_CPUID, { ...rt, apicBase: 0xfee00000n })[3]! & abi.CPUID_1_EDX_APIC);
  const full = resolveGuestCpuid({ xsave: true, pku: true }, 't');
  t.falsy(cpuid(1, 0, full)[2]! & abi.CPUID_1_ECX_OSXSAVE);
  t.truthy(cpuid(1, 0, full, { ...rt, cr4: abi.X86_CR4_OSXSAVE })[2]! & abi.CPUID_1_ECX_OSXSAVE);
  t.falsy(cpuid(7, 0, full)[2]! & abi.CPUID_7_ECX_OSPKE);
  t.truthy(cpuid(7, 0, full, { ...rt, cr4: abi.X86_CR4_PKE })[2]! & abi.CPUID_7_ECX_OSPKE);
});

test('0x80000008 reports MAXPHYADDR and the linear width', (t) => {
  t.is(cpuid(0x80000008)[0], 46 | (48 << 8));
  t.is(cpuid(0x80000008, 0, resolveGuestCpuid({ la57: true, maxPhysAddr: 52 }, 't'))[0], 52 | (57 << 8));
});

test('a leaf in range with no entry is zeros; past its class\'s maximum, Intel returns the highest basic leaf', (t) => {
  t.deepEqual(cpuid(3), [0, 0, 0, 0]);
  t.deepEqual(cpuid(7, 1), [0, 0, 0, 0]);
  t.deepEqual(cpuid(0x80000005), [0, 0, 0, 0]);
  const leaf7 = cpuid(7);
  t.deepEqual(cpuid(0x20), leaf7);
  t.deepEqual(cpuid(0x80000009), leaf7);
  t.deepEqual(cpuid(0x40000002), leaf7);
  t.deepEqual(cpuid(0xc0000000), leaf7);
});

test('CR4 bits reserved by the CPUID: each gated feature, plus everything KVM does not know', (t) => {
  const none = resolveGuestCpuid({ smep: false, smap: false, umip: false, fsgsbase: false }, 't');
  const rsvd = cr4GuestReservedBits(none);
  for (const bit of [abi.X86_CR4_SMEP, abi.X86_CR4_SMAP, abi.X86_CR4_UMIP, abi.X86_CR4_FSGSBASE, abi.X86_CR4_PKE, abi.X86_CR4_LA57, abi.X86_CR4_VMXE, abi.X86_CR4_PCIDE, abi.X86_CR4_OSXSAVE, abi.X86_CR4_CET, 1n << 15n, 1n << 63n]) {
    t.not(rsvd & bit, 0n, `0x${bit.toString(16)}`);
  }
  for (const bit of [abi.X86_CR4_PAE, abi.X86_CR4_PGE, abi.X86_CR4_OSFXSR, abi.X86_CR4_VME, abi.X86_CR4_MCE]) t.is(rsvd & bit, 0n);
  const all = cr4GuestReservedBits(resolveGuestCpuid({ pku: true, la57: true, vmx: true, pcid: true, xsave: true, cet: true }, 't'));
  t.is(all & (abi.X86_CR4_PKE | abi.X86_CR4_LA57 | abi.X86_CR4_VMXE | abi.X86_CR4_PCIDE | abi.X86_CR4_OSXSAVE | abi.X86_CR4_CET | abi.X86_CR4_SMEP), 0n);
});

test('guest_pv_has() binds only under enforcement', (t) => {
  const c = resolveGuestCpuid({ kvmPvFeatures: 1 << abi.KVM_FEATURE_PV_EOI }, 't');
  t.true(guestPvHas(c, false, abi.KVM_FEATURE_STEAL_TIME));
  t.false(guestPvHas(c, true, abi.KVM_FEATURE_STEAL_TIME));
  t.true(guestPvHas(c, true, abi.KVM_FEATURE_PV_EOI));
});

test('options: unknown features and wrong types are EINVAL naming them', (t) => {
  t.throws(() => resolveGuestCpuid({ smepp: true } as never, 'KVM_CREATE_VM'), { instanceOf: KvmError, message: /no feature "smepp"/ });
  t.throws(() => resolveGuestCpuid({ smep: 1 } as never, 'KVM_CREATE_VM'), { message: /smep must be a boolean/ });
  t.throws(() => resolveGuestCpuid({ maxPhysAddr: 64 }, 'KVM_CREATE_VM'), { message: /maxPhysAddr/ });
  t.throws(() => resolveGuestCpuid({ kvmPvFeatures: -1 }, 'KVM_CREATE_VM'), { message: /kvmPvFeatures/ });
  t.is(resolveGuestCpuid({ cet: true }, 't').smep, true, 'others keep their defaults');
});
