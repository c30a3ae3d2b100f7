/**
 * Every KVM, Heki and x86 constant pinbox uses, each defined once, each with its source.
 *
 * Sources (see ../shared/spec for the full citations):
 *   [uapi-kvm]    include/uapi/linux/kvm.h
 *   [uapi-x86]    arch/x86/include/uapi/asm/kvm.h
 *   [uapi-para]   include/uapi/linux/kvm_para.h
 *   [uapi-xpara]  arch/x86/include/uapi/asm/kvm_para.h
 *   [pflags]      arch/x86/include/uapi/asm/processor-flags.h
 *   [msr-index]   arch/x86/include/asm/msr-index.h
 *   [errno]       include/uapi/asm-generic/errno-base.h, errno.h
 *   [heki-v2]     Heki RFC v2, 20231113022326.24388-{3,4}-mic@digikod.net (spec/heki.md §0, §3)
 *   [heki-v3]     Heki RFC v3, 20240503131910.307630-{3,4}-mic@digikod.net (spec/heki.md §0, §3)
 *   [sdm]         Intel SDM vol. 3A (exceptions, paging error codes), vol. 2 (CPUID bits)
 *   [kvm-host]    arch/x86/include/asm/kvm_host.h (CR reserved-bit masks)
 *   [kvm-x86h]    arch/x86/kvm/x86.h (internal MSR return codes)
 *   [kvm-msrs]    arch/x86/kvm/msrs.c, x86.c (kvm_vcpu_reset, set/get_msr_common)
 *   [apicdef]     arch/x86/include/asm/apicdef.h; arch/x86/kvm/lapic.c, lapic.h
 *   [vmx]         arch/x86/include/uapi/asm/vmx.h (VM-exit reasons)
 */

// ---------------------------------------------------------------------------
// Linux errno values that KVM ioctls return [errno]
// ---------------------------------------------------------------------------

export const Errno = {
  EPERM: 1,
  ENOENT: 2,
  ESRCH: 3,
  EINTR: 4,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  ENOEXEC: 8,
  EBADF: 9,
  ECHILD: 10,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  ENOTBLK: 15,
  EBUSY: 16,
  EEXIST: 17,
  EXDEV: 18,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENFILE: 23,
  EMFILE: 24,
  ENOTTY: 25,
  ETXTBSY: 26,
  EFBIG: 27,
  ENOSPC: 28,
  ESPIPE: 29,
  EROFS: 30,
  EMLINK: 31,
  EPIPE: 32,
  EDOM: 33,
  ERANGE: 34,
  ENOSYS: 38,
  EOPNOTSUPP: 95,
} as const;
export type ErrnoName = keyof typeof Errno;

// ---------------------------------------------------------------------------
// kvm_run exit reasons [uapi-kvm]
// ---------------------------------------------------------------------------

export const KVM_EXIT_UNKNOWN = 0;
export const KVM_EXIT_EXCEPTION = 1;
export const KVM_EXIT_IO = 2;
export const KVM_EXIT_HYPERCALL = 3;
export const KVM_EXIT_DEBUG = 4;
export const KVM_EXIT_HLT = 5;
export const KVM_EXIT_MMIO = 6;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_INTERNAL_ERROR = 17;
export const KVM_EXIT_SYSTEM_EVENT = 24;
/** [uapi-kvm]; spec/msr-filter.md §1.1 */
export const KVM_EXIT_X86_RDMSR = 29;
/** [uapi-kvm]; spec/msr-filter.md §1.1 */
export const KVM_EXIT_X86_WRMSR = 30;

/** kvm_run.fail_entry.hardware_entry_failure_reason for invalid guest state: the VMX basic
 * exit reason 33 with bit 31 ("VM-entry failure") set, as vmx.c reports it [vmx] */
export const EXIT_REASON_INVALID_STATE = 33;
export const VMX_EXIT_REASONS_FAILED_VMENTRY = 0x80000000;

/** kvm_run.io.direction [uapi-kvm] */
export const KVM_EXIT_IO_IN = 0;
export const KVM_EXIT_IO_OUT = 1;

// ---------------------------------------------------------------------------
// Capabilities [uapi-kvm]
// ---------------------------------------------------------------------------

