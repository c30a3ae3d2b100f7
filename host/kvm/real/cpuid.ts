/**
 * `struct kvm_cpuid2` and `struct kvm_cpuid_entry2` (arch/x86/include/uapi/asm/kvm.h), for
 * KVM_GET_SUPPORTED_CPUID, KVM_GET_CPUID2 and KVM_SET_CPUID2. The real backend passes raw
 * entries: which features a guest gets is the caller's choice, made from what the kernel
 * supports (on a PVM host that list is sparse: docs/real-kvm.md §4).
 */
import { KvmError } from '../api/errors.js';
import { isU32 } from '../u64.js';
import { CPUID_ENTRY2, KVM_MAX_CPUID_ENTRIES, SIZEOF_CPUID2_HEADER, SIZEOF_CPUID_ENTRY2 } from './uapi.js';

/** One CPUID leaf (and subleaf, when flags has KVM_CPUID_FLAG_SIGNIFCANT_INDEX). */
export interface CpuidEntry2 {
  function: number;
  index: number;
  flags: number;
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

const FIELDS = ['function', 'index', 'flags', 'eax', 'ebx', 'ecx', 'edx'] as const;

/**
 * A kvm_cpuid2 of `nent` entries holding `entries`. An nent past KVM_MAX_CPUID_ENTRIES is
 * passed with the header alone: the kernel answers E2BIG from it before reading any entry.
 */
export function encodeCpuid(entries: readonly CpuidEntry2[], nent: number, call: string): DataView {
  if (!Array.isArray(entries)) throw new KvmError('EINVAL', call, 'entries must be an array');
  const stored = nent <= KVM_MAX_CPUID_ENTRIES ? nent : 0;
  const v = new DataView(new ArrayBuffer(SIZEOF_CPUID2_HEADER + stored * SIZEOF_CPUID_ENTRY2));
  v.setUint32(0, nent, true);
  entries.slice(0, stored).forEach((e, i) => {
    if (typeof e !== 'object' || e === null) throw new KvmError('EINVAL', call, `entry ${i} must be an object`);
    for (const f of FIELDS) {
      if (!isU32(e[f])) throw new KvmError('EINVAL', call, `entry ${i}: ${f} must be a u32, got ${String(e[f])}`);
      v.setUint32(SIZEOF_CPUID2_HEADER + i * SIZEOF_CPUID_ENTRY2 + CPUID_ENTRY2[f], e[f], true);
    }
  });
  return v;
}

/** The entries of a kvm_cpuid2 the kernel filled (its nent says how many). */
export function decodeCpuid(v: DataView): CpuidEntry2[] {
  const n = Math.min(v.getUint32(0, true), (v.byteLength - SIZEOF_CPUID2_HEADER) / SIZEOF_CPUID_ENTRY2);
  return Array.from({ length: n }, (_, i) => {
    const at = SIZEOF_CPUID2_HEADER + i * SIZEOF_CPUID_ENTRY2;
    const e = {} as CpuidEntry2;
    for (const f of FIELDS) e[f] = v.getUint32(at + CPUID_ENTRY2[f], true);
    return e;
  });
}
