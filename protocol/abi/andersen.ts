/**
 * John Andersen's paravirtual CR pinning, as its third posting numbered it (docs/andersen.md):
 *   [cr-pin]  "[PATCH 2/4] KVM: x86: Introduce paravirt feature CR0/CR4 pinning",
 *             20200617190757.27081-3-john.s.andersen@intel.com (17 Jun 2020): the CPUID bit and
 *             MSRs in arch/x86/include/uapi/asm/kvm_para.h, the allowed bits in arch/x86/kvm/x86.c
 * It was never merged, and mainline gave its numbers to others since: 0x4b564d08 is
 * MSR_KVM_MIGRATION_CONTROL and KVM_FEATURE 15 is KVM_FEATURE_MSI_EXT_DEST_ID (kvm-para.ts). A
 * VM created with the `andersen` option sees these meanings instead of mainline's.
 */
import { X86_CR0_WP, X86_CR4_SMAP, X86_CR4_SMEP, X86_CR4_UMIP } from './x86-arch.js';

/** KVM_CPUID_FEATURES (0x40000001) EAX bit 15 [cr-pin]; mainline's KVM_FEATURE_MSI_EXT_DEST_ID. */
export const KVM_FEATURE_CR_PIN = 15;

/** Read-only: the CR0 bits a guest may pin [cr-pin]; mainline's MSR_KVM_MIGRATION_CONTROL. */
export const MSR_KVM_CR0_PIN_ALLOWED = 0x4b564d08;
/** Read-only: the CR4 bits a guest may pin [cr-pin]. */
export const MSR_KVM_CR4_PIN_ALLOWED = 0x4b564d09;
/** The CR0 bits pinned to 0 [cr-pin]. */
export const MSR_KVM_CR0_PINNED_LOW = 0x4b564d0a;
/** The CR0 bits pinned to 1 [cr-pin]. */
export const MSR_KVM_CR0_PINNED_HIGH = 0x4b564d0b;
/** The CR4 bits pinned to 0 [cr-pin]. */
export const MSR_KVM_CR4_PINNED_LOW = 0x4b564d0c;
/** The CR4 bits pinned to 1 [cr-pin]. */
export const MSR_KVM_CR4_PINNED_HIGH = 0x4b564d0d;

/** KVM_CR0_PIN_ALLOWED: WP [cr-pin]. */
export const KVM_CR0_PIN_ALLOWED = X86_CR0_WP;
/** KVM_CR4_PIN_ALLOWED: SMEP, SMAP, UMIP [cr-pin]. */
export const KVM_CR4_PIN_ALLOWED = X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_UMIP;

/** The four MSRs that hold a vCPU's pins, which user space saves, restores and clears. */
export const ANDERSEN_PINNED_MSRS = [
  MSR_KVM_CR0_PINNED_LOW, MSR_KVM_CR0_PINNED_HIGH, MSR_KVM_CR4_PINNED_LOW, MSR_KVM_CR4_PINNED_HIGH,
] as const;

/** All six, in index order. */
export const ANDERSEN_MSR_INDICES = [
  MSR_KVM_CR0_PIN_ALLOWED, MSR_KVM_CR4_PIN_ALLOWED, MSR_KVM_CR0_PINNED_LOW, MSR_KVM_CR0_PINNED_HIGH,
  MSR_KVM_CR4_PINNED_LOW, MSR_KVM_CR4_PINNED_HIGH,
] as const;
