/**
 * The model's kvm_run page: one per vCPU, the object every `run()` returns (host/kvm/api/exits.ts
 * has its shape). It carries every member of the exit union at once, as the C union would let a
 * reader look at any of them; `reason` says which one the current exit filled.
 */
import type { HekiAbiProfile } from '../../protocol/abi.js';
import * as abi from '../../protocol/abi.js';
import {
  exitNumbers, type KvmRun, type KvmRunCrFilter, type KvmRunDebug, type KvmRunFailEntry, type KvmRunHekiConfigure, type KvmRunHekiDenial,
  type KvmRunInternal, type KvmRunIo, type KvmRunMemoryFault, type KvmRunMembers, type KvmRunMmio, type KvmRunMsr, type KvmRunRegIntercept,
  type KvmRunSystemEvent, type VcpuExit, type VcpuExitReason,
} from './api/exits.js';
import { type ModelSyncRegs, SyncedRegs } from './sync-regs.js';

/** A member as the kernel fills it: every field writable. */
type Filled<T> = { -readonly [K in keyof T]: T[K] };

export class ModelKvmRun implements KvmRunMembers {
  reason: VcpuExitReason = 'KVM_EXIT_UNKNOWN';
  exit_reason: number = abi.KVM_EXIT_UNKNOWN;
  immediate_exit = false;
  kvm_valid_regs = 0;
  kvm_dirty_regs = 0;
  readonly s: ModelSyncRegs = { regs: new SyncedRegs(), sregs: undefined };
  cr8 = 0n;
  apic_base = 0n;
  timed_out = false;
  readonly msr: Filled<KvmRunMsr> = { error: 0, reason: 0, index: 0, data: 0n };
  readonly io: Filled<KvmRunIo> = { direction: 0, size: 0, port: 0, count: 0, data: 0 };
  readonly heki_configure: Filled<KvmRunHekiConfigure> = { reason: 0, cr_pinned: 0n };
  readonly heki_denial: Filled<KvmRunHekiDenial> = { reason: 0, cr_value: 0n };
  readonly fail_entry: Filled<KvmRunFailEntry> = { hardware_entry_failure_reason: 0n, cpu: 0, detail: '' };
  readonly memory_fault: Filled<KvmRunMemoryFault> = { flags: 0n, gpa: 0n, size: 0n, gva: 0n, qualification: 0 };
  readonly cr_filter: Filled<KvmRunCrFilter> = { cr: 0, access: 0, old_value: 0n, new_value: 0n, rip: 0n, action: 0, value: 0n };
  readonly reg_intercept: Filled<KvmRunRegIntercept> = {
    intercept: 0, msr: 0, old_value: 0n, new_value: 0n, old_limit: 0, new_limit: 0, rip: 0n, action: 0, value: 0n, limit: 0,
  };
  readonly debug: Filled<KvmRunDebug> = { exception: 0, pc: 0n, dr6: 0n, dr7: 0n };
  // Exits the model never gives: their members stay zero.
  readonly mmio: KvmRunMmio = { phys_addr: 0n, data: new Uint8Array(0), len: 0, is_write: false };
  readonly internal: KvmRunInternal = { suberror: 0, data: [] };
  readonly system_event: KvmRunSystemEvent = { type: 0, data: [] };
  private readonly numbers: Readonly<Record<VcpuExitReason, number>>;

  constructor(profile: HekiAbiProfile) {
    this.numbers = exitNumbers(profile);
  }

  /** Names the exit (its number per the VM's ABI profile); its member is the caller's to fill. */
  setExit(reason: VcpuExitReason): void {
    this.reason = reason;
    this.exit_reason = this.numbers[reason];
    this.timed_out = false;
  }

  /** This object as the union user space narrows (it carries every member). */
  asExit(): VcpuExit {
    return this as unknown as VcpuExit;
  }

  /** This object as the page user space reads and writes. */
  asPage(): KvmRun {
    return this;
  }
}
