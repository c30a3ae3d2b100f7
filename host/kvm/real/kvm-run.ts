/**
 * A real vCPU's `struct kvm_run`, read and written in place: the object `VcpuFd.run()`
 * returns is a view over the mmap'd page, so an exit costs no copy, and what user space
 * writes (msr.data, msr.error, io.data for IN, immediate_exit, kvm_dirty_regs, s.regs) is what
 * the kernel reads on the next KVM_RUN. Its shape is the model's VcpuExit (host/kvm/exits.ts)
 * with three differences, each because real KVM has more than the model:
 *   - exits the model never gives are reported too, by the kernel's name (MMIO, internal error,
 *     system event with their payloads; any other by name, or KVM_EXIT_UNNAMED);
 *   - `timed_out` (a pinbox field, not in kvm_run) says a KVM_EXIT_INTR came from run()'s
 *     deadline and not from immediate_exit;
 *   - `s.regs` is a Regs view over kvm_run.s.regs, `s.sregs` decodes kvm_run.s.sregs when read
 *     and encodes when assigned (the model's SyncedRegs is its own class).
 * The Heki exits are decoded only on a VM that enabled a Heki capability: their numbers mean
 * other exits on mainline kernels (ARCHITECTURE.md, "Out-of-tree ABI numbers").
 * Once the vCPU is closed, every field throws KvmError EBADF.
 */
import type { HekiAbiProfile } from '../../../protocol/abi.js';
import * as abi from '../../../protocol/abi.js';
import { KvmError } from '../errors.js';
import type {
  KvmRunFailEntry, KvmRunHekiConfigure, KvmRunHekiDenial, KvmRunIo, KvmRunMsr, VcpuExit,
} from '../exits.js';
import type { KvmFd } from './fd.js';
import type { Mapping } from './mapping.js';
import {
  RunFailEntry, RunHeki, RunInternal, RunIo, RunMmio, RunMsr, RunSyncRegs, RunSystemEvent,
  type KvmRunInternal, type KvmRunMmio, type KvmRunSystemEvent, type RealSyncRegs,
} from './run-members.js';
import { OTHER_EXIT_NAMES, RUN } from './uapi.js';

export type { KvmRunInternal, KvmRunMmio, KvmRunSystemEvent, RealSyncRegs };

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
type Common = Pick<VcpuExit, 'immediate_exit' | 'kvm_valid_regs' | 'kvm_dirty_regs' | 'cr8' | 'apic_base'>;
type Named = (typeof OTHER_EXIT_NAMES)[keyof typeof OTHER_EXIT_NAMES];

/** The exits the model has no member for. */
export type RealOnlyExit = Common &
  (
    | { readonly reason: 'KVM_EXIT_MMIO'; readonly exit_reason: typeof abi.KVM_EXIT_MMIO; readonly mmio: KvmRunMmio }
    | { readonly reason: 'KVM_EXIT_INTERNAL_ERROR'; readonly exit_reason: typeof abi.KVM_EXIT_INTERNAL_ERROR; readonly internal: KvmRunInternal }
    | { readonly reason: 'KVM_EXIT_SYSTEM_EVENT'; readonly exit_reason: typeof abi.KVM_EXIT_SYSTEM_EVENT; readonly system_event: KvmRunSystemEvent }
    | { readonly reason: Exclude<Named, 'KVM_EXIT_MMIO' | 'KVM_EXIT_INTERNAL_ERROR' | 'KVM_EXIT_SYSTEM_EVENT'> | 'KVM_EXIT_UNNAMED'; readonly exit_reason: number }
  );

/** What `VcpuFd.run()` returns: the model's VcpuExit union, widened as described above. */
export type RealVcpuExit = (DistributiveOmit<VcpuExit, 's'> | RealOnlyExit) & {
  readonly s: RealSyncRegs;
  /** pinbox: this KVM_EXIT_INTR is run()'s deadline passing (false for immediate_exit). */
  readonly timed_out: boolean;
};
export type RealVcpuExitReason = RealVcpuExit['reason'];

/** Which exit numbers are Heki's on this VM (null: none, the VM enabled no Heki capability). */
export interface HekiExits {
  profile: HekiAbiProfile | null;
}

export class RealKvmRun {
  timed_out = false;
  readonly msr: KvmRunMsr;
  readonly io: KvmRunIo;
  readonly heki_configure: KvmRunHekiConfigure;
  readonly heki_denial: KvmRunHekiDenial;
  readonly fail_entry: KvmRunFailEntry;
  readonly mmio: KvmRunMmio;
  readonly internal: KvmRunInternal;
  readonly system_event: KvmRunSystemEvent;
  readonly s: RealSyncRegs;
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
    this.mmio = new RunMmio(v, fd);
    this.internal = new RunInternal(v, fd);
    this.system_event = new RunSystemEvent(v, fd);
    this.s = new RunSyncRegs(v, fd);
  }

  get exit_reason(): number {
    this.#fd.check('kvm_run');
    return this.#v.getUint32(RUN.exit_reason, true);
  }

  get reason(): RealVcpuExitReason {
    const n = this.exit_reason;
    switch (n) {
      case abi.KVM_EXIT_X86_RDMSR: return 'KVM_EXIT_X86_RDMSR';
      case abi.KVM_EXIT_X86_WRMSR: return 'KVM_EXIT_X86_WRMSR';
      case abi.KVM_EXIT_IO: return 'KVM_EXIT_IO';
      case abi.KVM_EXIT_HLT: return 'KVM_EXIT_HLT';
      case abi.KVM_EXIT_SHUTDOWN: return 'KVM_EXIT_SHUTDOWN';
      case abi.KVM_EXIT_FAIL_ENTRY: return 'KVM_EXIT_FAIL_ENTRY';
      case abi.KVM_EXIT_INTR: return 'KVM_EXIT_INTR';
    }
    const heki = this.#heki.profile;
    if (heki !== null && n === heki.KVM_EXIT_HEKI_CONFIGURE) return 'KVM_EXIT_HEKI_CONFIGURE';
    if (heki !== null && n === heki.KVM_EXIT_HEKI_DENIAL) return 'KVM_EXIT_HEKI_DENIAL';
    return OTHER_EXIT_NAMES[n as keyof typeof OTHER_EXIT_NAMES] ?? 'KVM_EXIT_UNNAMED';
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
  asExit(): RealVcpuExit {
    return this as unknown as RealVcpuExit;
  }
}
