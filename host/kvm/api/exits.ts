/**
 * `struct kvm_run` (include/uapi/linux/kvm.h) as either backend hands it to user space:
 * `KvmVcpu.run()` returns the vCPU's one kvm_run, typed as the VcpuExit union on `reason`; user
 * space narrows on `reason`, reads the union member, and fills what the kernel reads back on the
 * next run() (`msr.error`, `msr.data`, `io.data` for IN, `immediate_exit`).
 *
 * Every exit is one entry of KVM_EXITS — its name, its number (fixed by the uAPI, or taken from
 * the VM's Heki ABI profile) and the kvm_run member that carries its payload — and the VcpuExit
 * union, the exit numbers and their names are derived from that table (docs/kvm-exits.md).
 */
import type { HekiAbiProfile } from '../../../protocol/abi.js';
import * as abi from '../../../protocol/abi.js';
import type { Regs, Sregs } from './regs.js';

/** KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR */
export interface KvmRunMsr {
  /** user → kernel: non-zero (as a __u8) makes the access #GP(0). */
  error: number;
  /** kernel → user: KVM_MSR_EXIT_REASON_INVAL, _UNKNOWN or _FILTER. */
  readonly reason: number;
  /** kernel → user: ECX */
  readonly index: number;
  /** RDMSR: user → kernel, the value read (KVM presets 0); WRMSR: the value written. */
  data: bigint;
}

/** KVM_EXIT_IO for IN/OUT (one item; pinbox has no string I/O). */
export interface KvmRunIo {
  /** KVM_EXIT_IO_IN (0) or KVM_EXIT_IO_OUT (1) */
  readonly direction: number;
  readonly size: number;
  readonly port: number;
  readonly count: number;
  /** OUT: AL/AX/EAX as written; IN: user space stores the value the guest reads. */
  data: number;
}

export interface KvmRunHekiConfigure {
  /** KVM_HEKI_EXIT_REASON_CR0 or _CR4: exactly one bit */
  readonly reason: number;
  /** This call's pin (for CR4 after `&= host CR4`), not the accumulated pins. */
  readonly cr_pinned: bigint;
}

export interface KvmRunHekiDenial {
  readonly reason: number;
  /** The whole value the guest tried to load. */
  readonly cr_value: bigint;
}

export interface KvmRunFailEntry {
  /** The VMX exit reason: 0x80000021, "VM-entry failure: invalid guest state". */
  readonly hardware_entry_failure_reason: bigint;
  readonly cpu: number;
  /** pinbox: which part of the state the model's core cannot run ('' from a real kernel). */
  readonly detail: string;
}

/**
 * KVM_EXIT_MEMORY_FAULT (39): an access KVM could not resolve for the guest — in pinbox, one a
 * memory attribute or a Heki lock refused (docs/memory-protection.md §3.3). Upstream fields
 * flags @32, gpa @40, size @48; `gva` and `qualification` are pinbox's own, out of tree.
 */
export interface KvmRunMemoryFault {
  /** KVM_MEMORY_EXIT_FLAG_PRIVATE upstream; pinbox's access kind and GVA_VALID (pinbox-ext.ts). */
  readonly flags: bigint;
  /** The faulting page's guest-physical address (page-aligned, as KVM reports gfn_to_gpa()). */
  readonly gpa: bigint;
  /** 4096: the fault covers [gpa, gpa + size). */
  readonly size: bigint;
  /** pinbox: the guest linear address, when flags has KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID (else 0). */
  readonly gva: bigint;
  /** pinbox: the EPT-violation exit qualification (SDM vol. 3C table 28-7) the core reported. */
  readonly qualification: number;
}

/**
 * KVM_EXIT_PINBOX_CR_FILTER (pinbox's extension, docs/cr-filter.md): a guest write would change a
 * bit the CR filter masks. User space answers in `action` (and `value`) before the next run().
 */
export interface KvmRunCrFilter {
  /** kernel → user: 0 or 4. */
  readonly cr: number;
  /** kernel → user: PINBOX_CR_ACCESS_MOV (0), _CLTS (2) or _LMSW (3). */
  readonly access: number;
  /** kernel → user: the register before, and the whole value the write would load. */
  readonly old_value: bigint;
  readonly new_value: bigint;
  /** kernel → user: RIP of the instruction. */
  readonly rip: bigint;
  /** user → kernel: PINBOX_ANSWER_ALLOW (0, KVM presets it), _DENY (#GP(0)) or _VALUE (load `value` instead). */
  action: number;
  /** user → kernel: the value for PINBOX_ANSWER_VALUE. */
  value: bigint;
}

