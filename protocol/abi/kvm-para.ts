/**
 * KVM's paravirtual interface as a guest sees it: hypercall numbers and their error codes,
 * the PV MSRs and their bits, the PV CPUID leaves and feature bits.
 *   [uapi-para]   include/uapi/linux/kvm_para.h
 *   [uapi-xpara]  arch/x86/include/uapi/asm/kvm_para.h
 * Heki's hypercall (KVM_HC_LOCK_CR_UPDATE) is out of tree: heki.ts.
 */

// ---------------------------------------------------------------------------
// Hypercalls [uapi-para]
// ---------------------------------------------------------------------------

export const KVM_HC_VAPIC_POLL_IRQ = 1;
export const KVM_HC_KICK_CPU = 5;
export const KVM_HC_CLOCK_PAIRING = 9;
export const KVM_HC_SEND_IPI = 10;
export const KVM_HC_SCHED_YIELD = 11;
export const KVM_HC_MAP_GPA_RANGE = 12;

/** Hypercall error codes returned in RAX, negated [uapi-para]. */
export const KVM_ENOSYS = 1000;
export const KVM_EFAULT = 14;
export const KVM_EINVAL = 22;
export const KVM_E2BIG = 7;
export const KVM_EPERM = 1;
export const KVM_EOPNOTSUPP = 95;

// ---------------------------------------------------------------------------
// PV MSRs, 0x4b564d00.. ("KVM\0"), and their bits [uapi-xpara]
// ---------------------------------------------------------------------------

export const MSR_KVM_WALL_CLOCK = 0x11;
export const MSR_KVM_SYSTEM_TIME = 0x12;
export const MSR_KVM_WALL_CLOCK_NEW = 0x4b564d00;
export const MSR_KVM_SYSTEM_TIME_NEW = 0x4b564d01;
export const MSR_KVM_ASYNC_PF_EN = 0x4b564d02;
export const MSR_KVM_STEAL_TIME = 0x4b564d03;
export const MSR_KVM_PV_EOI_EN = 0x4b564d04;
export const MSR_KVM_POLL_CONTROL = 0x4b564d05;
export const MSR_KVM_ASYNC_PF_INT = 0x4b564d06;
export const MSR_KVM_ASYNC_PF_ACK = 0x4b564d07;
export const MSR_KVM_MIGRATION_CONTROL = 0x4b564d08;

/** Bit 0 of the KVM PV MSRs that take a guest-physical address */
export const KVM_MSR_ENABLED = 1n;
export const KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT = 1n << 2n;
export const KVM_ASYNC_PF_DELIVERY_AS_INT = 1n << 3n;
/** Bits 5:1 of MSR_KVM_STEAL_TIME are reserved (KVM_STEAL_RESERVED_MASK) */
export const KVM_STEAL_RESERVED_MASK = 0x3en;

// ---------------------------------------------------------------------------
// PV CPUID leaves and feature bits [uapi-xpara]
// ---------------------------------------------------------------------------

/** KVM's paravirtual CPUID leaves: signature "KVMKVMKVM\0\0\0" */
export const KVM_CPUID_SIGNATURE = 0x40000000;
export const KVM_CPUID_FEATURES = 0x40000001;

/** KVM_CPUID_FEATURES (0x40000001) EAX bits: guest_pv_has() */
export const KVM_FEATURE_CLOCKSOURCE = 0;
export const KVM_FEATURE_NOP_IO_DELAY = 1;
export const KVM_FEATURE_MMU_OP = 2;
export const KVM_FEATURE_CLOCKSOURCE2 = 3;
export const KVM_FEATURE_ASYNC_PF = 4;
export const KVM_FEATURE_STEAL_TIME = 5;
export const KVM_FEATURE_PV_EOI = 6;
export const KVM_FEATURE_PV_UNHALT = 7;
export const KVM_FEATURE_PV_TLB_FLUSH = 9;
export const KVM_FEATURE_ASYNC_PF_VMEXIT = 10;
export const KVM_FEATURE_PV_SEND_IPI = 11;
export const KVM_FEATURE_POLL_CONTROL = 12;
export const KVM_FEATURE_PV_SCHED_YIELD = 13;
export const KVM_FEATURE_ASYNC_PF_INT = 14;
export const KVM_FEATURE_MSI_EXT_DEST_ID = 15;
export const KVM_FEATURE_HC_MAP_GPA_RANGE = 16;
export const KVM_FEATURE_MIGRATION_CONTROL = 17;
export const KVM_FEATURE_CLOCKSOURCE_STABLE_BIT = 24;