export const KVM_CAP_NR_VCPUS = 9;
export const KVM_CAP_MAX_VCPUS = 66;
/** kvm_run.immediate_exit is honoured [uapi-kvm] */
export const KVM_CAP_IMMEDIATE_EXIT = 136;
/** vCPU cap: enforce the KVM PV feature bits of CPUID 0x40000001 (guest_pv_has()) [uapi-kvm] */
export const KVM_CAP_ENFORCE_PV_FEATURE_CPUID = 190;
/** kvm_run.s.regs mirrors registers across KVM_RUN (kvm_valid_regs / kvm_dirty_regs) [uapi-kvm] */
export const KVM_CAP_SYNC_REGS = 74;
/** spec/msr-filter.md §1.1 */
export const KVM_CAP_X86_USER_SPACE_MSR = 188;
/** spec/msr-filter.md §1.1 */
export const KVM_CAP_X86_MSR_FILTER = 189;

// ---------------------------------------------------------------------------
// KVM_CAP_SYNC_REGS: which parts of kvm_run.s.regs are synced [uapi-x86]
// ---------------------------------------------------------------------------

export const KVM_SYNC_X86_REGS = 1 << 0;
export const KVM_SYNC_X86_SREGS = 1 << 1;
export const KVM_SYNC_X86_EVENTS = 1 << 2;

// ---------------------------------------------------------------------------
// MSR filter and user-space MSR exits [uapi-x86], [uapi-kvm]; spec/msr-filter.md §1.1
// ---------------------------------------------------------------------------

export const KVM_MSR_EXIT_REASON_INVAL = 1 << 0;
export const KVM_MSR_EXIT_REASON_UNKNOWN = 1 << 1;
export const KVM_MSR_EXIT_REASON_FILTER = 1 << 2;
export const KVM_MSR_EXIT_REASON_VALID_MASK =
  KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER;

export const KVM_MSR_FILTER_READ = 1 << 0;
export const KVM_MSR_FILTER_WRITE = 1 << 1;
export const KVM_MSR_FILTER_RANGE_VALID_MASK = KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE;

export const KVM_MSR_FILTER_DEFAULT_ALLOW = 0 << 0;
export const KVM_MSR_FILTER_DEFAULT_DENY = 1 << 0;
export const KVM_MSR_FILTER_VALID_MASK = KVM_MSR_FILTER_DEFAULT_DENY;

export const KVM_MSR_FILTER_MAX_RANGES = 16;
/** "Maximum size of any access bitmap in bytes": 0x600 bytes = 0x3000 MSRs per range. */
export const KVM_MSR_FILTER_MAX_BITMAP_SIZE = 0x600;

/** x2APIC MSRs are never filtered: kvm_msr_allowed(), spec/msr-filter.md §2.1. */
export const X2APIC_MSR_FIRST = 0x800;
export const X2APIC_MSR_LAST = 0x8ff;

// ---------------------------------------------------------------------------
// Hypercalls [uapi-para], [uapi-xpara]
// ---------------------------------------------------------------------------

export const KVM_HC_VAPIC_POLL_IRQ = 1;
export const KVM_HC_KICK_CPU = 5;
export const KVM_HC_CLOCK_PAIRING = 9;
export const KVM_HC_SEND_IPI = 10;
export const KVM_HC_SCHED_YIELD = 11;
export const KVM_HC_MAP_GPA_RANGE = 12;
/** Heki RFC v2 and v3: 13 in both (v1 used 14) — spec/heki.md §0. */
export const KVM_HC_LOCK_CR_UPDATE = 13;

/** Hypercall error codes returned in RAX, negated [uapi-para]. */
export const KVM_ENOSYS = 1000;
export const KVM_EFAULT = 14;
export const KVM_EINVAL = 22;
export const KVM_E2BIG = 7;
export const KVM_EPERM = 1;
export const KVM_EOPNOTSUPP = 95;

/** a2 flag of KVM_HC_LOCK_CR_UPDATE: "return the version of this hypercall" [heki-v2] 02/19. */
export const KVM_LOCK_CR_UPDATE_VERSION = 1 << 0;
/** The version KVM_HC_LOCK_CR_UPDATE reports (arch/x86/kvm/x86.c in [heki-v2]). */
export const HEKI_ABI_VERSION = 1;

