/** KVM_X86_SET_MSR_FILTER's argument (docs/msr-filter.md §1.2), as either backend takes it. */

/** `struct kvm_msr_filter_range`: `bitmap` bit i (byte i >> 3, bit i & 7) is MSR base + i; 1 allows. */
export interface MsrFilterRange {
  flags: number;
  base: number;
  nmsrs: number;
  bitmap?: Uint8Array | null;
}

/** `struct kvm_msr_filter`. Up to 16 ranges; missing slots count as empty (nmsrs 0). */
export interface MsrFilterSpec {
  flags: number;
  ranges?: readonly MsrFilterRange[];
}
