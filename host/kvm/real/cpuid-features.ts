/**
 * The model's CPUID by features (GuestCpuid, host/kvm/cpuid.ts) over real CPUID entries: which
 * bit of which leaf each feature is (protocol/abi.ts CPUID_*), to read a feature set out of
 * KVM_GET_CPUID2 and to write one into the entries given to KVM_SET_CPUID2. Only the bits of
 * the features named change; every other bit is the kernel's (KVM_GET_SUPPORTED_CPUID).
 * What the guest then sees is the kernel's business: on a PVM host leaf 7 is the host's
 * whatever is set (README, "The real KVM backend").
 */
import * as abi from '../../../protocol/abi.js';
import { resolveGuestCpuid } from '../cpuid.js';
import { type GuestCpuid, type GuestCpuidOptions } from '../api/cpuid.js';
import { KvmError } from '../api/errors.js';
import type { CpuidEntry2 } from './cpuid.js';
import { KVM_CPUID_FLAG_SIGNIFCANT_INDEX } from './uapi.js';

type Register = 'eax' | 'ebx' | 'ecx' | 'edx';
/** A feature's bits: leaf (subleaf 0), register, mask. All bits set = the feature. */
type Bits = readonly (readonly [number, Register, number])[];

const BOOLEAN_FEATURES: Readonly<Record<Exclude<keyof GuestCpuid, 'kvmPvFeatures' | 'maxPhysAddr'>, Bits>> = {
  smep: [[7, 'ebx', abi.CPUID_7_EBX_SMEP]],
  smap: [[7, 'ebx', abi.CPUID_7_EBX_SMAP]],
  umip: [[7, 'ecx', abi.CPUID_7_ECX_UMIP]],
  fsgsbase: [[7, 'ebx', abi.CPUID_7_EBX_FSGSBASE]],
  pku: [[7, 'ecx', abi.CPUID_7_ECX_PKU]],
  la57: [[7, 'ecx', abi.CPUID_7_ECX_LA57]],
  cet: [[7, 'ecx', abi.CPUID_7_ECX_CET_SS], [7, 'edx', abi.CPUID_7_EDX_CET_IBT]],
  x2apic: [[1, 'ecx', abi.CPUID_1_ECX_X2APIC]],
  nx: [[0x8000_0001, 'edx', abi.CPUID_80000001_EDX_NX]],
  pcid: [[1, 'ecx', abi.CPUID_1_ECX_PCID]],
  xsave: [[1, 'ecx', abi.CPUID_1_ECX_XSAVE]],
  rdtscp: [[0x8000_0001, 'edx', abi.CPUID_80000001_EDX_RDTSCP]],
  rdpid: [[7, 'ecx', abi.CPUID_7_ECX_RDPID]],
  vmx: [[1, 'ecx', abi.CPUID_1_ECX_VMX]],
  specCtrl: [[7, 'edx', abi.CPUID_7_EDX_SPEC_CTRL | abi.CPUID_7_EDX_INTEL_STIBP | abi.CPUID_7_EDX_SPEC_CTRL_SSBD]],
  flushL1d: [[7, 'edx', abi.CPUID_7_EDX_FLUSH_L1D]],
  tscDeadline: [[1, 'ecx', abi.CPUID_1_ECX_TSC_DEADLINE_TIMER]],
};

function find(entries: readonly CpuidEntry2[], leaf: number): CpuidEntry2 | undefined {
  return entries.find((e) => e.function === leaf && ((e.flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) === 0 || e.index === 0));
}

/** The feature set the entries describe (a missing leaf reads as zeros). */
export function featuresOf(entries: readonly CpuidEntry2[]): GuestCpuid {
  const reg = (leaf: number, r: Register): number => find(entries, leaf)?.[r] ?? 0;
  const out: Record<string, boolean | number> = {};
  for (const [name, bits] of Object.entries(BOOLEAN_FEATURES)) {
    out[name] = bits.every(([leaf, r, mask]) => (reg(leaf, r) & mask) === mask);
  }
  out.kvmPvFeatures = reg(abi.KVM_CPUID_FEATURES, 'eax') >>> 0;
  out.maxPhysAddr = reg(0x8000_0008, 'eax') & 0xff;
  return Object.freeze(out) as unknown as GuestCpuid;
}

/**
 * `base` with the features `options` names set or cleared, checked as the model checks them
 * (resolveGuestCpuid). A leaf a named feature needs that `base` lacks is EINVAL.
 */
export function withFeatures(base: readonly CpuidEntry2[], options: GuestCpuidOptions, call: string): CpuidEntry2[] {
  // The model's checks (unknown names, types, ranges) over the current feature set.
  const wanted = resolveGuestCpuid(options, call, featuresOf(base));
  const entries = base.map((e) => ({ ...e }));
  const entry = (leaf: number, feature: string): CpuidEntry2 => {
    const e = find(entries, leaf);
    if (e === undefined) throw new KvmError('EINVAL', call, `${feature}: leaf 0x${leaf.toString(16)} is not in the CPUID entries`);
    return e;
  };
  for (const name of Object.keys(options) as (keyof GuestCpuidOptions)[]) {
    if (options[name] === undefined) continue;
    if (name === 'kvmPvFeatures') entry(abi.KVM_CPUID_FEATURES, name).eax = wanted.kvmPvFeatures >>> 0;
    else if (name === 'maxPhysAddr') {
      const e = entry(0x8000_0008, name);
      e.eax = ((e.eax & ~0xff) | wanted.maxPhysAddr) >>> 0;
    } else {
      for (const [leaf, r, mask] of BOOLEAN_FEATURES[name]) {
        const e = entry(leaf, name);
        e[r] = (wanted[name] ? e[r] | mask : e[r] & ~mask) >>> 0;
      }
    }
  }
  return entries;
}