// ---------------------------------------------------------------------------
// Heki user-space exits [heki-v2] 03/19, [heki-v3] 3/5 — spec/heki.md §3
// ---------------------------------------------------------------------------

export const KVM_HEKI_EXIT_REASON_CR0 = 1 << 0;
export const KVM_HEKI_EXIT_REASON_CR4 = 1 << 1;
export const KVM_HEKI_EXIT_REASON_VALID_MASK = KVM_HEKI_EXIT_REASON_CR0 | KVM_HEKI_EXIT_REASON_CR4;

/**
 * Heki was never merged and its numbers moved between postings; both collide with mainline
 * (KVM_EXIT_MEMORY_FAULT = 39, KVM_EXIT_TDX = 40, KVM_CAP_VM_TYPES = 235, ...). The profile
 * is a per-VM setting; `v2` is the default (ARCHITECTURE.md, "Out-of-tree ABI numbers").
 */
export interface HekiAbiProfile {
  readonly name: HekiProfileName;
  readonly KVM_EXIT_HEKI_CONFIGURE: number;
  readonly KVM_EXIT_HEKI_DENIAL: number;
  readonly KVM_CAP_HEKI_CONFIGURE: number;
  readonly KVM_CAP_HEKI_DENIAL: number;
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
  },
  /** [heki-v3] 3/5 (May 2024) */
  v3: {
    name: 'v3',
    KVM_EXIT_HEKI_CONFIGURE: 40,
    KVM_EXIT_HEKI_DENIAL: 41,
    KVM_CAP_HEKI_CONFIGURE: 236,
    KVM_CAP_HEKI_DENIAL: 237,
  },
};
export const DEFAULT_HEKI_PROFILE: HekiProfileName = 'v2';

// ---------------------------------------------------------------------------
// Control-register bits [pflags]
// ---------------------------------------------------------------------------

export const X86_CR0_PE = 1n << 0n;
export const X86_CR0_MP = 1n << 1n;
export const X86_CR0_EM = 1n << 2n;
export const X86_CR0_TS = 1n << 3n;
export const X86_CR0_ET = 1n << 4n;
export const X86_CR0_NE = 1n << 5n;
export const X86_CR0_WP = 1n << 16n;
export const X86_CR0_AM = 1n << 18n;
export const X86_CR0_NW = 1n << 29n;
export const X86_CR0_CD = 1n << 30n;
export const X86_CR0_PG = 1n << 31n;

export const X86_CR3_PCID_NOFLUSH = 1n << 63n;

export const X86_CR4_VME = 1n << 0n;
export const X86_CR4_PVI = 1n << 1n;
export const X86_CR4_TSD = 1n << 2n;
export const X86_CR4_DE = 1n << 3n;
export const X86_CR4_PSE = 1n << 4n;
export const X86_CR4_PAE = 1n << 5n;
export const X86_CR4_MCE = 1n << 6n;
export const X86_CR4_PGE = 1n << 7n;
export const X86_CR4_PCE = 1n << 8n;
export const X86_CR4_OSFXSR = 1n << 9n;
export const X86_CR4_OSXMMEXCPT = 1n << 10n;
export const X86_CR4_UMIP = 1n << 11n;
export const X86_CR4_LA57 = 1n << 12n;
export const X86_CR4_VMXE = 1n << 13n;
export const X86_CR4_SMXE = 1n << 14n;
export const X86_CR4_FSGSBASE = 1n << 16n;
export const X86_CR4_PCIDE = 1n << 17n;
export const X86_CR4_OSXSAVE = 1n << 18n;
export const X86_CR4_KL = 1n << 19n;
export const X86_CR4_SMEP = 1n << 20n;
export const X86_CR4_SMAP = 1n << 21n;
export const X86_CR4_PKE = 1n << 22n;
export const X86_CR4_CET = 1n << 23n;
export const X86_CR4_PKS = 1n << 24n;
export const X86_CR4_LAM_SUP = 1n << 28n;
export const X86_CR4_FRED = 1n << 32n;

/**
 * The host kernel's cr4_pinned_mask (arch/x86/kernel/cpu/common.c), which Heki exports and
 * uses as "the pinnable mask": SMEP|SMAP|UMIP|FSGSBASE|CET on the v2 base (≈6.6), plus FRED
 * (bit 32) on the v3 base (6.9-rc6) — spec/heki.md §0, §1.4.
 */