/**
 * KVM_EXIT_PINBOX_REG_INTERCEPT (pinbox's extension, docs/register-intercepts.md): a guest access
 * one of the vCPU's secure register intercepts covers. User space (the monitor) answers in
 * `action`, `value` and `limit` before the next run().
 */
export interface KvmRunRegIntercept {
  /** kernel → user: the bit of HV_REGISTER_CR_INTERCEPT_CONTROL (0 Cr0Write … 23 MsrTscAuxWrite). */
  readonly intercept: number;
  /** kernel → user: the MSR of an MSR intercept, else 0. */
  readonly msr: number;
  /** kernel → user: the register now (a read: its value; GDTR/IDTR: the base; LDTR/TR: the selector). */
  readonly old_value: bigint;
  /** kernel → user: what a write would load (a read: 0). */
  readonly new_value: bigint;
  /** kernel → user: GDTR/IDTR: the limit now and the one LGDT/LIDT would load (else 0). */
  readonly old_limit: number;
  readonly new_limit: number;
  readonly rip: bigint;
  /** user → kernel: PINBOX_ANSWER_ALLOW (0, preset), _DENY (#GP(0)) or _VALUE (emulate with `value`/`limit`). */
  action: number;
  value: bigint;
  limit: number;
}

/**
 * KVM_EXIT_DEBUG: `struct kvm_debug_exit_arch` (x86). What stopped the guest for the debugger
 * KVM_SET_GUEST_DEBUG armed: #DB (single step, a hardware breakpoint: `dr6` says which) or #BP
 * (an INT3 the debugger placed), and the linear RIP of the instruction it stopped before.
 */
export interface KvmRunDebug {
  readonly exception: number;
  readonly pc: bigint;
  readonly dr6: bigint;
  readonly dr7: bigint;
}

/** KVM_EXIT_MMIO (the model never gives it: guest memory is one slot and nothing is emulated). */
export interface KvmRunMmio {
  readonly phys_addr: bigint;
  /** The `len` bytes written (is_write) or to be read (user space fills them for a read). */
  data: Uint8Array;
  readonly len: number;
  readonly is_write: boolean;
}

/** KVM_EXIT_INTERNAL_ERROR: a suberror and up to 16 u64 of data. */
export interface KvmRunInternal {
  readonly suberror: number;
  readonly data: readonly bigint[];
}

/** KVM_EXIT_SYSTEM_EVENT: a type and up to 16 u64 of data. */
export interface KvmRunSystemEvent {
  readonly type: number;
  readonly data: readonly bigint[];
}

/** The members of kvm_run's exit union that pinbox reads, by their name in the C struct. */
export interface KvmRunMembers {
  readonly msr: KvmRunMsr;
  readonly io: KvmRunIo;
  readonly heki_configure: KvmRunHekiConfigure;
  readonly heki_denial: KvmRunHekiDenial;
  readonly fail_entry: KvmRunFailEntry;
  readonly memory_fault: KvmRunMemoryFault;
  readonly debug: KvmRunDebug;
  readonly mmio: KvmRunMmio;
  readonly internal: KvmRunInternal;
  readonly system_event: KvmRunSystemEvent;
  readonly cr_filter: KvmRunCrFilter;
  readonly reg_intercept: KvmRunRegIntercept;
}

/** The exit numbers an ABI profile decides (the out-of-tree ones: heki.ts in protocol/abi). */
export type ProfileExitNumber = 'KVM_EXIT_HEKI_CONFIGURE' | 'KVM_EXIT_HEKI_DENIAL' | 'KVM_EXIT_MEMORY_FAULT';

interface ExitEntry {
  /**
   * kvm_run.exit_reason: the uAPI's number, or the name of the profile field that holds it (and
   * the mainline number, for a VM that speaks no Heki profile, if mainline has the exit).
   */
  readonly number: number | { readonly profile: ProfileExitNumber; readonly mainline?: number };
  /** The kvm_run member with the exit's payload, or null for an exit whose payload pinbox does not read. */
  readonly member: keyof KvmRunMembers | null;
}

/**
 * Every exit either backend returns to user space. The model gives those of its intercepts
 * (MSR, Heki, IO, HLT, shutdown, entry failure, INTR, memory fault) and of pinbox's extensions
 * (CR filter, register intercepts, numbered out of tree: pinbox-ext.ts); a real kernel may give
 * any. The exits numbered 35, 36 and 38 are other architectures'; 39 and up collide with Heki's
 * (heki.ts).
 */
