/**
 * The model's kvm_run page: one per vCPU, the object every `run()` returns (exits.ts has its
 * shape). It carries every member of the exit union at once, as the C union would let a reader
 * look at any of them; `reason` says which one the current exit filled.
 */
import type { HekiAbiProfile } from '../../protocol/abi.js';
import * as abi from '../../protocol/abi.js';
import {
  exitNumbers, type KvmRunFailEntry, type KvmRunHekiConfigure, type KvmRunHekiDenial, type KvmRunIo, type KvmRunMembers,
  type KvmRunMsr, type VcpuExit, type VcpuExitReason,
} from './exits.js';
import { type KvmSyncRegs, SyncedRegs } from './sync-regs.js';

export class KvmRun implements KvmRunMembers {
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
  private readonly numbers: Readonly<Record<VcpuExitReason, number>>;

  constructor(profile: HekiAbiProfile) {
    this.numbers = exitNumbers(profile);
  }

  /** Names the exit (its number per the VM's ABI profile); its member is the caller's to fill. */
  setExit(reason: VcpuExitReason): void {
    this.reason = reason;
    this.exit_reason = this.numbers[reason];
  }

  /** This object as the union user space narrows (it carries every member). */
  asExit(): VcpuExit {
    return this as unknown as VcpuExit;
  }
}
