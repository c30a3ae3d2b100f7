/**
 * The kernel names a scenario may use for numbers, both ways: capabilities and exit reasons
 * (the Heki ones numbered per ABI profile, docs/architecture.md, "Where numbers and words live"), MSR and
 * Heki exit reasons, MSR filter flags, errno names. The numbers are protocol/abi's.
 */
import * as abi from '../../protocol/abi.js';
import { Errno, HEKI_PROFILES, type ErrnoName, type HekiProfileName } from '../../protocol/abi.js';

type NameTable = Readonly<Record<string, number>>;

const CAPABILITIES: NameTable = {
  KVM_CAP_NR_VCPUS: abi.KVM_CAP_NR_VCPUS,
  KVM_CAP_MAX_VCPUS: abi.KVM_CAP_MAX_VCPUS,
  KVM_CAP_IMMEDIATE_EXIT: abi.KVM_CAP_IMMEDIATE_EXIT,
  KVM_CAP_X86_USER_SPACE_MSR: abi.KVM_CAP_X86_USER_SPACE_MSR,
  KVM_CAP_X86_MSR_FILTER: abi.KVM_CAP_X86_MSR_FILTER,
  KVM_CAP_ENFORCE_PV_FEATURE_CPUID: abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID,
  KVM_CAP_X86_TRIPLE_FAULT_EVENT: abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT,
  // pinbox's own, out of mainline's range (docs/pinbox-abi.md)
  KVM_CAP_PINBOX_CR_FILTER: abi.KVM_CAP_PINBOX_CR_FILTER,
  KVM_CAP_PINBOX_REG_INTERCEPTS: abi.KVM_CAP_PINBOX_REG_INTERCEPTS,
  KVM_CAP_PINBOX_MEMORY_FAULT_POLICY: abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY,
  KVM_CAP_PINBOX_MBEC: abi.KVM_CAP_PINBOX_MBEC,
  KVM_CAP_MEMORY_ATTRIBUTES: abi.KVM_CAP_MEMORY_ATTRIBUTES,
};

const EXIT_REASONS: NameTable = {
  KVM_EXIT_UNKNOWN: abi.KVM_EXIT_UNKNOWN,
  KVM_EXIT_EXCEPTION: abi.KVM_EXIT_EXCEPTION,
  KVM_EXIT_IO: abi.KVM_EXIT_IO,
  KVM_EXIT_HYPERCALL: abi.KVM_EXIT_HYPERCALL,
  KVM_EXIT_DEBUG: abi.KVM_EXIT_DEBUG,
  KVM_EXIT_HLT: abi.KVM_EXIT_HLT,
  KVM_EXIT_MMIO: abi.KVM_EXIT_MMIO,
  KVM_EXIT_SHUTDOWN: abi.KVM_EXIT_SHUTDOWN,
  KVM_EXIT_FAIL_ENTRY: abi.KVM_EXIT_FAIL_ENTRY,
  KVM_EXIT_INTR: abi.KVM_EXIT_INTR,
  KVM_EXIT_INTERNAL_ERROR: abi.KVM_EXIT_INTERNAL_ERROR,
  KVM_EXIT_SYSTEM_EVENT: abi.KVM_EXIT_SYSTEM_EVENT,
  KVM_EXIT_X86_RDMSR: abi.KVM_EXIT_X86_RDMSR,
  KVM_EXIT_X86_WRMSR: abi.KVM_EXIT_X86_WRMSR,
  KVM_EXIT_PINBOX_CR_FILTER: abi.KVM_EXIT_PINBOX_CR_FILTER,
  KVM_EXIT_PINBOX_REG_INTERCEPT: abi.KVM_EXIT_PINBOX_REG_INTERCEPT,
};