export const KVM_EXITS = {
  KVM_EXIT_UNKNOWN: { number: abi.KVM_EXIT_UNKNOWN, member: null },
  KVM_EXIT_EXCEPTION: { number: abi.KVM_EXIT_EXCEPTION, member: null },
  KVM_EXIT_IO: { number: abi.KVM_EXIT_IO, member: 'io' },
  KVM_EXIT_HYPERCALL: { number: abi.KVM_EXIT_HYPERCALL, member: null },
  KVM_EXIT_DEBUG: { number: abi.KVM_EXIT_DEBUG, member: 'debug' },
  KVM_EXIT_HLT: { number: abi.KVM_EXIT_HLT, member: null },
  KVM_EXIT_MMIO: { number: abi.KVM_EXIT_MMIO, member: 'mmio' },
  KVM_EXIT_IRQ_WINDOW_OPEN: { number: abi.KVM_EXIT_IRQ_WINDOW_OPEN, member: null },
  KVM_EXIT_SHUTDOWN: { number: abi.KVM_EXIT_SHUTDOWN, member: null },
  KVM_EXIT_FAIL_ENTRY: { number: abi.KVM_EXIT_FAIL_ENTRY, member: 'fail_entry' },
  KVM_EXIT_INTR: { number: abi.KVM_EXIT_INTR, member: null },
  KVM_EXIT_SET_TPR: { number: abi.KVM_EXIT_SET_TPR, member: null },
  KVM_EXIT_TPR_ACCESS: { number: abi.KVM_EXIT_TPR_ACCESS, member: null },
  KVM_EXIT_NMI: { number: abi.KVM_EXIT_NMI, member: null },
  KVM_EXIT_INTERNAL_ERROR: { number: abi.KVM_EXIT_INTERNAL_ERROR, member: 'internal' },
  KVM_EXIT_SYSTEM_EVENT: { number: abi.KVM_EXIT_SYSTEM_EVENT, member: 'system_event' },
  KVM_EXIT_IOAPIC_EOI: { number: abi.KVM_EXIT_IOAPIC_EOI, member: null },
  KVM_EXIT_HYPERV: { number: abi.KVM_EXIT_HYPERV, member: null },
  KVM_EXIT_X86_RDMSR: { number: abi.KVM_EXIT_X86_RDMSR, member: 'msr' },
  KVM_EXIT_X86_WRMSR: { number: abi.KVM_EXIT_X86_WRMSR, member: 'msr' },
  KVM_EXIT_DIRTY_RING_FULL: { number: abi.KVM_EXIT_DIRTY_RING_FULL, member: null },
  KVM_EXIT_AP_RESET_HOLD: { number: abi.KVM_EXIT_AP_RESET_HOLD, member: null },
  KVM_EXIT_X86_BUS_LOCK: { number: abi.KVM_EXIT_X86_BUS_LOCK, member: null },
  KVM_EXIT_XEN: { number: abi.KVM_EXIT_XEN, member: null },
  KVM_EXIT_NOTIFY: { number: abi.KVM_EXIT_NOTIFY, member: null },
  // 39 in mainline and under the v3 profile; under v2, 39 is KVM_EXIT_HEKI_CONFIGURE and this exit
  // does not exist (v2 was built on 6.6, before it; docs/memory-protection.md §3.3).
  KVM_EXIT_MEMORY_FAULT: { number: { profile: 'KVM_EXIT_MEMORY_FAULT', mainline: abi.KVM_EXIT_MEMORY_FAULT }, member: 'memory_fault' },
  KVM_EXIT_HEKI_CONFIGURE: { number: { profile: 'KVM_EXIT_HEKI_CONFIGURE' }, member: 'heki_configure' },
  KVM_EXIT_HEKI_DENIAL: { number: { profile: 'KVM_EXIT_HEKI_DENIAL' }, member: 'heki_denial' },
  KVM_EXIT_PINBOX_CR_FILTER: { number: abi.KVM_EXIT_PINBOX_CR_FILTER, member: 'cr_filter' },
  KVM_EXIT_PINBOX_REG_INTERCEPT: { number: abi.KVM_EXIT_PINBOX_REG_INTERCEPT, member: 'reg_intercept' },
} as const satisfies Readonly<Record<string, ExitEntry>>;

export type VcpuExitReason = keyof typeof KVM_EXITS;

/**
 * pinbox's name for an exit_reason it has no name for (a newer kernel's exit, or one of 40 and
 * up on a VM that speaks no Heki profile): never a kernel name.
 */
export const UNNAMED_EXIT = 'KVM_EXIT_UNNAMED';

