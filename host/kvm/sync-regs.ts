/**
 * KVM_CAP_SYNC_REGS: `kvm_run.s.regs` carries the vCPU's registers across KVM_RUN, so that a
 * VMM that touches a few registers per exit needs no KVM_GET_REGS / KVM_SET_REGS round trip
 * (Documentation/virt/kvm/api.rst, "kvm_valid_regs / kvm_dirty_regs"; x86.c store_regs() and
 * sync_regs()). User space sets `kvm_valid_regs` to ask KVM to store those register sets into
 * `s` at every exit, and sets `kvm_dirty_regs` after editing `s` to have KVM load them before
 * the guest runs again; KVM clears each dirty bit it has loaded.
 *
 * MODEL DECISION: pinbox syncs KVM_SYNC_X86_REGS and KVM_SYNC_X86_SREGS. It has no
 * KVM_GET/SET_VCPU_EVENTS, so KVM_SYNC_X86_EVENTS is not offered: KVM_CHECK_EXTENSION
 * answers REGS|SREGS (3) where x86 KVM answers KVM_SYNC_X86_VALID_FIELDS (7), and a mask
 * with the events bit is EINVAL, as any bit outside the valid fields is in
 * kvm_arch_vcpu_ioctl_run().
 *
 * What user space sees is exactly what KVM's copies give; how pinbox gets there is cheaper:
 *   - store_regs() takes the snapshot lazily: each field is read from the vCPU the first time
 *     it is looked at, and every field not yet read is read before anything else can change
 *     the registers (KVM_SET_REGS, INIT, or a KVM_RUN after which the snapshot would outlive
 *     the exit because kvm_valid_regs no longer asks for a new one);
 *   - __set_regs() from a dirty s.regs writes every field, but a field user space has not
 *     written since the snapshot holds what the vCPU holds, so only the written ones need
 *     writing — unless something changed the registers since the snapshot, and then all are.
 * A VMM that changes RCX and RIP per exit pays for two registers, not eighteen each way.
 */
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from '../../protocol/abi.js';
import type { GuestCpu } from '../x86/guest-cpu.js';
import type { KvmSyncRegs } from './api/exits.js';
import { KVM_REGS_FIELDS, type Regs, type RegsField, type Sregs } from './api/regs.js';
import { KvmError } from './api/errors.js';
import type { ModelKvmRun } from './kvm-run.js';
import { U64_MAX } from './u64.js';
import { hex } from '../../protocol/notation.js';

/** The register sets pinbox syncs (see MODEL DECISION above). */
export const PINBOX_SYNC_REGS_FIELDS = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;

/** The GPR encoding number (GuestCpu.readGpr/writeGpr) of each kvm_regs field. */
const GPR_OF = [0, 3, 1, 2, 6, 7, 4, 5, 8, 9, 10, 11, 12, 13, 14, 15] as const;
const RIP = 16;
const RFLAGS = 17;
const ALL = (1 << 18) - 1;
const LOW32 = 0xffff_ffffn;

/**
 * `kvm_run.s.regs.regs`: the 18 fields of struct kvm_regs, each a property user space reads and
 * writes like any other (enumerable, so that copies and JSON see them).
 */
export class SyncedRegs implements Regs {
  declare rax: bigint; declare rbx: bigint; declare rcx: bigint; declare rdx: bigint;
  declare rsi: bigint; declare rdi: bigint; declare rsp: bigint; declare rbp: bigint;
  declare r8: bigint; declare r9: bigint; declare r10: bigint; declare r11: bigint;
  declare r12: bigint; declare r13: bigint; declare r14: bigint; declare r15: bigint;
  declare rip: bigint; declare rflags: bigint;

  private readonly values: bigint[] = new Array<bigint>(18).fill(0n);
  /** Fields whose value is in `values`; the others are read from `source` when looked at. */
  private loaded = ALL;
  private source: GuestCpu | undefined;
  /** Fields user space has written since the last store. */
  private written = 0;
  /** The fields not written hold what the vCPU holds (nothing changed it since the store). */
  private fresh = false;

  /** store_regs(): the snapshot is the vCPU's registers as they are now. */
  storeFrom(cpu: GuestCpu): void {
    this.source = cpu;
    this.loaded = 0;
    this.written = 0;
    this.fresh = true;
  }

  /** Reads every field a pending store has not read yet: the vCPU's registers are about to change. */
  settle(): void {
    for (let i = 0; this.loaded !== ALL && i < 18; i++) if ((this.loaded & (1 << i)) === 0) this.load(i);
    this.source = undefined;
  }

  /** Something other than sync_regs() is changing the registers: settle, and forget freshness. */
  registersChanging(): void {
    this.settle();
    this.fresh = false;
  }

