/**
 * The KVM API as user space sees it: kvm_run exit reasons, capabilities, KVM_CAP_SYNC_REGS,
 * the MSR filter and user-space MSR exits. Every number is the kernel's uapi:
 *   [uapi-kvm]  include/uapi/linux/kvm.h
 *   [uapi-x86]  arch/x86/include/uapi/asm/kvm.h
 *   [uapi-vmx]  arch/x86/include/uapi/asm/vmx.h (VMX exit reasons)
 * The Heki exits and capabilities are out of tree and numbered per ABI profile: heki.ts.
 */

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
export const KVM_EXIT_IRQ_WINDOW_OPEN = 7;
export const KVM_EXIT_SHUTDOWN = 8;
export const KVM_EXIT_FAIL_ENTRY = 9;
export const KVM_EXIT_INTR = 10;
export const KVM_EXIT_SET_TPR = 11;
export const KVM_EXIT_TPR_ACCESS = 12;
export const KVM_EXIT_NMI = 16;
export const KVM_EXIT_INTERNAL_ERROR = 17;
/** kvm_run.internal.suberror: the instruction emulator could not go on (include/uapi/linux/kvm.h). */
export const KVM_INTERNAL_ERROR_EMULATION = 1;
export const KVM_EXIT_SYSTEM_EVENT = 24;
export const KVM_EXIT_IOAPIC_EOI = 26;
export const KVM_EXIT_HYPERV = 27;
/** [uapi-kvm]; docs/msr-filter.md §1.1 */
export const KVM_EXIT_X86_RDMSR = 29;
/** [uapi-kvm]; docs/msr-filter.md §1.1 */
export const KVM_EXIT_X86_WRMSR = 30;
export const KVM_EXIT_DIRTY_RING_FULL = 31;
export const KVM_EXIT_AP_RESET_HOLD = 32;
export const KVM_EXIT_X86_BUS_LOCK = 33;
export const KVM_EXIT_XEN = 34;
export const KVM_EXIT_NOTIFY = 37;

/** kvm_run.fail_entry.hardware_entry_failure_reason for invalid guest state: the VMX basic
 * exit reason 33 with bit 31 ("VM-entry failure") set, as vmx.c reports it [uapi-vmx] */
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
/** docs/msr-filter.md §1.1 */
export const KVM_CAP_X86_USER_SPACE_MSR = 188;
/** docs/msr-filter.md §1.1 */
export const KVM_CAP_X86_MSR_FILTER = 189;
/** VM cap: KVM_SET_VCPU_EVENTS may set triple_fault.pending (kvm->arch.triple_fault_event) [uapi-kvm] */
export const KVM_CAP_X86_TRIPLE_FAULT_EVENT = 218;

// ---------------------------------------------------------------------------
// KVM_CAP_SYNC_REGS: which parts of kvm_run.s.regs are synced [uapi-x86]
// ---------------------------------------------------------------------------

export const KVM_SYNC_X86_REGS = 1 << 0;
export const KVM_SYNC_X86_SREGS = 1 << 1;
export const KVM_SYNC_X86_EVENTS = 1 << 2;

// ---------------------------------------------------------------------------
// MSR filter and user-space MSR exits [uapi-x86], [uapi-kvm]; docs/msr-filter.md §1.1
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

// ---------------------------------------------------------------------------
// KVM_SET_GUEST_DEBUG [uapi-kvm] (the generic bits), [uapi-x86] (the x86 ones)
// ---------------------------------------------------------------------------

export const KVM_GUESTDBG_ENABLE = 0x1;
export const KVM_GUESTDBG_SINGLESTEP = 0x2;
export const KVM_GUESTDBG_USE_SW_BP = 0x10000;
export const KVM_GUESTDBG_USE_HW_BP = 0x20000;
export const KVM_GUESTDBG_INJECT_DB = 0x40000;
export const KVM_GUESTDBG_INJECT_BP = 0x80000;
/** KVM_GUESTDBG_VALID_MASK for x86 (arch/x86/include/asm/kvm_host.h). */
export const KVM_GUESTDBG_VALID_MASK = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_SW_BP |
  KVM_GUESTDBG_USE_HW_BP | KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP;
