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
import type { Regs, Sregs } from '../../x86/state.js';
import { KvmError } from '../errors.js';
import type {
  KvmRunFailEntry, KvmRunHekiConfigure, KvmRunHekiDenial, KvmRunIo, KvmRunMsr, VcpuExit,
} from '../exits.js';
import type { KvmFd } from './fd.js';
import type { Mapping } from './mapping.js';
import { decodeSregs, encodeSregs } from './regs-codec.js';
import { OTHER_EXIT_NAMES, REGS_FIELDS, RUN, RUN_DATA_MAX } from './uapi.js';

/** KVM_EXIT_MMIO */
export interface KvmRunMmio {
  readonly phys_addr: bigint;
  /** The `len` bytes written (is_write) or to be read (user space fills them for a read). */
  data: Uint8Array;
  readonly len: number;
  readonly is_write: boolean;
}

/** KVM_EXIT_INTERNAL_ERROR and KVM_EXIT_SYSTEM_EVENT: a code and up to 16 u64 of data. */
export interface KvmRunInternal {
  readonly suberror: number;
  readonly data: readonly bigint[];
}
export interface KvmRunSystemEvent {
  readonly type: number;
  readonly data: readonly bigint[];
}

/** `kvm_run.s` (KVM_CAP_SYNC_REGS) read and written in place. */
export interface RealSyncRegs {
  readonly regs: Regs;
  sregs: Sregs;
}

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

const U64_MAX = (1n << 64n) - 1n;

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
  readonly #bytes: Uint8Array;
  readonly #fd: KvmFd;
  readonly #heki: HekiExits;

  /** @internal Made by the vCPU over its kvm_run mapping. */
  constructor(mapping: Mapping, fd: KvmFd, heki: HekiExits) {
    const v = mapping.view;
    this.#v = v;
    this.#bytes = mapping.bytes;
    this.#fd = fd;
    this.#heki = heki;
    const live = (): DataView => {
      fd.check('kvm_run');
      return v;
    };
    this.msr = {
      get error() { return live().getUint8(RUN.msr_error); },
      set error(e: number) { live().setUint8(RUN.msr_error, e); },
      get reason() { return live().getUint32(RUN.msr_reason, true); },
      get index() { return live().getUint32(RUN.msr_index, true); },
      get data() { return live().getBigUint64(RUN.msr_data, true); },
      set data(d: bigint) { live().setBigUint64(RUN.msr_data, BigInt.asUintN(64, d), true); },
    } as KvmRunMsr;
    const ioData = (): number => {
      const at = Number(live().getBigUint64(RUN.io_data_offset, true));
      const size = v.getUint8(RUN.io_size);
      if (size !== 1 && size !== 2 && size !== 4) throw new KvmError('EINVAL', 'kvm_run.io.data', `io.size is ${size}`);
      if (at + size > v.byteLength) throw new KvmError('EFAULT', 'kvm_run.io.data', `io.data_offset ${at} is outside kvm_run`);
      return at;
    };
    this.io = {
      get direction() { return live().getUint8(RUN.io_direction); },
      get size() { return live().getUint8(RUN.io_size); },
      get port() { return live().getUint16(RUN.io_port, true); },
      get count() { return live().getUint32(RUN.io_count, true); },
      // The first item at data_offset (pinbox's guests do no string I/O).
      get data() {
        const at = ioData();
        const size = v.getUint8(RUN.io_size);
        return size === 1 ? v.getUint8(at) : size === 2 ? v.getUint16(at, true) : v.getUint32(at, true);
      },
      set data(d: number) {
        const at = ioData();
        const size = v.getUint8(RUN.io_size);
        if (size === 1) v.setUint8(at, d);
        else if (size === 2) v.setUint16(at, d, true);
        else v.setUint32(at, d, true);
      },
    } as KvmRunIo;
    this.heki_configure = {
      get reason() { return Number(live().getBigUint64(RUN.heki_reason, true) & 0xffff_ffffn); },
      get cr_pinned() { return live().getBigUint64(RUN.heki_value, true); },
    } as KvmRunHekiConfigure;
    this.heki_denial = {
      get reason() { return Number(live().getBigUint64(RUN.heki_reason, true) & 0xffff_ffffn); },
      get cr_value() { return live().getBigUint64(RUN.heki_value, true); },
    } as KvmRunHekiDenial;
    this.fail_entry = {
      get hardware_entry_failure_reason() { return live().getBigUint64(RUN.fail_entry_reason, true); },
      get cpu() { return live().getUint32(RUN.fail_entry_cpu, true); },
      detail: '',
    } as KvmRunFailEntry;
    const bytes = this.#bytes;
    this.mmio = {
      get phys_addr() { return live().getBigUint64(RUN.mmio_phys_addr, true); },
      get len() { return Math.min(8, live().getUint32(RUN.mmio_len, true)); },
      get is_write() { return live().getUint8(RUN.mmio_is_write) !== 0; },
      get data() { return bytes.slice(RUN.mmio_data, RUN.mmio_data + this.len); },
      set data(d: Uint8Array) { live(); bytes.set(d.subarray(0, 8), RUN.mmio_data); },
    };
    const u64s = (ndataAt: number, dataAt: number): bigint[] => {
      const n = Math.min(RUN_DATA_MAX, live().getUint32(ndataAt, true));
      return Array.from({ length: n }, (_, i) => v.getBigUint64(dataAt + 8 * i, true));
    };
    this.internal = {
      get suberror() { return live().getUint32(RUN.internal_suberror, true); },
      get data() { return u64s(RUN.internal_ndata, RUN.internal_data); },
    };
    this.system_event = {
      get type() { return live().getUint32(RUN.system_event_type, true); },
      get data() { return u64s(RUN.system_event_ndata, RUN.system_event_data); },
    };
    const regs = {} as Regs;
    REGS_FIELDS.forEach((name, i) => {
      const at = RUN.s_regs + 8 * i;
      Object.defineProperty(regs, name, {
        get: () => live().getBigUint64(at, true),
        set: (value: bigint) => {
          if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
            throw new KvmError('EINVAL', 'kvm_run.s.regs', `${name} must be a u64 bigint, got ${String(value)}`);
          }
          live().setBigUint64(at, value, true);
        },
        enumerable: true,
      });
    });
    this.s = {
      regs,
      get sregs() { return decodeSregs(live(), RUN.s_sregs); },
      set sregs(s: Sregs) { encodeSregs(live(), RUN.s_sregs, s, 'kvm_run.s.sregs'); },
    };
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
