/**
 * The x86-64 architecture's own numbers: control-register, EFER and RFLAGS bits, exception
 * vectors and #PF error-code bits, MSR indices and bits, CPUID feature bits. Every layer may use
 * them, the CPU (host/x86) included: they are facts of the processor, not of KVM or pinbox.
 *   [pflags]     arch/x86/include/uapi/asm/processor-flags.h, asm/processor-flags.h
 *   [msr-index]  arch/x86/include/asm/msr-index.h
 *   [sdm]        Intel SDM vol. 3A (exceptions, paging error codes), vol. 2 (CPUID bits)
 */

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

/** With CR4.PCIDE, CR3 bits 11:0 are the PCID [pflags] */
export const X86_CR3_PCID_MASK = 0xfffn;

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
// Debug registers [sdm] vol. 3B §18.2 (DR6 and DR7); the kernel's names
// (arch/x86/include/uapi/asm/debugreg.h)
// ---------------------------------------------------------------------------

/** DR6.B0..B3: breakpoint condition n was met (DR6_TRAP_BITS = 0xf). */
export const DR6_TRAP_BITS = 0xf;
/** DR6.BD: the next instruction accesses a debug register (DR7.GD). */
export const DR6_BD = 1 << 13;
/** DR6.BS: single step (RFLAGS.TF). */
export const DR6_BS = 1 << 14;
/** DR6.BT: task switch. */
export const DR6_BT = 1 << 15;
/** Bits of DR6 that read as 1 when no condition sets them clear ("active low"): KVM's DR6_ACTIVE_LOW. */
export const DR6_ACTIVE_LOW = 0xffff0ff0;
/** DR6 after reset (DR6_INIT = DR6_ACTIVE_LOW, the kernel's name too). */
export const DR6_INIT = DR6_ACTIVE_LOW;
/** DR7 bit 10 reads as 1 (DR7_FIXED_1). */
export const DR7_FIXED_1 = 0x400;
/** DR7.GD: general detect, a MOV DR raises #DB first. */
export const DR7_GD = 1 << 13;
/** DR7's local and global enable bits, L0 G0 .. L3 G3 (DR7_BP_EN_MASK). */
export const DR7_BP_EN_MASK = 0xff;

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
/** #VE and #CP (SDM vol. 3A Table 6-1) */
export const VE_VECTOR = 20;
export const CP_VECTOR = 21;

export const PFERR_PRESENT = 1 << 0;
export const PFERR_WRITE = 1 << 1;
export const PFERR_USER = 1 << 2;
export const PFERR_RSVD = 1 << 3;
export const PFERR_FETCH = 1 << 4;
export const PFERR_PK = 1 << 5;

// ---------------------------------------------------------------------------
// MSR indices and bits [msr-index]; KVM's own PV MSRs are in kvm-para.ts
// ---------------------------------------------------------------------------

export const MSR_IA32_TSC = 0x10;
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

/** The x2APIC registers as MSRs (SDM vol. 3A, "x2APIC Register Address Space"); KVM never
 * filters them: kvm_msr_allowed(), docs/msr-filter.md §2.1. */
export const X2APIC_MSR_FIRST = 0x800;
export const X2APIC_MSR_LAST = 0x8ff;

/** APIC base MSR bits [msr-index] */
export const MSR_IA32_APICBASE_BSP = 1n << 8n;
export const MSR_IA32_APICBASE_EXTD = 1n << 10n;
export const MSR_IA32_APICBASE_ENABLE = 1n << 11n;

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

// ---------------------------------------------------------------------------
// CPUID feature bits [sdm] vol. 2, CPUID; KVM's PV leaves are in kvm-para.ts
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
