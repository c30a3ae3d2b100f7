/**
 * `struct kvm_run` (include/uapi/linux/kvm.h) as pinbox hands it to user space: `Vcpu.run()`
 * returns the vCPU's one kvm_run, typed as the VcpuExit union on `reason`; user space narrows on
 * `reason`, reads the union member, and fills what the kernel reads back on the next run()
 * (`msr.error`, `msr.data`, `io.data` for IN, `immediate_exit`).
 *
 * Every exit is one entry of KVM_EXITS — its name, its number (fixed by the uAPI, or taken from
 * the VM's Heki ABI profile) and the kvm_run member that carries its payload — and the VcpuExit
 * union, the exit numbers and their names are derived from that table (docs/kvm-exits.md).
 */
import type { HekiAbiProfile } from '../../protocol/abi.js';
import * as abi from '../../protocol/abi.js';
import type { KvmSyncRegs } from './sync-regs.js';

/** KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR */
export interface KvmRunMsr {
  /** user → kernel: non-zero (as a __u8) makes the access #GP(0). */
  error: number;
  /** kernel → user: KVM_MSR_EXIT_REASON_INVAL, _UNKNOWN or _FILTER. */
  reason: number;
  /** kernel → user: ECX */
  index: number;
  /** RDMSR: user → kernel, the value read (KVM presets 0); WRMSR: the value written. */
  data: bigint;
}

/** KVM_EXIT_IO for IN/OUT (one item; pinbox has no string I/O). */
export interface KvmRunIo {
  /** KVM_EXIT_IO_IN (0) or KVM_EXIT_IO_OUT (1) */
  direction: number;
  size: number;
  port: number;
  count: number;
  /** OUT: AL/AX/EAX as written; IN: user space stores the value the guest reads. */
  data: number;
}

export interface KvmRunHekiConfigure {
  /** KVM_HEKI_EXIT_REASON_CR0 or _CR4: exactly one bit */
  reason: number;
  /** This call's pin (for CR4 after `&= host CR4`), not the accumulated pins. */
  cr_pinned: bigint;
}

export interface KvmRunHekiDenial {
  reason: number;
  /** The whole value the guest tried to load. */
  cr_value: bigint;
}

export interface KvmRunFailEntry {
  /** The VMX exit reason: 0x80000021, "VM-entry failure: invalid guest state". */
  hardware_entry_failure_reason: bigint;
  cpu: number;
  /** pinbox: which part of the state the core cannot run. */
  detail: string;
}

/** The members of kvm_run's exit union that pinbox fills, by their name in the C struct. */
export interface KvmRunMembers {
  msr: KvmRunMsr;
  io: KvmRunIo;
  heki_configure: KvmRunHekiConfigure;
  heki_denial: KvmRunHekiDenial;
  fail_entry: KvmRunFailEntry;
}

/** The exit numbers an ABI profile decides (the out-of-tree ones: heki.ts in protocol/abi). */
export type ProfileExitNumber = 'KVM_EXIT_HEKI_CONFIGURE' | 'KVM_EXIT_HEKI_DENIAL';

interface ExitEntry {
  /** kvm_run.exit_reason: the uAPI's number, or the name of the profile field that holds it. */
  readonly number: number | { readonly profile: ProfileExitNumber };
  /** The kvm_run member with the exit's payload, or null for an exit without one. */
  readonly member: keyof KvmRunMembers | null;
}

