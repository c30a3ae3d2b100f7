/**
 * Every event the VMM records, with its fields: the vocabulary of the event log, the trace file,
 * `pinbox run --json`, the control endpoint's pushes and `events` pages, and `pinbox events`
 * (PROTOCOL.md §6.2 is generated from it; docs/events.md says how each is written). Events named
 * after a kernel tracepoint take the tracepoint's field names (arch/x86/kvm/trace.h;
 * include/trace/events/kvm.h for kvm_userspace_exit); the others are pinbox's own.
 *
 * Field types, in memory and on the wire: `u64` is a bigint (a msgpack u64), `u32` a number (a
 * u32), `number` a number that may be negative (an i32), `string`, `bool`. How a field is written
 * for people and in JSON is its notation: `hex` ("0x…") or `decimal`; u64 fields are hex unless
 * marked decimal, other integers decimal unless marked hex. `symbols` name the values of a raw
 * number that has names (a Heki reason, an access direction, a vector), written beside it.
 *
 * Every event also carries `seq`, `time`, `vm` ("-" for events of the VMM rather than of one
 * VM: control_connected) and, where it concerns one vCPU, `vcpu` and the guest `rip` at the
 * time (event.ts).
 */
import { exceptionMnemonics } from '../notation.js';

export type EventFieldType = 'u32' | 'u64' | 'number' | 'string' | 'bool';

export interface EventFieldSpec {
  readonly type: EventFieldType;
  readonly description: string;
  /** Present only in some events of this name. */
  readonly optional?: boolean;
  /** How the value is written for people and in JSON; default hex for u64, decimal otherwise. */
  readonly notation?: 'hex' | 'decimal';
  /** Names of values, written beside the number: `reason=2(CR4)`. */
  readonly symbols?: Readonly<Record<number, string>>;
}

export interface EventSpec {
  readonly description: string;
  /** The kernel tracepoint this event mirrors, if any. */
  readonly tracepoint?: string;
  readonly fields: Readonly<Record<string, EventFieldSpec>>;
}

function field<T extends EventFieldType>(type: T) {
  return (description: string) => ({ type, description });
}
const u32 = field('u32');
const u64 = field('u64');
const str = field('string');
const bool = field('bool');
const num = field('number');
/** A field only some events of the name carry. */
function opt<F extends { type: EventFieldType; description: string }>(f: F): F & { optional: true } {
  return { ...f, optional: true };
}
/** A u32 written in hex: an MSR index, a port, a value the kernel's trace prints in hex. */
function hex32(description: string) {
  return { type: 'u32' as const, description, notation: 'hex' as const };
}
/** A u64 that is a count, not a register value: written in decimal. */
function count64(description: string) {
  return { type: 'u64' as const, description, notation: 'decimal' as const };
}
/** A raw number with names for its values. */
function named<F extends { type: EventFieldType; description: string }>(f: F, symbols: Readonly<Record<number, string>>): F & { symbols: Readonly<Record<number, string>> } {
  return { ...f, symbols };
}

/** KVM_HEKI_EXIT_REASON_CR0 / _CR4 (the Heki RFC's kvm_run.heki_*.reason). */
const HEKI_REASONS = { 1: 'CR0', 2: 'CR4' } as const;