/** `kvm_run.s` (KVM_CAP_SYNC_REGS): struct kvm_sync_regs (x86), without `events`. */
export interface KvmSyncRegs {
  readonly regs: Regs;
  /** The model leaves it undefined until KVM first stores the sregs (KVM_SYNC_X86_SREGS in kvm_valid_regs). */
  sregs: Sregs | undefined;
}

interface ExitCommon {
  /** user → kernel: finish any pending completion, then return KVM_EXIT_INTR at once. */
  immediate_exit: boolean;
  /** KVM_CAP_SYNC_REGS: the register sets KVM stores into `s` at every exit. */
  kvm_valid_regs: number;
  /** KVM_CAP_SYNC_REGS: the register sets of `s` KVM loads before the next run (it clears each bit). */
  kvm_dirty_regs: number;
  readonly s: KvmSyncRegs;
  /** kernel → user on every exit: CR8 and IA32_APIC_BASE. */
  readonly cr8: bigint;
  readonly apic_base: bigint;
  /** pinbox, not in kvm_run: this KVM_EXIT_INTR is run()'s deadline passing (RunOptions.deadline). */
  readonly timed_out: boolean;
}

type Entry<R extends VcpuExitReason> = (typeof KVM_EXITS)[R];
type MemberOf<R extends VcpuExitReason> = Entry<R>['member'];

/** One exit as user space narrows to it: its name, its number (a literal when fixed) and its member. */
type ExitOf<R extends VcpuExitReason> = {
  readonly reason: R;
  readonly exit_reason: Entry<R>['number'] extends number ? Entry<R>['number'] : number;
} & (MemberOf<R> extends keyof KvmRunMembers ? { readonly [M in MemberOf<R>]: KvmRunMembers[M] } : unknown);

/** What `run()` returns: kvm_run, narrowed by `reason`. */
export type VcpuExit = ExitCommon & ({ [R in VcpuExitReason]: ExitOf<R> }[VcpuExitReason] | {
  readonly reason: typeof UNNAMED_EXIT;
  readonly exit_reason: number;
});

/** The whole kvm_run page, every member visible (as the C union lets a reader look at any). */
export type KvmRun = ExitCommon & KvmRunMembers & {
  readonly reason: VcpuExitReason | typeof UNNAMED_EXIT;
  readonly exit_reason: number;
};

const ENTRIES = KVM_EXITS as Readonly<Record<VcpuExitReason, ExitEntry>>;
const REASONS = Object.keys(KVM_EXITS) as VcpuExitReason[];

function numberOf(reason: VcpuExitReason, profile: HekiAbiProfile | null): number | undefined {
  const n = ENTRIES[reason].number;
  if (typeof n === 'number') return n;
  return profile === null ? n.mainline : profile[n.profile];
}

const numbersByProfile = new Map<HekiAbiProfile, Readonly<Record<VcpuExitReason, number>>>();
const namesByProfile = new Map<HekiAbiProfile | null, ReadonlyMap<number, VcpuExitReason>>();

/**
 * kvm_run.exit_reason of every exit under an ABI profile (made once per profile). An exit the
 * profile does not have (KVM_EXIT_MEMORY_FAULT under v2) is -1: no VM of that profile gives it.
 */
export function exitNumbers(profile: HekiAbiProfile): Readonly<Record<VcpuExitReason, number>> {
  let numbers = numbersByProfile.get(profile);
  if (numbers === undefined) {
    numbers = Object.freeze(Object.fromEntries(REASONS.map((r) => [r, numberOf(r, profile) ?? -1])) as Record<VcpuExitReason, number>);
    numbersByProfile.set(profile, numbers);
  }
  return numbers;
}

/** The exit_reason number of an exit; the Heki ones depend on the ABI profile (undefined: the profile has no such exit). */
export function exitReasonNumber(reason: VcpuExitReason, profile: HekiAbiProfile): number | undefined {
  const n = exitNumbers(profile)[reason];
  return n < 0 ? undefined : n;
}

/**
 * The exit a kvm_run.exit_reason number is under an ABI profile, if it is in the table. With no
 * profile, the profile-numbered exits are not looked for: their numbers are other exits' on
 * kernels without Heki (KVM_EXIT_MEMORY_FAULT is 39).
 */
export function exitReasonName(exitReason: number, profile: HekiAbiProfile | null): VcpuExitReason | undefined {
  let names = namesByProfile.get(profile);
  if (names === undefined) {
    const map = new Map<number, VcpuExitReason>();
    for (const r of REASONS) {
      const n = numberOf(r, profile);
      if (n !== undefined) map.set(n, r);
    }
    names = map;
    namesByProfile.set(profile, names);
  }
  return names.get(exitReason);
}