/** Every exit pinbox's KVM returns to user space. */
export const KVM_EXITS = {
  KVM_EXIT_X86_RDMSR: { number: abi.KVM_EXIT_X86_RDMSR, member: 'msr' },
  KVM_EXIT_X86_WRMSR: { number: abi.KVM_EXIT_X86_WRMSR, member: 'msr' },
  KVM_EXIT_HEKI_CONFIGURE: { number: { profile: 'KVM_EXIT_HEKI_CONFIGURE' }, member: 'heki_configure' },
  KVM_EXIT_HEKI_DENIAL: { number: { profile: 'KVM_EXIT_HEKI_DENIAL' }, member: 'heki_denial' },
  KVM_EXIT_IO: { number: abi.KVM_EXIT_IO, member: 'io' },
  KVM_EXIT_HLT: { number: abi.KVM_EXIT_HLT, member: null },
  KVM_EXIT_SHUTDOWN: { number: abi.KVM_EXIT_SHUTDOWN, member: null },
  KVM_EXIT_FAIL_ENTRY: { number: abi.KVM_EXIT_FAIL_ENTRY, member: 'fail_entry' },
  KVM_EXIT_INTR: { number: abi.KVM_EXIT_INTR, member: null },
} as const satisfies Readonly<Record<string, ExitEntry>>;

export type VcpuExitReason = keyof typeof KVM_EXITS;

interface ExitCommon {
  /** user → kernel: finish any pending completion, then return KVM_EXIT_INTR at once. */
  immediate_exit: boolean;
  /** KVM_CAP_SYNC_REGS (sync-regs.ts): the register sets KVM stores into `s` at every exit. */
  kvm_valid_regs: number;
  /** KVM_CAP_SYNC_REGS: the register sets of `s` KVM loads before the next run (it clears each bit). */
  kvm_dirty_regs: number;
  /** KVM_CAP_SYNC_REGS: `kvm_run.s.regs`, struct kvm_sync_regs. */
  readonly s: KvmSyncRegs;
  /** kernel → user on every exit: CR8 and IA32_APIC_BASE. */
  readonly cr8: bigint;
  readonly apic_base: bigint;
}

type Entry<R extends VcpuExitReason> = (typeof KVM_EXITS)[R];
type MemberOf<R extends VcpuExitReason> = Entry<R>['member'];

/** One exit as user space narrows to it: its name, its number (a literal when fixed) and its member. */
type ExitOf<R extends VcpuExitReason> = {
  readonly reason: R;
  readonly exit_reason: Entry<R>['number'] extends number ? Entry<R>['number'] : number;
} & (MemberOf<R> extends keyof KvmRunMembers ? { readonly [M in MemberOf<R>]: KvmRunMembers[M] } : unknown);

export type VcpuExit = ExitCommon & { [R in VcpuExitReason]: ExitOf<R> }[VcpuExitReason];

const REASONS = Object.keys(KVM_EXITS) as VcpuExitReason[];
const numbersByProfile = new Map<HekiAbiProfile, Readonly<Record<VcpuExitReason, number>>>();

/** kvm_run.exit_reason of every exit under an ABI profile (made once per profile). */
export function exitNumbers(profile: HekiAbiProfile): Readonly<Record<VcpuExitReason, number>> {
  let numbers = numbersByProfile.get(profile);
  if (numbers === undefined) {
    const n = KVM_EXITS as Readonly<Record<VcpuExitReason, ExitEntry>>;
    numbers = Object.freeze(
      Object.fromEntries(REASONS.map((r) => {
        const number = n[r].number;
        return [r, typeof number === 'number' ? number : profile[number.profile]];
      })) as Record<VcpuExitReason, number>,
    );
    numbersByProfile.set(profile, numbers);
  }
  return numbers;
}

/** The exit_reason number of an exit; the Heki ones depend on the ABI profile. */
export function exitReasonNumber(reason: VcpuExitReason, profile: HekiAbiProfile): number {
  return exitNumbers(profile)[reason];
}

/**
 * The exit a kvm_run.exit_reason number is under an ABI profile, if pinbox knows it. With no
 * profile, the profile-numbered exits are not looked for: their numbers are other exits'
 * on kernels without Heki (KVM_EXIT_MEMORY_FAULT is 39).
 */
export function exitReasonName(exitReason: number, profile: HekiAbiProfile | null): VcpuExitReason | undefined {
  for (const r of REASONS) {
    const number = (KVM_EXITS as Readonly<Record<VcpuExitReason, ExitEntry>>)[r].number;
    if (typeof number === 'number' ? number === exitReason : profile !== null && profile[number.profile] === exitReason) return r;
  }
  return undefined;
}
