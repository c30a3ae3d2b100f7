/**
 * A real vCPU's `struct kvm_run`, read and written in place: the object `VcpuFd.run()` returns
 * is a view over the mmap'd page, so an exit costs no copy, and what user space writes
 * (msr.data, msr.error, io.data for IN, immediate_exit, kvm_dirty_regs, s.regs) is what the
 * kernel reads on the next KVM_RUN. It is the KvmRun of host/kvm/api/exits.ts:
 *   - every exit is named from the one exit table, whether or not the model gives it (MMIO,
 *     internal error, system event…), and a number the table lacks is KVM_EXIT_UNNAMED;
 *   - `timed_out` (pinbox's, not in kvm_run) says a KVM_EXIT_INTR came from run()'s deadline and
 *     not from immediate_exit;
 *   - `s.regs` is a Regs view over kvm_run.s.regs, `s.sregs` decodes kvm_run.s.sregs when read
 *     and encodes when assigned.
 * The Heki exits are named only on a VM that enabled a Heki capability: their numbers mean other
 * exits on mainline kernels (docs/architecture.md, "Where numbers and words live").
 * Once the vCPU is closed, every field throws KvmError EBADF.
 */
import type { HekiAbiProfile } from '../../../protocol/abi.js';
import * as abi from '../../../protocol/abi.js';
import { KvmError } from '../api/errors.js';
import {
  exitReasonName, UNNAMED_EXIT, type KvmRun, type KvmRunCrFilter, type KvmRunDebug, type KvmRunFailEntry, type KvmRunRegIntercept, type KvmRunHekiConfigure, type KvmRunHekiDenial,
  type KvmRunInternal, type KvmRunIo, type KvmRunMemoryFault, type KvmRunMmio, type KvmRunMsr, type KvmRunSystemEvent, type KvmSyncRegs, type VcpuExit,
} from '../api/exits.js';
import type { KvmFd } from './fd.js';
import type { Mapping } from './mapping.js';
import {
  RunCrFilter, RunDebug, RunFailEntry, RunHeki, RunInternal, RunIo, RunMemoryFault, RunMmio, RunMsr, RunRegIntercept, RunSyncRegs,
  RunSystemEvent,
} from './run-members.js';
import { RUN } from './uapi.js';

/** Which exit numbers are Heki's on this VM (null: none, the VM enabled no Heki capability). */
export interface HekiExits {
  profile: HekiAbiProfile | null;
}

export class RealKvmRun implements KvmRun {
  timed_out = false;
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
  readonly s: KvmSyncRegs;
  readonly #v: DataView;
  readonly #fd: KvmFd;
  readonly #heki: HekiExits;

  /** @internal Made by the vCPU over its kvm_run mapping. */
  constructor(mapping: Mapping, fd: KvmFd, heki: HekiExits) {
    const v = mapping.view;
    this.#v = v;
    this.#fd = fd;
    this.#heki = heki;
    this.msr = new RunMsr(v, fd);
    this.io = new RunIo(v, fd);
    this.heki_configure = this.heki_denial = new RunHeki(v, fd);
    this.fail_entry = new RunFailEntry(v, fd);
    this.memory_fault = new RunMemoryFault(v, fd);
    this.debug = new RunDebug(v, fd);
    this.mmio = new RunMmio(v, fd);
    this.internal = new RunInternal(v, fd);
    this.system_event = new RunSystemEvent(v, fd);
    this.cr_filter = new RunCrFilter(v, fd);
    this.reg_intercept = new RunRegIntercept(v, fd);
    this.s = new RunSyncRegs(v, fd);
  }

  get exit_reason(): number {
    this.#fd.check('kvm_run');
    return this.#v.getUint32(RUN.exit_reason, true);
  }

  get reason(): VcpuExit['reason'] {
    return exitReasonName(this.exit_reason, this.#heki.profile) ?? UNNAMED_EXIT;
  }

  /** @internal What run() reports for an EINTR: the kernel can leave exit_reason stale (immediate_exit). */
  setIntr(timedOut: boolean): void {
    this.#v.setUint32(RUN.exit_reason, abi.KVM_EXIT_INTR, true);
    this.timed_out = timedOut;
  }

  get immediate_exit(): boolean {
    this.#fd.check('kvm_run');
    return this.#v.getUint8(RUN.immediate_exit) !== 0;
  }

  set immediate_exit(on: boolean) {
    this.#fd.check('kvm_run');
    this.#v.setUint8(RUN.immediate_exit, on ? 1 : 0);
  }

  get kvm_valid_regs(): number {
    this.#fd.check('kvm_run');
    return Number(this.#v.getBigUint64(RUN.kvm_valid_regs, true));
  }

  set kvm_valid_regs(mask: number) {
    this.#setMask(RUN.kvm_valid_regs, 'kvm_valid_regs', mask);
  }

  get kvm_dirty_regs(): number {
    this.#fd.check('kvm_run');
    return Number(this.#v.getBigUint64(RUN.kvm_dirty_regs, true));
  }

  set kvm_dirty_regs(mask: number) {
    this.#setMask(RUN.kvm_dirty_regs, 'kvm_dirty_regs', mask);
  }

  #setMask(at: number, name: string, mask: number): void {
    this.#fd.check('kvm_run');
    if (!Number.isSafeInteger(mask) || mask < 0) throw new KvmError('EINVAL', `kvm_run.${name}`, `must be a non-negative integer, got ${String(mask)}`);
    this.#v.setBigUint64(at, BigInt(mask), true);
  }

  get cr8(): bigint {
    this.#fd.check('kvm_run');
    return this.#v.getBigUint64(RUN.cr8, true);
  }

  get apic_base(): bigint {
    this.#fd.check('kvm_run');
    return this.#v.getBigUint64(RUN.apic_base, true);
  }

  /** This object as the union user space narrows (it carries every member). */
  asExit(): VcpuExit {
    return this as unknown as VcpuExit;
  }
}
