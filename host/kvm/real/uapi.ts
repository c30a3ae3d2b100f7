/**
 * The binary interface of /dev/kvm that the real backend speaks: ioctl request numbers, and the
 * sizes and offsets of the structures it reads and writes, for x86-64 Linux
 * (include/uapi/linux/kvm.h, arch/x86/include/uapi/asm/kvm.h, include/uapi/asm-generic/ioctl.h).
 * Exit reasons, capability numbers and MSR-filter flags are those of protocol/abi.ts (the exits'
 * names: host/kvm/api/exits.ts); what is here exists only because the real backend lays out C
 * structures. test/kvm-real/uapi.test.ts
 * holds every number against literals and, where gcc is present, against <linux/kvm.h>.
 */

// ---------------------------------------------------------------------------
// _IOC(dir, type, nr, size) [asm-generic/ioctl.h]: dir in bits 31:30, size 29:16, type 15:8,
// nr 7:0. The numbers exceed 2^31, so they are built with multiplication: JavaScript's bit
// operators are signed 32-bit.
// ---------------------------------------------------------------------------

const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;
const KVMIO = 0xae;

function ioc(dir: number, nr: number, size: number): number {
  return dir * 2 ** 30 + size * 2 ** 16 + KVMIO * 2 ** 8 + nr;
}
const io = (nr: number): number => ioc(IOC_NONE, nr, 0);
const ior = (nr: number, size: number): number => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number): number => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number): number => ioc(IOC_READ | IOC_WRITE, nr, size);

// ---------------------------------------------------------------------------
// Structure sizes [uapi-kvm], [uapi-x86]
// ---------------------------------------------------------------------------

/** struct kvm_userspace_memory_region: slot, flags, guest_phys_addr, memory_size, userspace_addr */
export const SIZEOF_USERSPACE_MEMORY_REGION = 32;
/** struct kvm_regs: 16 GPRs, rip, rflags */
export const SIZEOF_REGS = 144;
/** struct kvm_sregs: 8 segments, gdt, idt, cr0..cr8, efer, apic_base, interrupt_bitmap[4] */
export const SIZEOF_SREGS = 312;
/** struct kvm_segment */
export const SIZEOF_SEGMENT = 24;
/** struct kvm_msr_list header: nmsrs (then the u32 indices) */
export const SIZEOF_MSR_LIST_HEADER = 4;
/** struct kvm_msrs header: nmsrs, pad (then the entries) */
export const SIZEOF_MSRS_HEADER = 8;
/** struct kvm_msr_entry: index, reserved, data */
export const SIZEOF_MSR_ENTRY = 16;
/** struct kvm_cpuid2 header: nent, padding (then the entries) */
export const SIZEOF_CPUID2_HEADER = 8;
/** struct kvm_cpuid_entry2: function, index, flags, eax, ebx, ecx, edx, padding[3] */
export const SIZEOF_CPUID_ENTRY2 = 40;
/** struct kvm_enable_cap: cap, flags, args[4], pad[64] */
export const SIZEOF_ENABLE_CAP = 104;
/** struct kvm_guest_debug: control u32, pad u32, debugreg[8] u64 */
export const SIZEOF_GUEST_DEBUG = 72;
/** struct kvm_msr_filter: flags, then ranges[16] from offset 8 */
export const SIZEOF_MSR_FILTER = 392;
/** struct kvm_msr_filter_range: flags, nmsrs, base, (4 bytes of padding), bitmap pointer */
export const SIZEOF_MSR_FILTER_RANGE = 24;
/**
 * struct kvm_vcpu_events (x86): exception { injected, nr, has_error_code, pending: u8; error_code:
 * u32 } @0, interrupt @8, nmi @12, sipi_vector @16, flags @20, smi @24, triple_fault @28,
 * reserved, exception_has_payload @55, exception_payload u64 @56 (api.rst 4.31, KVM_GET_VCPU_EVENTS).
 */