export const EVENT_CATALOGUE = {
  kvm_exit: {
    description: 'The core stopped with an intercept that KVM handles (a VM exit), whether or not it reaches user space. The HLT that ends each guest operation in the VMM\'s own code is a completion: subscriptions leave it out unless they ask for completions.',
    tracepoint: 'kvm_exit',
    fields: {
      exit_reason: str('The VMX basic exit reason, as the kernel prints it: CR_ACCESS, MSR_READ, MSR_WRITE, VMCALL, CPUID, HLT, IO_INSTRUCTION, EXCEPTION_NMI, TRIPLE_FAULT, EXTERNAL_INTERRUPT (instruction budget spent), INVALID_STATE.'),
      info1: opt(u64('The exit qualification (e.g. the CR-access qualification), when the exit has one.')),
      info2: opt(u64('Second exit information (e.g. the exception error code), when the exit has one.')),
    },
  },
  kvm_userspace_exit: {
    description: 'KVM_RUN returned to the VMM. The KVM_EXIT_HLT that ends each guest operation in the VMM\'s own code is a completion: subscriptions leave it out unless they ask for completions.',
    tracepoint: 'kvm_userspace_exit',
    fields: {
      reason: str('The exit reason by name: KVM_EXIT_X86_RDMSR, KVM_EXIT_HEKI_DENIAL, KVM_EXIT_HLT, ...'),
      exit_reason: u32('kvm_run.exit_reason as a number (for Heki exits, per the VM\'s ABI profile).'),
      errno: num('0, or the negative errno KVM_RUN failed with.'),
    },
  },
  kvm_msr: {
    description: 'A guest RDMSR or WRMSR that KVM handled in the kernel, or that failed there.',
    tracepoint: 'kvm_msr',
    fields: {
      write: bool('true for WRMSR, false for RDMSR.'),
      ecx: hex32('The MSR index.'),
      data: u64('The value read or written (0 for a failed read).'),
      exception: bool('true if the access failed with #GP (kvm_msr_read_ex / kvm_msr_write_ex).'),
    },
  },
  kvm_cr: {
    description: 'A guest access to a control register that KVM emulated (MOV to/from CR, CLTS, LMSW).',
    tracepoint: 'kvm_cr',
    fields: {
      rw: named(u32('0 for a read, 1 for a write.'), { 0: 'read', 1: 'write' }),
      cr: u32('The control register: 0, 2, 3, 4 or 8.'),
      val: u64('The value read or written.'),
    },
  },
  kvm_hypercall: {
    description: 'A guest VMCALL or VMMCALL, with its arguments (kvm_emulate_hypercall()).',
    tracepoint: 'kvm_hypercall',
    fields: {
      nr: u64('RAX: the hypercall number.'),
      a0: u64('RBX.'),
      a1: u64('RCX.'),
      a2: u64('RDX.'),
      a3: u64('RSI.'),
      ret: opt(u64('RAX afterwards (pinbox addition: the kernel tracepoint has no result).')),
    },
  },
  kvm_pio: {
    description: 'A guest IN or OUT (kvm_fast_pio()); pinbox emulates no port in the kernel, so each goes to the VMM, which reads all-ones for IN and drops OUT.',
    tracepoint: 'kvm_pio',
    fields: {
      rw: named(u32('0 for IN, 1 for OUT.'), { 0: 'in', 1: 'out' }),
      port: hex32('The port.'),
      size: u32('Bytes: 1, 2 or 4.'),
      count: u32('Items (always 1: no string I/O).'),
      val: hex32('The value OUT wrote, or the value IN received from the VMM (traced when the IN completes, as complete_emulator_pio_in() does).'),
    },
  },
  kvm_inj_exception: {
    description: 'KVM queued an exception for the guest (kvm_queue_exception()): the #GP of a refused MSR access, CR write or Heki denial.',
    tracepoint: 'kvm_inj_exception',
    fields: {
      exception: named(u32('The vector (13 for #GP).'), exceptionMnemonics()),
      has_error: bool('Whether the exception delivers an error code.'),
      error_code: hex32('The error code (0 when it has none).'),
    },
  },
  msr_exit_reply: {
    description: 'The VMM answered a user-space MSR exit (KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR).',
    fields: {
      write: bool('true for a WRMSR exit.'),
      index: hex32('kvm_run.msr.index.'),
      reason: str('kvm_run.msr.reason by name: inval, unknown or filter.'),
      data: u64('For a read, the value returned; for a write, the value the guest wrote.'),
      error: u32('kvm_run.msr.error as answered: 0, or 1 for #GP.'),
      source: str('What decided the answer: value, stored, accept, deny, no-handler (policy msrHandlers), function (the VMM\'s in-process handler), request (the in-process caller of this one guest action), untouched (kvm_run.msr left as KVM filled it) or control (a control client\'s setMsrExitReply).'),
    },
  },
  exit_held: {
    description: 'A vCPU sits in a user-space exit that a control client asked to hold (holdExit): KVM_RUN has returned, and the VMM will not answer the exit or run the vCPU again until releaseExit.',
    fields: {
      reason: str('The exit reason by name: KVM_EXIT_X86_RDMSR, KVM_EXIT_HEKI_CONFIGURE, ...'),
      exit_reason: u32('kvm_run.exit_reason as a number (for Heki exits, per the VM\'s ABI profile).'),
    },
  },
  exit_unanswered: {
    description:
      'A user-space exit the VMM did not answer: the request had reached its limit of user-space exits (pinbox serve ' +
      '--max-exits), so the vCPU is booted again and the instruction that exited never completes (a blocked CR write ' +
      'stays blocked, a filtered MSR access never happens). Recorded so that no exit goes unseen; a Heki denial is ' +
      'also recorded as heki_denial, and the policy\'s onDenial still applies; a KVM_EXIT_MEMORY_FAULT as memory_denial, ' +
      'with memory.onViolation.',
    fields: {
      reason: str('The exit reason by name: KVM_EXIT_X86_RDMSR, KVM_EXIT_HEKI_DENIAL, KVM_EXIT_PINBOX_CR_FILTER, KVM_EXIT_IO, ...'),
      cause: str('Why it was not answered: exits (the request\'s limit of user-space exits).'),
    },
  },
  exit_released: {
    description: 'A held exit goes on: the VMM answers it and runs the vCPU again.',
    fields: {
      reason: str('The exit reason by name.'),
      cause: str('control (releaseExit), disconnected (the control connection that held it closed) or vm_removed (the VM was destroyed or replaced).'),
    },
  },
  heki_configure: {
    description: 'KVM_EXIT_HEKI_CONFIGURE: a guest pinned control-register bits with KVM_HC_LOCK_CR_UPDATE (the pin is already in force).',
    fields: {
      reason: named(u32('kvm_run.heki_configure.reason: 1 (CR0) or 2 (CR4).'), HEKI_REASONS),
      cr: u32('The control register: 0 or 4.'),
      cr_pinned: u64('The bits this call pinned (for CR4, after the AND with the host CR4).'),
    },
  },
  heki_denial: {
    description:
      'A guest write to a pinned control register was blocked; the guest takes #GP(0). Every denial is recorded, by ' +
      'either path: with a Heki denial exit for that register (KVM_CAP_HEKI_DENIAL, the policy\'s heki.denialExits) ' +
      'the VMM records the KVM_EXIT_HEKI_DENIAL it handles and acts on it per onDenial; without one, KVM injects the ' +
      '#GP itself and the VMM records the denial from KVM\'s log line ("heki: Blocked CRn update"), which it cannot act on.',
    fields: {
      reason: named(u32('KVM_HEKI_EXIT_REASON_CR0 (1) or _CR4 (2): kvm_run.heki_denial.reason on the exit path.'), HEKI_REASONS),
      cr: u32('The control register: 0 or 4.'),
      cr_value: u64('The value the guest tried to write.'),
      path: str('exit (KVM_EXIT_HEKI_DENIAL reached the VMM) or in-kernel (KVM injected #GP without an exit).'),
      action: str('What the VMM did: log, pause or kill (the policy\'s onDenial) on the exit path; log on the in-kernel path.'),
    },
  },
  memory_denial: {
    description:
      'A guest access a memory protection refused — an attribute set by user space (KVM_SET_MEMORY_ATTRIBUTES, the policy\'s ' +
      'memory.protect) or a Heki memory lock (docs/memory-protection.md). Every denial is recorded once, by either path: with ' +
      'delivery "exit" the VMM records the KVM_EXIT_MEMORY_FAULT it handles, acts on it per memory.onViolation and then reflects ' +
      'the #PF KVM would have injected; with delivery "inject" KVM injects the #PF itself and the VMM records the denial from ' +
      'KVM\'s trace (kvm_memory_denial) and acts on it likewise (a pause or kill takes effect before the guest runs on). ' +
      '`rip` is the faulting instruction.',
    fields: {
      gpa: u64('The refused page\'s guest-physical address (page-aligned, as KVM reports it).'),
      gva: opt(u64('The guest linear address of the access, when there is one (not for a page walk\'s own accesses).')),
      access: str('read, write or fetch.'),
      path: str('exit (KVM_EXIT_MEMORY_FAULT reached the VMM) or inject (KVM injected #PF without an exit).'),
      action: str('What the VMM did: log, pause or kill (the policy\'s memory.onViolation).'),
      qualification: hex32('The EPT-violation exit qualification (SDM vol. 3C table 28-7) the core reported.'),
      name: opt(str('The name of the policy\'s memory.protect range that covers the page, if it has one.')),
    },
  },
  cr_filter_exit: {
    description:
      'A guest write to CR0 or CR4 changed a bit the CR filter masks (KVM_EXIT_PINBOX_CR_FILTER, pinbox\'s extension, ' +
      'docs/cr-filter.md), and the VMM answered it: the guest\'s write went on (allow), took #GP(0) (deny), or loaded the answer\'s value instead.',
    fields: {
      cr: u32('The control register: 0 or 4.'),
      access: str('How the guest wrote it: mov (MOV to CR), lmsw or clts.'),
      old_value: u64('The register before the write.'),
      new_value: u64('The whole value the write would load.'),
      action: str('The answer: allow, deny or value.'),
      value: u64('For action value, the value loaded instead (else 0).'),
      source: str('Who answered: request (the in-process caller of this guest action), control (a control client\'s setCrExitReply) or policy (crFilter.answer).'),
    },
  },
  cr_filter_changed: {
    description: 'A CR filter was installed (PINBOX_SET_CR_FILTER succeeded): the CR0 and CR4 bits whose change now exits.',
    fields: {
      cr0_mask: u64('The CR0 bits.'),
      cr4_mask: u64('The CR4 bits.'),
      origin: str('Who installed it: policy or control.'),
    },
  },
  register_intercept: {
    description:
      'A guest access one of its vCPU\'s secure register intercepts covers (KVM_EXIT_PINBOX_REG_INTERCEPT, pinbox\'s extension, ' +
      'docs/register-intercepts.md), and how it was decided: by the VM\'s monitor (the higher VTL), the in-process caller, or the policy\'s answer while no monitor is attached.',
    fields: {
      intercept: str('The intercept by its TLFS name: Cr0Write, Cr4Write, MsrLstarWrite, IdtrWrite, …'),
      msr: opt(u32('The MSR, for an MSR intercept.')),
      old_value: u64('The register now (GDTR/IDTR: the base; LDTR/TR: the selector).'),
      new_value: u64('What the access would load (a read: 0).'),
      action: str('The answer: allow, deny or value (emulate with value).'),
      value: u64('For action value, the value emulated with (else 0).'),
      source: str('Who decided: monitor, request or policy.'),
    },
  },
  intercept_pending: {
    description:
      'A register intercept waits for the VM\'s monitor, which watches its intercepts (monitor op watchIntercepts): the vCPU sits in ' +
      'KVM_EXIT_PINBOX_REG_INTERCEPT until the monitor\'s answerIntercept names this event\'s seq.',
    fields: {
      intercept: str('The intercept by its TLFS name.'),
      msr: opt(u32('The MSR, for an MSR intercept.')),
      old_value: u64('The register now (GDTR/IDTR: the base; LDTR/TR: the selector).'),
      new_value: u64('What the access would load (a read: 0).'),
      old_limit: u32('GDTR/IDTR: the limit now (else 0).'),
      new_limit: u32('GDTR/IDTR: the limit LGDT/LIDT would load (else 0).'),
    },
  },
  register_intercepts_changed: {
    description: 'A vCPU\'s secure register intercepts were set (PINBOX_SET_REG_INTERCEPTS): by the policy at boot or reset, or by the monitor.',
    fields: {
      control: u64('HV_REGISTER_CR_INTERCEPT_CONTROL.'),
      cr0_mask: u64('The CR0 mask.'),
      cr4_mask: u64('The CR4 mask.'),
      origin: str('policy (at boot or reset), monitor, or restore (a snapshot loaded).'),
    },
  },
  monitor_attached: {
    description: 'A monitor (the higher VTL) now decides the VM\'s register intercepts.',
    fields: {
      connection: opt(u32('The server\'s number for the monitor\'s connection; absent for an in-process monitor.')),
    },
  },
  monitor_detached: {
    description: 'The VM\'s monitor is gone; its intercepts stay, answered by the policy until another monitor attaches.',
    fields: {
      connection: opt(u32('The server\'s number for the monitor\'s connection; absent for an in-process monitor.')),
    },
  },
  msr_filter_changed: {
    description: 'A new MSR filter was installed (KVM_X86_SET_MSR_FILTER succeeded).',
    fields: {
      flags: named(u32('struct kvm_msr_filter.flags: 0 default allow, 1 default deny.'), { 0: 'DEFAULT_ALLOW', 1: 'DEFAULT_DENY' }),
      nranges: u32('How many non-empty ranges the filter has.'),
      origin: str('Who installed it: policy or control.'),
    },
  },
  vm_created: {
    description: 'A VM was created from a policy.',
    fields: {
      vcpus: u32('Number of vCPUs.'),
      memory: count64('Guest memory in bytes.'),
      profile: str('Heki ABI profile: v2 or v3.'),
      policy: opt(str('The policy file, if the VM came from one.')),
    },
  },
  vcpu_init: {
    description: 'A vCPU was (re)booted into the 64-bit CPL0 state of the boot image.',
    fields: {
      cause: str('create, reset (a VM reset), init (an INIT signal: kvm_vcpu_reset(init_event), which keeps Heki pins), shutdown (after a triple fault, policy onShutdown "reboot": pins kept) or abort (its operation stopped part-way: budget spent).'),
    },
  },
  vm_reset: {
    description: 'The VM was reset on user space\'s request: vCPUs re-booted, Heki pins and stored MSR values cleared (the reboot semantics Paolo Bonzini argued for: docs/heki.md §5.4, §7).',
    fields: {
      cause: str('control (a control client\'s resetVm), shutdown (a triple fault, policy onShutdown "reset"), restore (a snapshot is being loaded) or other.'),
      pins_cleared: bool('Whether Heki pins were in force and have been cleared.'),
    },
  },
  vm_paused: {
    description: 'The VM stopped running guest code until resumed.',
    fields: {
      cause: str('heki_denial (onDenial "pause"), memory_denial (memory.onViolation "pause") or control.'),
    },
  },
  vm_resumed: {
    description: 'A paused VM runs again.',
    fields: {
      cause: str('control.'),
    },
  },
  vm_killed: {
    description: 'The VM was stopped for good.',
    fields: {
      cause: str('heki_denial (onDenial "kill"), memory_denial (memory.onViolation "kill"), shutdown, control (destroyVm; the VM is dropped) or idle (a VM a guest made, dropped after pinbox serve --vm-idle-ms with no guest attached).'),
    },
  },
  vcpu_halted: {
    description: 'A vCPU executed HLT (KVM_EXIT_HLT): under `pinbox run`, the end of the program.',
    fields: {},
  },
  console: {
    description: 'A line the guest wrote to its serial console (the 16550 UART at 0x3f8), one event per line and per vCPU: the bytes up to a line feed (a carriage return before it dropped), or up to 1024 bytes (an event string holds no more; a line that is not UTF-8 goes in pieces of 341 bytes, each bad byte U+FFFD), or what was left when the program ended. `rip` is the OUT of its first byte.',
    fields: {
      text: str('The line, without its line feed, read as UTF-8 (bytes that are not UTF-8 become U+FFFD).'),
    },
  },
  guest_connected: {
    description: 'A guest client said hello and was attached to a vCPU.',
    fields: {
      connection: u32('The server\'s number for the connection.'),
      client: opt(str('The client\'s self-description from hello, if it gave one.')),
    },
  },
  guest_disconnected: {
    description: 'A guest client\'s connection closed.',
    fields: {
      connection: u32('The server\'s number for the connection.'),
    },
  },
  trace_rotated: {
    description: 'The first line of a trace file begun because the one before reached its size limit (pinbox serve --trace-max): it records the cut. Written by the trace writer itself, never to the ring or to subscribers; it carries the seq and time of the event that follows it.',
    fields: {
      previous: str('Where the events before the cut are now (PATH.1), or "" when no rotated file is kept.'),
      previous_bytes: count64('How large that file was, in bytes.'),
      removed: opt(str('The oldest rotated file, deleted to keep --trace-keep files.')),
    },
  },
  control_connected: {
    description: 'A control client said hello with a valid token.',
    fields: {
      connection: u32('The server\'s number for the connection.'),
      client: opt(str('The client\'s self-description from hello, if it gave one.')),
    },
  },
} as const satisfies Readonly<Record<string, EventSpec>>;

export type EventName = keyof typeof EVENT_CATALOGUE;

type Catalogue = typeof EVENT_CATALOGUE;
type FieldValue<F> = F extends { type: 'u64' } ? bigint
  : F extends { type: 'u32' | 'number' } ? number
  : F extends { type: 'string' } ? string
  : boolean;
type Fields<N extends EventName> = Catalogue[N]['fields'];
type RequiredKeys<N extends EventName> = { [K in keyof Fields<N>]: Fields<N>[K] extends { optional: true } ? never : K }[keyof Fields<N>];
type OptionalKeys<N extends EventName> = Exclude<keyof Fields<N>, RequiredKeys<N>>;

/** The fields an event of name N carries, typed from the catalogue: emit() checks them when compiling. */
export type EventFieldsOf<N extends EventName> = { readonly [K in RequiredKeys<N>]: FieldValue<Fields<N>[K]> } & {
  readonly [K in OptionalKeys<N>]?: FieldValue<Fields<N>[K]>;
};

export const EVENT_NAMES = Object.keys(EVENT_CATALOGUE) as EventName[];

export function isEventName(name: string): name is EventName {
  return Object.prototype.hasOwnProperty.call(EVENT_CATALOGUE, name);
}