export const HEKI_CR4_PINNABLE_MASK_V2 =
  X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_UMIP | X86_CR4_FSGSBASE | X86_CR4_CET; // 0xb10800
export const HEKI_CR4_PINNABLE_MASK_V3 = HEKI_CR4_PINNABLE_MASK_V2 | X86_CR4_FRED;

/** The development host's CR0 as Heki reads it with read_cr0(): PG|AM|WP|NE|ET|MP|PE (spec/heki.md §8). */
export const DEFAULT_HOST_CR0 = 0x80050033n;

// ---------------------------------------------------------------------------
// EFER bits [msr-index]
// ---------------------------------------------------------------------------

export const EFER_SCE = 1n << 0n;
export const EFER_LME = 1n << 8n;
export const EFER_LMA = 1n << 10n;
export const EFER_NXE = 1n << 11n;
export const EFER_SVME = 1n << 12n;
export const EFER_LMSLE = 1n << 13n;
export const EFER_FFXSR = 1n << 14n;

// ---------------------------------------------------------------------------
// RFLAGS bits [pflags]
// ---------------------------------------------------------------------------

export const X86_EFLAGS_CF = 1 << 0;
export const X86_EFLAGS_FIXED = 1 << 1;
export const X86_EFLAGS_PF = 1 << 2;
export const X86_EFLAGS_AF = 1 << 4;
export const X86_EFLAGS_ZF = 1 << 6;
export const X86_EFLAGS_SF = 1 << 7;
export const X86_EFLAGS_TF = 1 << 8;
export const X86_EFLAGS_IF = 1 << 9;
export const X86_EFLAGS_DF = 1 << 10;
export const X86_EFLAGS_OF = 1 << 11;
export const X86_EFLAGS_IOPL = 3 << 12;
export const X86_EFLAGS_NT = 1 << 14;
export const X86_EFLAGS_RF = 1 << 16;
export const X86_EFLAGS_VM = 1 << 17;
export const X86_EFLAGS_AC = 1 << 18;
export const X86_EFLAGS_VIF = 1 << 19;
export const X86_EFLAGS_VIP = 1 << 20;
export const X86_EFLAGS_ID = 1 << 21;

// ---------------------------------------------------------------------------
// Exception vectors and #PF error-code bits [sdm] vol. 3A §6.15, §4.7
// ---------------------------------------------------------------------------

export const DE_VECTOR = 0;
export const DB_VECTOR = 1;
export const NMI_VECTOR = 2;
export const BP_VECTOR = 3;
export const OF_VECTOR = 4;
export const BR_VECTOR = 5;
export const UD_VECTOR = 6;
export const NM_VECTOR = 7;
export const DF_VECTOR = 8;
export const TS_VECTOR = 10;
export const NP_VECTOR = 11;
export const SS_VECTOR = 12;
export const GP_VECTOR = 13;
export const PF_VECTOR = 14;
export const MF_VECTOR = 16;
export const AC_VECTOR = 17;
export const MC_VECTOR = 18;
export const XM_VECTOR = 19;

export const PFERR_PRESENT = 1 << 0;
export const PFERR_WRITE = 1 << 1;
export const PFERR_USER = 1 << 2;
export const PFERR_RSVD = 1 << 3;
export const PFERR_FETCH = 1 << 4;
export const PFERR_PK = 1 << 5;

// ---------------------------------------------------------------------------
// MSR indices [msr-index], [uapi-xpara]
// ---------------------------------------------------------------------------

export const MSR_IA32_TSC = 0x10;
export const MSR_KVM_WALL_CLOCK = 0x11;
export const MSR_KVM_SYSTEM_TIME = 0x12;
export const MSR_IA32_APICBASE = 0x1b;
export const MSR_IA32_FEATURE_CONTROL = 0x3a;
export const MSR_IA32_TSC_ADJUST = 0x3b;
export const MSR_IA32_SPEC_CTRL = 0x48;
export const MSR_IA32_PRED_CMD = 0x49;
export const MSR_IA32_ARCH_CAPABILITIES = 0x10a;
export const MSR_IA32_FLUSH_CMD = 0x10b;
export const MSR_IA32_SYSENTER_CS = 0x174;
export const MSR_IA32_SYSENTER_ESP = 0x175;
export const MSR_IA32_SYSENTER_EIP = 0x176;
export const MSR_IA32_MISC_ENABLE = 0x1a0;
export const MSR_IA32_POWER_CTL = 0x1fc;
export const MSR_IA32_CR_PAT = 0x277;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
export const MSR_IA32_XSS = 0xda0;
export const MSR_EFER = 0xc0000080;
export const MSR_STAR = 0xc0000081;
export const MSR_LSTAR = 0xc0000082;
export const MSR_CSTAR = 0xc0000083;
export const MSR_SYSCALL_MASK = 0xc0000084;
export const MSR_FS_BASE = 0xc0000100;
export const MSR_GS_BASE = 0xc0000101;
export const MSR_KERNEL_GS_BASE = 0xc0000102;
export const MSR_TSC_AUX = 0xc0000103;

