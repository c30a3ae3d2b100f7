/**
 * Heki's memory hypercalls, which were never merged and changed between postings
 * (docs/memory-protection.md §4, §5):
 *   [heki-v1]  Heki RFC v1, 5 May 2023, series 20230505152046.6575-1-mic@digikod.net:
 *              4/9 (…6575-5…) KVM_HC_LOCK_MEM_PAGE_RANGES and NOWRITE, 8/9 (…6575-9…) EXEC
 *   [heki-v2]  Heki RFC v2, 13 Nov 2023, series 20231113022326.24388-1-mic@digikod.net:
 *              10/19 (…24388-11…) per-page permissions, 11/19 (…24388-12…) KVM_HC_PROTECT_MEMORY
 * RFC v3 (May 2024) has CR pinning only: no memory hypercall.
 */

/** [heki-v1] 4/9: 13, with KVM_HC_LOCK_CR_UPDATE at 14 in v1 only. */
export const KVM_HC_LOCK_MEM_PAGE_RANGES = 13;
/** [heki-v1] struct heki_pa_range: gfn_start u64 @0, gfn_end u64 @8 (inclusive), attributes u64 @16. */
export const HEKI_PA_RANGE_SIZE = 24;
/** [heki-v1] 4/9: remove EPT write from the range (a deny-list). */
export const HEKI_ATTR_MEM_NOWRITE = 1n << 0n;
/** [heki-v1] 8/9: the range stays executable in kernel mode; once any is locked, everything else loses it. */
export const HEKI_ATTR_MEM_EXEC = 1n << 1n;
/** [heki-v1] HEKI_GFN_MAX: ranges of each kind per VM for its whole life; one call takes at most this many. */
export const HEKI_GFN_MAX = 16;

/** [heki-v2] 11/19: 14 (KVM_HC_LOCK_CR_UPDATE is 13 in v2). */
export const KVM_HC_PROTECT_MEMORY = 14;
/** [heki-v2] struct heki_page_list header: next (guest pointer) @0, next_pa u64 @8 (0 ends), npages u64 @16. */
export const HEKI_PAGE_LIST_HEADER_SIZE = 24;
/** [heki-v2] struct heki_pages: pa u64 @0, epa u64 @8 (exclusive), permissions u64 @16. */
export const HEKI_PAGES_SIZE = 24;
/** [heki-v2] 18/19: a list node is one guest page, so (4096 - 24) / 24 entries at most. */
export const HEKI_PAGE_LIST_MAX_PAGES = 169;
/** [heki-v2] 10/19, include/linux/kvm_mem_attr.h: MEM_ATTR_READ/WRITE/EXEC/IMMUTABLE. */
export const MEM_ATTR_READ = 1n << 0n;
export const MEM_ATTR_WRITE = 1n << 1n;
export const MEM_ATTR_EXEC = 1n << 2n;
export const MEM_ATTR_IMMUTABLE = 1n << 3n;
export const MEM_ATTR_PROT = 0xfn;

/**
 * pinbox's bound on a KVM_HC_PROTECT_MEMORY chain, where the RFC has none (KVM follows next_pa
 * with no limit and no loop check): MODEL DECISION, docs/memory-protection.md §5.3.
 */
export const PINBOX_HEKI_MAX_LIST_PAGES = 256;

/** [heki-v1] struct heki_pa_range[] as the u64 words it is in guest memory, in order. */
export function hekiPaRangeWords(ranges: readonly { readonly gfnStart: bigint; readonly gfnEnd: bigint; readonly attributes: bigint }[]): bigint[] {
  return ranges.flatMap((r) => [r.gfnStart, r.gfnEnd, r.attributes]);
}

/**
 * [heki-v2] One struct heki_page_list node as the u64 words it is in guest memory: `next` (the
 * guest's own pointer, which KVM ignores), `next_pa` (0 ends the chain), npages, then each
 * struct heki_pages.
 */
export function hekiPageListWords(
  next: bigint, nextPa: bigint, pages: readonly { readonly pa: bigint; readonly epa: bigint; readonly permissions: bigint }[],
): bigint[] {
  return [next, nextPa, BigInt(pages.length), ...pages.flatMap((p) => [p.pa, p.epa, p.permissions])];
}

/** Which memory hypercall a VM's Heki profile speaks. */
export type HekiMemoryAbi = 'v1' | 'v2' | 'none';
