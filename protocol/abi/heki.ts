/**
 * Heki's ABI. Heki was never merged and its numbers moved between postings:
 *   [heki-v2]  Heki RFC v2, 20231113022326.24388-{3,4}-mic@digikod.net (docs/heki.md §0, §3)
 *   [heki-v3]  Heki RFC v3, 20240503131910.307630-{3,4}-mic@digikod.net (docs/heki.md §0, §3)
 * plus the host kernel's cr4_pinned_mask, which Heki exports as the CR4 bits a guest may pin.
 */
import type { HekiMemoryAbi } from './heki-memory.js';
import { KVM_EXIT_MEMORY_FAULT } from './memory-attributes.js';
import {
  X86_CR4_CET, X86_CR4_FRED, X86_CR4_FSGSBASE, X86_CR4_SMAP, X86_CR4_SMEP, X86_CR4_UMIP,
} from './x86-arch.js';

// ---------------------------------------------------------------------------
// The hypercall [heki-v2] 02/19, [heki-v3] 2/5 — docs/heki.md §1
// ---------------------------------------------------------------------------

/** 13 in both v2 and v3 (v1 used 14) — docs/heki.md §0. */
export const KVM_HC_LOCK_CR_UPDATE = 13;
/** a2 flag of KVM_HC_LOCK_CR_UPDATE: "return the version of this hypercall" [heki-v2] 02/19. */
export const KVM_LOCK_CR_UPDATE_VERSION = 1 << 0;
/** The version KVM_HC_LOCK_CR_UPDATE reports to the guest (arch/x86/kvm/x86.c in [heki-v2]). */
export const HEKI_ABI_VERSION = 1;

// ---------------------------------------------------------------------------
// Heki user-space exits [heki-v2] 03/19, [heki-v3] 3/5 — docs/heki.md §3
// ---------------------------------------------------------------------------

export const KVM_HEKI_EXIT_REASON_CR0 = 1 << 0;
export const KVM_HEKI_EXIT_REASON_CR4 = 1 << 1;
export const KVM_HEKI_EXIT_REASON_VALID_MASK = KVM_HEKI_EXIT_REASON_CR0 | KVM_HEKI_EXIT_REASON_CR4;

/**
 * Heki's exit and capability numbers collide with mainline in both postings
 * (KVM_EXIT_MEMORY_FAULT = 39, KVM_EXIT_TDX = 40, KVM_CAP_VM_TYPES = 235, ...). The profile
 * is a per-VM setting; `v2` is the default (docs/architecture.md, "Where numbers and words live").
 */
export interface HekiAbiProfile {
  readonly name: HekiProfileName;
  readonly KVM_EXIT_HEKI_CONFIGURE: number;
  readonly KVM_EXIT_HEKI_DENIAL: number;
  readonly KVM_CAP_HEKI_CONFIGURE: number;
  readonly KVM_CAP_HEKI_DENIAL: number;
  /**
   * KVM_EXIT_MEMORY_FAULT (39 in mainline, since 6.8): v3, built on 6.9, moved Heki's exits to
   * 40/41 for it; v2, built on 6.6, had 39 as KVM_EXIT_HEKI_CONFIGURE and no memory-fault exit.
   */
  readonly KVM_EXIT_MEMORY_FAULT: number | undefined;
  /** The memory hypercall the posting had (heki-memory.ts): v2's KVM_HC_PROTECT_MEMORY; none in v3. */
  readonly memory: HekiMemoryAbi;
}
export type HekiProfileName = 'v2' | 'v3';

export const HEKI_PROFILES: Readonly<Record<HekiProfileName, HekiAbiProfile>> = {
  /** [heki-v2] 03/19 (Nov 2023) */
  v2: {
    name: 'v2',
    KVM_EXIT_HEKI_CONFIGURE: 39,
    KVM_EXIT_HEKI_DENIAL: 40,
    KVM_CAP_HEKI_CONFIGURE: 235,
    KVM_CAP_HEKI_DENIAL: 236,
    KVM_EXIT_MEMORY_FAULT: undefined,
    memory: 'v2',
  },
  /** [heki-v3] 3/5 (May 2024) */
  v3: {
    name: 'v3',
    KVM_EXIT_HEKI_CONFIGURE: 40,
    KVM_EXIT_HEKI_DENIAL: 41,
    KVM_CAP_HEKI_CONFIGURE: 236,
    KVM_CAP_HEKI_DENIAL: 237,
    KVM_EXIT_MEMORY_FAULT,
    memory: 'none',
  },
};
export const DEFAULT_HEKI_PROFILE: HekiProfileName = 'v2';

// ---------------------------------------------------------------------------
// The pinnable CR4 bits — docs/heki.md §0, §1.4
// ---------------------------------------------------------------------------

/**
 * The host kernel's cr4_pinned_mask (arch/x86/kernel/cpu/common.c), which Heki exports and
 * uses as "the pinnable mask": SMEP|SMAP|UMIP|FSGSBASE|CET on the v2 base (≈6.6), plus FRED
 * (bit 32) on the v3 base (6.9-rc6) — docs/heki.md §0, §1.4.
 */
export const HEKI_CR4_PINNABLE_MASK_V2 =
  X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_UMIP | X86_CR4_FSGSBASE | X86_CR4_CET; // 0xb10800
export const HEKI_CR4_PINNABLE_MASK_V3 = HEKI_CR4_PINNABLE_MASK_V2 | X86_CR4_FRED;