/** KVM paravirtual MSRs, 0x4b564d00.. ("KVM\0") [uapi-xpara] */
export const MSR_KVM_WALL_CLOCK_NEW = 0x4b564d00;
export const MSR_KVM_SYSTEM_TIME_NEW = 0x4b564d01;
export const MSR_KVM_ASYNC_PF_EN = 0x4b564d02;
export const MSR_KVM_STEAL_TIME = 0x4b564d03;
export const MSR_KVM_PV_EOI_EN = 0x4b564d04;
export const MSR_KVM_POLL_CONTROL = 0x4b564d05;
export const MSR_KVM_ASYNC_PF_INT = 0x4b564d06;
export const MSR_KVM_ASYNC_PF_ACK = 0x4b564d07;
export const MSR_KVM_MIGRATION_CONTROL = 0x4b564d08;

/** APIC base MSR bits [msr-index] */
export const MSR_IA32_APICBASE_BSP = 1n << 8n;
export const MSR_IA32_APICBASE_EXTD = 1n << 10n;
export const MSR_IA32_APICBASE_ENABLE = 1n << 11n;

// ---------------------------------------------------------------------------
// CPUID feature bits used by the guest model [sdm] vol. 2, CPUID
// ---------------------------------------------------------------------------

/** Leaf 7 subleaf 0, EBX */
export const CPUID_7_EBX_FSGSBASE = 1 << 0;
export const CPUID_7_EBX_SMEP = 1 << 7;
export const CPUID_7_EBX_SMAP = 1 << 20;
/** Leaf 7 subleaf 0, ECX */
export const CPUID_7_ECX_UMIP = 1 << 2;
export const CPUID_7_ECX_PKU = 1 << 3;
export const CPUID_7_ECX_LA57 = 1 << 16;
export const CPUID_7_ECX_CET_SS = 1 << 7;
/** Leaf 7 subleaf 0, EDX */
export const CPUID_7_EDX_CET_IBT = 1 << 20;
/** Leaf 1, ECX */
export const CPUID_1_ECX_VMX = 1 << 5;
export const CPUID_1_ECX_SMX = 1 << 6;
export const CPUID_1_ECX_PCID = 1 << 17;
export const CPUID_1_ECX_X2APIC = 1 << 21;
export const CPUID_1_ECX_XSAVE = 1 << 26;
export const CPUID_1_ECX_HYPERVISOR = 1 << 31;
/** Leaf 1, EDX */
export const CPUID_1_EDX_VME = 1 << 1;
export const CPUID_1_EDX_DE = 1 << 2;
export const CPUID_1_EDX_PSE = 1 << 3;
export const CPUID_1_EDX_TSC = 1 << 4;
export const CPUID_1_EDX_MSR = 1 << 5;
export const CPUID_1_EDX_PAE = 1 << 6;
export const CPUID_1_EDX_MCE = 1 << 7;
export const CPUID_1_EDX_APIC = 1 << 9;
export const CPUID_1_EDX_SEP = 1 << 11;
export const CPUID_1_EDX_PGE = 1 << 13;
export const CPUID_1_EDX_PAT = 1 << 16;
export const CPUID_1_EDX_FXSR = 1 << 24;
/** Leaf 0x80000001, EDX */
export const CPUID_80000001_EDX_SYSCALL = 1 << 11;
export const CPUID_80000001_EDX_NX = 1 << 20;
export const CPUID_80000001_EDX_PDPE1GB = 1 << 26;
export const CPUID_80000001_EDX_RDTSCP = 1 << 27;
export const CPUID_80000001_EDX_LM = 1 << 29;

