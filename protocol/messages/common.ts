/**
 * Field types shared by several messages (PROTOCOL.md §4): names, faults, exits, register
 * files, events and error bodies.
 */
import { HV_CR_INTERCEPT_BIT_NAMES, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_EXIT_REASON_INVAL, KVM_MSR_EXIT_REASON_UNKNOWN } from '../abi.js';
import { ERRNO_NAME_PATTERN } from '../errors.js';
import {
  type Infer, type Optional, array, bool, object, oneOf, optional, partial, record, scalar, string, u16, u32, u64, u8, uint,
} from '../schema/index.js';

/** VM names: 1–64 bytes of [A-Za-z0-9_.-]. */
export const vmName = string(1, 64, /^[A-Za-z0-9_.-]+$/, 'letters, digits, "_", "." and "-"');
/** The VM a guest attaches to when its hello names none. */
export const DEFAULT_VM = 'default';
/** The vCPU a guest attaches to when its hello names none. */
export const DEFAULT_VCPU = 0;

/** Names of events and of event subscriptions: lower snake_case, e.g. `kvm_msr`. */
export const eventName = string(1, 64, /^[a-z][a-z0-9_]*$/, 'lower snake_case');

/** Privilege level a guest action runs at: kernel (0) or user (3). Absent means 0. */
export const cpl = oneOf([0, 3]);

/** A guest exception as the guest's IDT received it. */
export const fault = object({ vector: u8, errorCode: optional(u32) });
export type Fault = Infer<typeof fault>;

/**
 * The `reason` names of `kvm_run.msr.reason` (KVM_MSR_EXIT_REASON_*), by bit. The wire carries
 * the name, not the bit, so a peer never has to know the uapi numbers.
 */
export const MSR_EXIT_REASONS = {
  INVAL: KVM_MSR_EXIT_REASON_INVAL,
  UNKNOWN: KVM_MSR_EXIT_REASON_UNKNOWN,
  FILTER: KVM_MSR_EXIT_REASON_FILTER,
} as const;

/** How user space answers a CR-filter exit or a register intercept: go on, #GP(0), or go on with a value. */
export const pinboxAction = oneOf(['allow', 'deny', 'value']);

/** An answer to a CR-filter exit or a register intercept: the action, and for `value` the value (and GDTR/IDTR limit). */
export const pinboxAnswer = object({ action: pinboxAction, value: optional(u64), limit: optional(u16) });
export type PinboxAnswer = Infer<typeof pinboxAnswer>;

/** One user-space exit an operation caused, as the VMM saw it in `struct kvm_run`. */
export const exit = object({
  /** The kernel's name for the exit reason, e.g. `KVM_EXIT_X86_RDMSR`. */
  reason: string(1, 64, /^[A-Z][A-Z0-9_]*$/, 'an upper-case KVM_EXIT_* name'),
  msr: optional(object({
    reason: oneOf(['INVAL', 'UNKNOWN', 'FILTER']),
    index: u32,
    /** The value written, or for a read the value user space answered. */
    data: u64,
    error: u8,
    /** kvm_run.msr.data as KVM filled it, where it differs from `data` (a read answered with data ≠ 0). */
    exitData: optional(u64),
  })),
  heki: optional(object({ reason: oneOf(['CR0', 'CR4']), value: u64 })),
  io: optional(object({ port: u16, size: oneOf([1, 2, 4]), direction: oneOf(['in', 'out']), value: u32 })),
  /**
   * KVM_EXIT_MEMORY_FAULT (a memory protection refused an access, docs/memory-protection.md): the
   * page, the access, the guest linear address when there is one, the EPT-violation qualification.
   */
  memory: optional(object({ gpa: u64, gva: optional(u64), access: oneOf(['read', 'write', 'fetch']), qualification: u32 })),
  /**
   * KVM_EXIT_PINBOX_CR_FILTER (pinbox's CR filter): the register, how the guest wrote it, its value
   * before and the value the write would load; what user space answered, and its value.
   */
  cr: optional(object({
    cr: oneOf([0, 4]),
    access: oneOf(['mov', 'clts', 'lmsw']),
    old: u64,
    new: u64,
    action: pinboxAction,
    value: optional(u64),
  })),
  /**
   * KVM_EXIT_PINBOX_REG_INTERCEPT (pinbox's secure register intercepts): the intercept by its
   * TLFS name, the MSR of an MSR intercept, the register now and what the access would load
   * (limits for GDTR/IDTR); what the monitor answered, and its value.
   */
  intercept: optional(object({
    name: oneOf(HV_CR_INTERCEPT_BIT_NAMES),
    msr: optional(u32),
    old: u64,
    new: u64,
    oldLimit: optional(u16),
    newLimit: optional(u16),
    action: pinboxAction,
    value: optional(u64),
    limit: optional(u16),
  })),
});
export type Exit = Infer<typeof exit>;