  /**
   * __set_regs() from these fields: each field to be written is checked first (a refused value
   * leaves every register as it was), then written. While fresh, only the fields user space
   * wrote differ from the vCPU's registers; the others — read or not yet read — hold its values.
   */
  loadInto(cpu: GuestCpu): void {
    const mask = this.fresh ? this.written : ALL;
    // Over the set bits of the mask only: usually two or three.
    for (let m = mask; m !== 0; m &= m - 1) {
      const i = 31 - Math.clz32(m & -m);
      const v = this.read(i);
      if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) {
        throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.s.regs.${KVM_REGS_FIELDS[i]} must be a u64 bigint, got ${String(v)}`);
      }
    }
    for (let m = mask; m !== 0; m &= m - 1) {
      const i = 31 - Math.clz32(m & -m);
      if (i < 16) {
        // A value below 2^32 is a 32-bit register write, which zero-extends: no BigInt arithmetic.
        const v = this.values[i]!;
        if (v <= LOW32) cpu.writeGpr32(GPR_OF[i]!, Number(v));
        else cpu.writeGpr(GPR_OF[i]!, v);
      }
      else if (i === RIP) cpu.setRip(this.values[RIP]!);
      else cpu.setRflags(this.values[RFLAGS]!);
    }
    this.written = 0;
    this.fresh = true;
  }

  private read(i: number): bigint {
    if ((this.loaded & (1 << i)) === 0) this.load(i);
    return this.values[i]!;
  }

  private write(i: number, v: bigint): void {
    this.values[i] = v;
    this.loaded |= 1 << i;
    this.written |= 1 << i;
  }

  private load(i: number): void {
    const cpu = this.source!;
    this.values[i] = i < 16 ? cpu.readGpr(GPR_OF[i]!) : i === RIP ? cpu.getRip() : cpu.getRflags();
    this.loaded |= 1 << i;
  }

  static {
    KVM_REGS_FIELDS.forEach((name: RegsField, i) => {
      Object.defineProperty(SyncedRegs.prototype, name, {
        get(this: SyncedRegs) {
          return this.read(i);
        },
        set(this: SyncedRegs, v: bigint) {
          this.write(i, v);
        },
        enumerable: true,
        configurable: false,
      });
    });
  }
}

/** The model's `kvm_run.s`: s.regs is a SyncedRegs. */
export interface ModelSyncRegs extends KvmSyncRegs {
  readonly regs: SyncedRegs;
}

/** kvm_arch_vcpu_ioctl_run(): a bit outside the synced fields in either mask is EINVAL. */
export function checkSyncMasks(run: ModelKvmRun): void {
  const valid = run.kvm_valid_regs;
  const dirty = run.kvm_dirty_regs;
  if (valid >>> 0 === valid && dirty >>> 0 === dirty && ((valid | dirty) & ~PINBOX_SYNC_REGS_FIELDS) === 0) return;
  for (const name of ['kvm_valid_regs', 'kvm_dirty_regs'] as const) {
    const mask: unknown = run[name];
    if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0 || (mask & ~PINBOX_SYNC_REGS_FIELDS) !== 0) {
      throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.${name} must hold only KVM_SYNC_X86_REGS|KVM_SYNC_X86_SREGS (${hex(PINBOX_SYNC_REGS_FIELDS)}), got ${String(mask)}`);
    }
  }
}

/**
 * sync_regs(): loads the dirty register sets from `s` before the guest runs. `setSregs` is the
 * vCPU's KVM_SET_SREGS (with its checks); a refused load is EINVAL and leaves its bit set.
 */
export function syncRegs(run: ModelKvmRun, cpu: GuestCpu, setSregs: (sregs: Sregs) => void): void {
  if ((run.kvm_dirty_regs & KVM_SYNC_X86_REGS) !== 0) {
    run.s.regs.loadInto(cpu);
    run.kvm_dirty_regs &= ~KVM_SYNC_X86_REGS;
  }
  if ((run.kvm_dirty_regs & KVM_SYNC_X86_SREGS) !== 0) {
    const sregs = run.s.sregs;
    if (sregs === undefined) throw new KvmError('EINVAL', 'KVM_RUN', 'KVM_SYNC_X86_SREGS is dirty but kvm_run.s.sregs was never stored');
    setSregs({ ...sregs });
    run.kvm_dirty_regs &= ~KVM_SYNC_X86_SREGS;
  }
}

/**
 * At the start of KVM_RUN, before anything touches the registers: a snapshot the coming exit
 * will not replace (kvm_valid_regs without REGS) is read out now, while the vCPU holds it.
 */
export function beforeRegistersChange(run: ModelKvmRun): void {
  if ((run.kvm_valid_regs & KVM_SYNC_X86_REGS) === 0) run.s.regs.registersChanging();
}

/**
 * Just before the guest runs (after sync_regs() and the pending completion): a snapshot the
 * coming exit will replace is replaced now — unobservably, as user space cannot look during
 * KVM_RUN — so that a KVM_RUN that fails part-way leaves in s.regs what store_regs() at its
 * `out:` label would: the registers as they are then.
 */
export function beforeGuestRuns(run: ModelKvmRun, cpu: GuestCpu): void {
  if ((run.kvm_valid_regs & KVM_SYNC_X86_REGS) !== 0) run.s.regs.storeFrom(cpu);
}

/** store_regs(): the register sets named in kvm_valid_regs, as the vCPU holds them now. */
export function storeRegs(run: ModelKvmRun, cpu: GuestCpu, getSregs: () => Sregs): void {
  if ((run.kvm_valid_regs & KVM_SYNC_X86_REGS) !== 0) run.s.regs.storeFrom(cpu);
  if ((run.kvm_valid_regs & KVM_SYNC_X86_SREGS) !== 0) run.s.sregs = getSregs();
}