/** KVM's paravirtual CPUID leaves: signature "KVMKVMKVM\0\0\0" [uapi-xpara] */
export const KVM_CPUID_SIGNATURE = 0x40000000;
export const KVM_CPUID_FEATURES = 0x40000001;

/** KVM_CPUID_FEATURES (0x40000001) EAX bits: guest_pv_has() [uapi-xpara] */
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

// ---------------------------------------------------------------------------
// More CPUID feature bits [sdm] vol. 2, CPUID
// ---------------------------------------------------------------------------

export const CPUID_1_ECX_TSC_DEADLINE_TIMER = 1 << 24;
/** Dynamic: mirrors CR4.OSXSAVE (kvm_update_cpuid_runtime()) */
export const CPUID_1_ECX_OSXSAVE = 1 << 27;
export const CPUID_1_EDX_CMOV = 1 << 15;
/** Dynamic: mirrors CR4.PKE */
export const CPUID_7_ECX_OSPKE = 1 << 4;
export const CPUID_7_ECX_RDPID = 1 << 22;
export const CPUID_7_EDX_SPEC_CTRL = 1 << 26;
export const CPUID_7_EDX_INTEL_STIBP = 1 << 27;
export const CPUID_7_EDX_FLUSH_L1D = 1 << 28;
export const CPUID_7_EDX_SPEC_CTRL_SSBD = 1 << 31;

// ---------------------------------------------------------------------------
// KVM's control-register masks [kvm-host], [pflags]
// ---------------------------------------------------------------------------

/** CR0 bits KVM knows; the others are reserved and silently dropped (kvm_set_cr0()). */
export const CR0_KNOWN_BITS =
  X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_ET | X86_CR0_NE |
  X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG;
/** CR4 bits KVM knows (the complement of CR4_RESERVED_BITS); the CPUID-gated ones are
 * further reserved per guest by __cr4_reserved_bits(). */
export const CR4_KNOWN_BITS =
  X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE |
  X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_PCIDE |
  X86_CR4_OSXSAVE | X86_CR4_SMEP | X86_CR4_FSGSBASE | X86_CR4_OSXMMEXCPT | X86_CR4_LA57 |
  X86_CR4_VMXE | X86_CR4_SMAP | X86_CR4_PKE | X86_CR4_UMIP | X86_CR4_LAM_SUP |
  X86_CR4_CET | X86_CR4_FRED;
/** CR8 holds only the task priority, bits 3:0 [kvm-host] CR8_RESERVED_BITS */
export const X86_CR8_TPR = 0xfn;
/** With CR4.PCIDE, CR3 bits 11:0 are the PCID [pflags] */
export const X86_CR3_PCID_MASK = 0xfffn;
/** EFER bits a VMX host with NX lets a guest set: kvm_init_efer_bits() + kvm_enable_efer_bits() */
export const EFER_SUPPORTED_BITS = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;

/**
 * The modelled host's CR4 as Heki reads it with __read_cr4() — a typical Intel host running
 * VMs: PSE|PAE|MCE|PGE|OSFXSR|OSXMMEXCPT|UMIP|VMXE|FSGSBASE|PCIDE|OSXSAVE|SMEP|SMAP|PKE, and
 * not CET, LA57 or FRED (spec/heki.md §8 assumes SMEP|SMAP|UMIP|FSGSBASE and not CET).
 * A pinbox model decision; VmOptions.hostCr4 overrides it.
 */
export const DEFAULT_HOST_CR4 =
  X86_CR4_PSE | X86_CR4_PAE | X86_CR4_MCE | X86_CR4_PGE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT |
  X86_CR4_UMIP | X86_CR4_VMXE | X86_CR4_FSGSBASE | X86_CR4_PCIDE | X86_CR4_OSXSAVE |
  X86_CR4_SMEP | X86_CR4_SMAP | X86_CR4_PKE; // 0x772ef0

// ---------------------------------------------------------------------------
// KVM-internal MSR results [kvm-x86h]; they never reach user space as such
// ---------------------------------------------------------------------------

/** "The MSR isn't supported, either because it is completely unknown to KVM, or because the
 * MSR should not exist according to the vCPU model" → KVM_MSR_EXIT_REASON_UNKNOWN. */