export const SIZEOF_VCPU_EVENTS = 64;
export const VCPU_EVENTS = {
  exception_injected: 0,
  exception_nr: 1,
  exception_has_error_code: 2,
  exception_pending: 3,
  exception_error_code: 4,
  flags: 20,
  triple_fault_pending: 28,
  exception_has_payload: 55,
  exception_payload: 56,
} as const;
/** KVM_VCPUEVENT_VALID_PAYLOAD: the flag that says exception.pending and the payload fields are meant. */
export const KVM_VCPUEVENT_VALID_PAYLOAD = 0x10;
/** KVM_VCPUEVENT_VALID_TRIPLE_FAULT: triple_fault.pending is meant (needs KVM_CAP_X86_TRIPLE_FAULT_EVENT). */
export const KVM_VCPUEVENT_VALID_TRIPLE_FAULT = 0x20;

/** struct kvm_signal_mask: len (then the sigset bytes) */
export const SIZEOF_SIGNAL_MASK = 4;

// ---------------------------------------------------------------------------
// ioctl request numbers [uapi-kvm]
// ---------------------------------------------------------------------------

export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_MSR_INDEX_LIST = iowr(0x02, SIZEOF_MSR_LIST_HEADER);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, SIZEOF_CPUID2_HEADER);
export const KVM_CREATE_VCPU = io(0x41);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, SIZEOF_USERSPACE_MEMORY_REGION);
export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, SIZEOF_REGS);
export const KVM_SET_REGS = iow(0x82, SIZEOF_REGS);
export const KVM_GET_SREGS = ior(0x83, SIZEOF_SREGS);
export const KVM_SET_SREGS = iow(0x84, SIZEOF_SREGS);
export const KVM_GET_MSRS = iowr(0x88, SIZEOF_MSRS_HEADER);
export const KVM_SET_MSRS = iow(0x89, SIZEOF_MSRS_HEADER);
export const KVM_SET_SIGNAL_MASK = iow(0x8b, SIZEOF_SIGNAL_MASK);
export const KVM_SET_CPUID2 = iow(0x90, SIZEOF_CPUID2_HEADER);
export const KVM_GET_CPUID2 = iowr(0x91, SIZEOF_CPUID2_HEADER);
export const KVM_GET_VCPU_EVENTS = ior(0x9f, SIZEOF_VCPU_EVENTS);
export const KVM_SET_VCPU_EVENTS = iow(0xa0, SIZEOF_VCPU_EVENTS);
export const KVM_ENABLE_CAP = iow(0xa3, SIZEOF_ENABLE_CAP);
export const KVM_SET_GUEST_DEBUG = iow(0x9b, SIZEOF_GUEST_DEBUG);
export const KVM_X86_SET_MSR_FILTER = iow(0xc6, SIZEOF_MSR_FILTER);

/** The API version every KVM since Linux 2.6.22 reports (KVM_API_VERSION). */
export const KVM_API_VERSION = 12;

// ---------------------------------------------------------------------------
// struct kvm_run [uapi-kvm]: byte offsets. The exit union starts at 32.
// ---------------------------------------------------------------------------