/** The single-bit reasons, by the short names the protocol uses ("FILTER") — the kernel's without the prefix. */
export const MSR_EXIT_REASONS: NameTable = {
  INVAL: abi.KVM_MSR_EXIT_REASON_INVAL,
  UNKNOWN: abi.KVM_MSR_EXIT_REASON_UNKNOWN,
  FILTER: abi.KVM_MSR_EXIT_REASON_FILTER,
};
export const HEKI_EXIT_REASONS: NameTable = {
  CR0: abi.KVM_HEKI_EXIT_REASON_CR0,
  CR4: abi.KVM_HEKI_EXIT_REASON_CR4,
};
export const FILTER_FLAGS: NameTable = {
  DEFAULT_ALLOW: abi.KVM_MSR_FILTER_DEFAULT_ALLOW,
  DEFAULT_DENY: abi.KVM_MSR_FILTER_DEFAULT_DENY,
};
/** KVM_SET_MEMORY_ATTRIBUTES attributes (docs/memory-protection.md §3.1), by short name: "NW" or its full name. */
export const MEMORY_ATTRIBUTES: Readonly<Record<string, bigint>> = {
  PRIVATE: abi.KVM_MEMORY_ATTRIBUTE_PRIVATE,
  NR: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR,
  NW: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW,
  NX: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX,
  NUX: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX,
};
/** kvm_run.memory_fault.flags (docs/memory-protection.md §3.3), by short name. */
export const MEMORY_EXIT_FLAGS: Readonly<Record<string, bigint>> = {
  PRIVATE: abi.KVM_MEMORY_EXIT_FLAG_PRIVATE,
  READ: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_READ,
  WRITE: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE,
  EXEC: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC,
  GVA_VALID: abi.KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID,
};
export const RANGE_FLAGS: NameTable = {
  READ: abi.KVM_MSR_FILTER_READ,
  WRITE: abi.KVM_MSR_FILTER_WRITE,
};

/** The prefixes a short name may also carry: "FILTER" or "KVM_MSR_EXIT_REASON_FILTER". */
export const NAME_PREFIXES = {
  msrExitReason: 'KVM_MSR_EXIT_REASON_',
  hekiReason: 'KVM_HEKI_EXIT_REASON_',
  filterFlag: 'KVM_MSR_FILTER_',
  memoryAttribute: ['KVM_MEMORY_ATTRIBUTE_PINBOX_', 'KVM_MEMORY_ATTRIBUTE_'],
  memoryExitFlag: ['KVM_MEMORY_EXIT_FLAG_PINBOX_', 'KVM_MEMORY_EXIT_FLAG_'],
} as const;

function hekiCapabilities(profile: HekiProfileName): NameTable {
  const p = HEKI_PROFILES[profile];
  return { KVM_CAP_HEKI_CONFIGURE: p.KVM_CAP_HEKI_CONFIGURE, KVM_CAP_HEKI_DENIAL: p.KVM_CAP_HEKI_DENIAL };
}

function hekiExitReasons(profile: HekiProfileName): NameTable {
  const p = HEKI_PROFILES[profile];
  // KVM_EXIT_MEMORY_FAULT only where the profile has it (v3): under v2, 39 is KVM_EXIT_HEKI_CONFIGURE.
  return {
    ...(p.KVM_EXIT_MEMORY_FAULT !== undefined && { KVM_EXIT_MEMORY_FAULT: p.KVM_EXIT_MEMORY_FAULT }),
    KVM_EXIT_HEKI_CONFIGURE: p.KVM_EXIT_HEKI_CONFIGURE,
    KVM_EXIT_HEKI_DENIAL: p.KVM_EXIT_HEKI_DENIAL,
  };
}

export function capabilityNames(profile: HekiProfileName): NameTable {
  return { ...CAPABILITIES, ...hekiCapabilities(profile) };
}

export function exitReasonNames(profile: HekiProfileName): NameTable {
  return { ...EXIT_REASONS, ...hekiExitReasons(profile) };
}

/** The name of a number in a table, if it has one. The Heki entries come last in the tables,
 * so where a profile's Heki number collides with a mainline one, the Heki name wins — the
 * profile is the VM's ABI. */
export function nameOf(table: NameTable, value: number): string | undefined {
  let found: string | undefined;
  for (const [name, v] of Object.entries(table)) if (v === value) found = name;
  return found;
}

export function isErrnoName(name: string): name is ErrnoName {
  return Object.hasOwn(Errno, name);
}