/** Exits one result reports at most; `exitsDropped` counts the ones left out. */
export const MAX_EXITS = 1024;
export const exits = array(exit, 0, MAX_EXITS);

/** `struct kvm_regs`, in its field order (arch/x86/include/uapi/asm/kvm.h). */
export const KVM_REGS_FIELDS = [
  'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp',
  'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags',
] as const;
type RegName = (typeof KVM_REGS_FIELDS)[number];
type GprName = Exclude<RegName, 'rip' | 'rflags'>;

export const regs = object(
  Object.fromEntries(KVM_REGS_FIELDS.map((n) => [n, u64])) as Record<RegName, typeof u64>,
);
export type Regs = Infer<typeof regs>;
/** Registers to change: any subset of `struct kvm_regs`. */
export const regsPatch = partial(regs);
/** Initial general-purpose registers for `exec` (no rip or rflags: the VMM places the code). */
export const gprsPatch = partial(object(
  Object.fromEntries(KVM_REGS_FIELDS.filter((n) => n !== 'rip' && n !== 'rflags').map((n) => [n, u64])) as Record<GprName, typeof u64>,
));

/** `struct kvm_segment`'s fields, in its order. */
export const SEGMENT_FIELDS = ['base', 'limit', 'selector', 'type', 'present', 'dpl', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;
/** `struct kvm_segment` */
export const segment = object({
  base: u64,
  limit: u32,
  selector: u16,
  type: uint(15),
  present: bool,
  dpl: uint(3),
  db: bool,
  s: bool,
  l: bool,
  g: bool,
  avl: bool,
  unusable: bool,
});
/** `struct kvm_dtable` */
export const dtable = object({ base: u64, limit: u16 });

export const SREGS_SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
export const SREGS_CONTROL = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;
type SegmentField = (typeof SREGS_SEGMENTS)[number];
type ControlField = (typeof SREGS_CONTROL)[number];

/** `struct kvm_sregs` without the interrupt bitmap (pinbox models no external interrupts). */
export const sregs = object({
  ...(Object.fromEntries(SREGS_SEGMENTS.map((n) => [n, segment])) as Record<SegmentField, typeof segment>),
  gdt: dtable,
  idt: dtable,
  ...(Object.fromEntries(SREGS_CONTROL.map((n) => [n, u64])) as Record<ControlField, typeof u64>),
});
export type Sregs = Infer<typeof sregs>;

const segmentPatch = partial(segment);
const dtablePatch = partial(dtable);
/** System registers to change: any subset, down to single segment fields. */
export const sregsPatch = object({
  ...(Object.fromEntries(SREGS_SEGMENTS.map((n) => [n, optional(segmentPatch)])) as Record<SegmentField, Optional<Infer<typeof segmentPatch>>>),
  gdt: optional(dtablePatch),
  idt: optional(dtablePatch),
  ...(Object.fromEntries(SREGS_CONTROL.map((n) => [n, optional(u64)])) as Record<ControlField, Optional<bigint>>),
});

/** Keys of open maps (event fields, stats extras). */
const fieldName = string(1, 64, /^[A-Za-z_][A-Za-z0-9_]*$/, 'an identifier');
/** Open maps hold at most this many keys. */
export const MAX_OPEN_MAP_KEYS = 64;

/** One entry of the VMM's event log. */
export const event = object({
  seq: u64,
  /** Nanoseconds since the VMM's epoch. */
  time: u64,
  name: eventName,
  vm: vmName,
  vcpu: optional(u32),
  rip: optional(u64),
  /** Event-specific values (an MSR index, a CR value, a denial reason…). */
  fields: record(fieldName, scalar, MAX_OPEN_MAP_KEYS),
});
export type Event = Infer<typeof event>;

/** `error` of a failed response. */
export const errorBody = object({
  code: string(1, 64, /^[a-z][a-z0-9_]*$/, 'snake_case'),
  message: string(0, 4096),
  path: optional(string(0, 1024)),
  errno: optional(string(2, 32, ERRNO_NAME_PATTERN, 'an errno name such as EINVAL')),
});
export type ErrorBody = Infer<typeof errorBody>;

/** An open map of named scalars (stats extras). */
export const namedScalars = record(fieldName, scalar, MAX_OPEN_MAP_KEYS);