export const RUN = {
  immediate_exit: 1,
  exit_reason: 8,
  flags: 14,
  cr8: 16,
  apic_base: 24,
  /** io: direction u8, size u8, port u16, count u32, data_offset u64 (from the start of kvm_run) */
  io_direction: 32,
  io_size: 33,
  io_port: 34,
  io_count: 36,
  io_data_offset: 40,
  /** mmio: phys_addr u64, data[8], len u32, is_write u8 */
  mmio_phys_addr: 32,
  mmio_data: 40,
  mmio_len: 48,
  mmio_is_write: 52,
  /** fail_entry: hardware_entry_failure_reason u64, cpu u32 */
  fail_entry_reason: 32,
  fail_entry_cpu: 40,
  /** internal: suberror u32, ndata u32, data[16] u64 */
  internal_suberror: 32,
  internal_ndata: 36,
  internal_data: 40,
  /** system_event: type u32, ndata u32, data[16] u64 */
  system_event_type: 32,
  system_event_ndata: 36,
  system_event_data: 40,
  /** msr: error u8 (7 bytes of padding), reason u32, index u32, data u64 */
  msr_error: 32,
  msr_reason: 40,
  msr_index: 44,
  msr_data: 48,
  /** memory_fault: flags u64, gpa u64, size u64 */
  memory_fault_flags: 32,
  memory_fault_gpa: 40,
  memory_fault_size: 48,
  /** debug (struct kvm_debug_exit_arch): exception u32, pad u32, pc u64, dr6 u64, dr7 u64 */
  debug_exception: 32,
  debug_pc: 40,
  debug_dr6: 48,
  debug_dr7: 56,
  /** Heki (out of tree, docs/heki.md §3.2): reason u64, then cr_pinned / cr_value u64 */
  heki_reason: 32,
  heki_value: 40,
  /**
   * pinbox's extension exits (out of tree, docs/pinbox-abi.md), which no kernel gives today:
   * cr_filter: cr u32, access u32, old_value u64, new_value u64, rip u64, action u32, pad, value u64
   */
  cr_filter_cr: 32,
  cr_filter_access: 36,
  cr_filter_old: 40,
  cr_filter_new: 48,
  cr_filter_rip: 56,
  cr_filter_action: 64,
  cr_filter_value: 72,
  /**
   * reg_intercept: intercept u32, msr u32, old_value u64, new_value u64, old_limit u16,
   * new_limit u16, pad u32, rip u64, action u32, limit u16, pad u16, value u64
   */
  reg_intercept_intercept: 32,
  reg_intercept_msr: 36,
  reg_intercept_old: 40,
  reg_intercept_new: 48,
  reg_intercept_old_limit: 56,
  reg_intercept_new_limit: 58,
  reg_intercept_rip: 64,
  reg_intercept_action: 72,
  reg_intercept_limit: 76,
  reg_intercept_value: 80,
  kvm_valid_regs: 288,
  kvm_dirty_regs: 296,
  /** s.regs: struct kvm_sync_regs { kvm_regs regs; kvm_sregs sregs; kvm_vcpu_events events; } */
  s_regs: 304,
  s_sregs: 304 + SIZEOF_REGS,
} as const;

/** The most data[] entries the internal and system_event exits carry. */
export const RUN_DATA_MAX = 16;

// ---------------------------------------------------------------------------
// struct kvm_regs and struct kvm_sregs [uapi-x86]
// ---------------------------------------------------------------------------

// kvm_regs: each field is a u64 at 8 × its position in KVM_REGS_FIELDS (host/kvm/api/regs.ts).

/** kvm_segment: offsets of its fields. */
export const SEGMENT = {
  base: 0, limit: 8, selector: 12, type: 14, present: 15, dpl: 16, db: 17, s: 18, l: 19, g: 20, avl: 21, unusable: 22,
} as const;

/** kvm_sregs: the segments in order (each SIZEOF_SEGMENT bytes from 0), then the rest. */
export const SREGS_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export const SREGS = {
  gdt: 192, idt: 208, cr0: 224, cr2: 232, cr3: 240, cr4: 248, cr8: 256, efer: 264, apic_base: 272, interrupt_bitmap: 280,
} as const;
/** kvm_dtable: base u64, limit u16 (then 3 × u16 of padding). */
export const DTABLE = { base: 0, limit: 8 } as const;

// ---------------------------------------------------------------------------
// Other structures: offsets
// ---------------------------------------------------------------------------

export const MEMORY_REGION = { slot: 0, flags: 4, guest_phys_addr: 8, memory_size: 16, userspace_addr: 24 } as const;
export const MSR_ENTRY = { index: 0, data: 8 } as const;
export const CPUID_ENTRY2 = { function: 0, index: 4, flags: 8, eax: 12, ebx: 16, ecx: 20, edx: 24 } as const;
export const ENABLE_CAP = { cap: 0, flags: 4, args: 8 } as const;
export const MSR_FILTER = { flags: 0, ranges: 8 } as const;
export const MSR_FILTER_RANGE = { flags: 0, nmsrs: 4, base: 8, bitmap: 16 } as const;

/** KVM_CPUID_FLAG_SIGNIFCANT_INDEX: the entry is for one subleaf (its `index`). */
export const KVM_CPUID_FLAG_SIGNIFCANT_INDEX = 1;
/** KVM_MAX_CPUID_ENTRIES (arch/x86/include/asm/kvm_host.h): KVM_GET_SUPPORTED_CPUID answers E2BIG past it. */
export const KVM_MAX_CPUID_ENTRIES = 256;
