/**
 * `struct kvm_run` (include/uapi/linux/kvm.h) as pinbox hands it to user space: `Vcpu.run()`
 * returns the vCPU's one KvmRun object, typed as the VcpuExit union on `reason`; user space
 * narrows on `reason`, reads the union member, and fills what the kernel reads back on the
 * next run() (`msr.error`, `msr.data`, `io.data` for IN, `immediate_exit`).
 */
import type { HekiAbiProfile } from '../../protocol/abi.js';
import * as abi from '../../protocol/abi.js';
import { type KvmSyncRegs, SyncedRegs } from './sync-regs.js';

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

export type VcpuExit = ExitCommon &
  (
    | { readonly reason: 'KVM_EXIT_X86_RDMSR'; readonly exit_reason: typeof abi.KVM_EXIT_X86_RDMSR; readonly msr: KvmRunMsr }
    | { readonly reason: 'KVM_EXIT_X86_WRMSR'; readonly exit_reason: typeof abi.KVM_EXIT_X86_WRMSR; readonly msr: KvmRunMsr }
    | { readonly reason: 'KVM_EXIT_HEKI_CONFIGURE'; readonly exit_reason: number; readonly heki_configure: KvmRunHekiConfigure }
    | { readonly reason: 'KVM_EXIT_HEKI_DENIAL'; readonly exit_reason: number; readonly heki_denial: KvmRunHekiDenial }
    | { readonly reason: 'KVM_EXIT_IO'; readonly exit_reason: typeof abi.KVM_EXIT_IO; readonly io: KvmRunIo }
    | { readonly reason: 'KVM_EXIT_HLT'; readonly exit_reason: typeof abi.KVM_EXIT_HLT }
    | { readonly reason: 'KVM_EXIT_SHUTDOWN'; readonly exit_reason: typeof abi.KVM_EXIT_SHUTDOWN }
    | { readonly reason: 'KVM_EXIT_FAIL_ENTRY'; readonly exit_reason: typeof abi.KVM_EXIT_FAIL_ENTRY; readonly fail_entry: KvmRunFailEntry }
    | { readonly reason: 'KVM_EXIT_INTR'; readonly exit_reason: typeof abi.KVM_EXIT_INTR }
  );

export type VcpuExitReason = VcpuExit['reason'];

/** The mutable mirror of kvm_run behind every VcpuExit of one vCPU. */
export class KvmRun {
  reason: VcpuExitReason | 'KVM_EXIT_UNKNOWN' = 'KVM_EXIT_UNKNOWN';
  exit_reason: number = abi.KVM_EXIT_UNKNOWN;
  immediate_exit = false;
  kvm_valid_regs = 0;
  kvm_dirty_regs = 0;
  readonly s: KvmSyncRegs = { regs: new SyncedRegs(), sregs: undefined };
  cr8 = 0n;
  apic_base = 0n;
  readonly msr: KvmRunMsr = { error: 0, reason: 0, index: 0, data: 0n };
  readonly io: KvmRunIo = { direction: 0, size: 0, port: 0, count: 0, data: 0 };
  readonly heki_configure: KvmRunHekiConfigure = { reason: 0, cr_pinned: 0n };
  readonly heki_denial: KvmRunHekiDenial = { reason: 0, cr_value: 0n };
  readonly fail_entry: KvmRunFailEntry = { hardware_entry_failure_reason: 0n, cpu: 0, detail: '' };

  constructor(private readonly profile: HekiAbiProfile) {}

  setExit(reason: VcpuExitReason): void {
    this.reason = reason;
    this.exit_reason = exitReasonNumber(reason, this.profile);
  }

  /** This object as the union user space narrows (it carries every member). */
  asExit(): VcpuExit {
    return this as unknown as VcpuExit;
  }
}

const FIXED_EXIT_NUMBERS: Readonly<Record<Exclude<VcpuExitReason, 'KVM_EXIT_HEKI_CONFIGURE' | 'KVM_EXIT_HEKI_DENIAL'>, number>> = {
  KVM_EXIT_X86_RDMSR: abi.KVM_EXIT_X86_RDMSR,
  KVM_EXIT_X86_WRMSR: abi.KVM_EXIT_X86_WRMSR,
  KVM_EXIT_IO: abi.KVM_EXIT_IO,
  KVM_EXIT_HLT: abi.KVM_EXIT_HLT,
  KVM_EXIT_SHUTDOWN: abi.KVM_EXIT_SHUTDOWN,
  KVM_EXIT_FAIL_ENTRY: abi.KVM_EXIT_FAIL_ENTRY,
  KVM_EXIT_INTR: abi.KVM_EXIT_INTR,
};

/** The exit_reason number of an exit; the Heki ones depend on the ABI profile. */
export function exitReasonNumber(reason: VcpuExitReason, profile: HekiAbiProfile): number {
  if (reason === 'KVM_EXIT_HEKI_CONFIGURE') return profile.KVM_EXIT_HEKI_CONFIGURE;
  if (reason === 'KVM_EXIT_HEKI_DENIAL') return profile.KVM_EXIT_HEKI_DENIAL;
  return FIXED_EXIT_NUMBERS[reason];
}