export const KVM_MSR_RET_UNSUPPORTED = 2;
/** "Access to the MSR is denied by a userspace MSR filter" → KVM_MSR_EXIT_REASON_FILTER. */
export const KVM_MSR_RET_FILTERED = 3;

// ---------------------------------------------------------------------------
// MSR values and bits [msr-index], [uapi-xpara], [kvm-msrs]
// ---------------------------------------------------------------------------

/** PAT at RESET: WB, WT, UC-, UC, WB, WT, UC-, UC */
export const MSR_IA32_CR_PAT_DEFAULT = 0x0007040600070406n;
export const MSR_IA32_MISC_ENABLE_EMON = 1n << 7n;
export const MSR_IA32_MISC_ENABLE_BTS_UNAVAIL = 1n << 11n;
export const MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL = 1n << 12n;
export const SPEC_CTRL_IBRS = 1n << 0n;
export const SPEC_CTRL_STIBP = 1n << 1n;
export const SPEC_CTRL_SSBD = 1n << 2n;
export const L1D_FLUSH = 1n << 0n;
export const MSR_IA32_APICBASE_BASE = 0xfffff000n;
export const APIC_DEFAULT_PHYS_BASE = 0xfee00000n;
/** Bit 0 of the KVM PV MSRs that take a guest-physical address */
export const KVM_MSR_ENABLED = 1n;
export const KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT = 1n << 2n;
export const KVM_ASYNC_PF_DELIVERY_AS_INT = 1n << 3n;
/** Bits 5:1 of MSR_KVM_STEAL_TIME are reserved (KVM_STEAL_RESERVED_MASK) */
export const KVM_STEAL_RESERVED_MASK = 0x3en;

// ---------------------------------------------------------------------------
// Local APIC registers and bits [apicdef]
// ---------------------------------------------------------------------------

export const APIC_ID = 0x20;
export const APIC_LVR = 0x30;
export const APIC_TASKPRI = 0x80;
export const APIC_ARBPRI = 0x90;
export const APIC_PROCPRI = 0xa0;
export const APIC_EOI = 0xb0;
export const APIC_LDR = 0xd0;
export const APIC_DFR = 0xe0;
export const APIC_SPIV = 0xf0;
export const APIC_ISR = 0x100;
export const APIC_TMR = 0x180;
export const APIC_IRR = 0x200;
export const APIC_ESR = 0x280;
export const APIC_LVTCMCI = 0x2f0;
export const APIC_ICR = 0x300;
export const APIC_ICR2 = 0x310;
export const APIC_LVTT = 0x320;
export const APIC_LVTTHMR = 0x330;
export const APIC_LVTPC = 0x340;
export const APIC_LVT0 = 0x350;
export const APIC_LVT1 = 0x360;
export const APIC_LVTERR = 0x370;
export const APIC_TMICT = 0x380;
export const APIC_TMCCT = 0x390;
export const APIC_TDCR = 0x3e0;
export const APIC_SELF_IPI = 0x3f0;

/** KVM's APIC version (lapic.c APIC_VERSION) */
export const APIC_VERSION = 0x14;
export const APIC_LVR_DIRECTED_EOI = 1 << 24;
export const APIC_SPIV_APIC_ENABLED = 1 << 8;
export const APIC_SPIV_DIRECTED_EOI = 1 << 12;
export const APIC_ICR_BUSY = 1 << 12;
export const APIC_VECTOR_MASK = 0xff;
export const APIC_MODE_MASK = 0x700;
export const APIC_MODE_EXTINT = 0x7;
export const APIC_SEND_PENDING = 1 << 12;
export const APIC_INPUT_POLARITY = 1 << 13;
export const APIC_LVT_REMOTE_IRR = 1 << 14;
export const APIC_LVT_LEVEL_TRIGGER = 1 << 15;
export const APIC_LVT_MASKED = 1 << 16;
export const APIC_LVT_TIMER_PERIODIC = 1 << 17;
export const APIC_LVT_TIMER_TSCDEADLINE = 2 << 17;
/** X2APIC_ICR_RESERVED_BITS: GENMASK(31, 20) | GENMASK(17, 16) | BIT(13) (lapic.c) */
export const X2APIC_ICR_RESERVED_BITS = 0xfff32000n;
