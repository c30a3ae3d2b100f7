/**
 * The model's CPUID by features (GuestCpuid, host/kvm/cpuid.ts) over real CPUID entries: which
 * bit of which leaf each feature is (protocol/abi.ts CPUID_*), to read a feature set out of
 * KVM_GET_CPUID2 and to write one into the entries given to KVM_SET_CPUID2 (the bits: api/cpuid.ts). Only the bits of
 * the features named change; every other bit is the kernel's (KVM_GET_SUPPORTED_CPUID).
 * What the guest then sees is the kernel's business: on a PVM host leaf 7 is the host's
 * whatever is set (README, "The real KVM backend").
 */
import * as abi from '../../../protocol/abi.js';
import { resolveGuestCpuid } from '../cpuid.js';
import { GUEST_CPUID_BITS as BOOLEAN_FEATURES, type GuestCpuid, type GuestCpuidOptions, type CpuidRegister as Register } from '../api/cpuid.js';
import { KvmError } from '../api/errors.js';
import type { CpuidEntry2 } from './cpuid.js';
import { KVM_CPUID_FLAG_SIGNIFCANT_INDEX } from './uapi.js';

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
