/**
 * The members of a real vCPU's kvm_run (kvm-run.ts), each a view over the mapped page: what is
 * read comes from the kernel's last exit, what is written is what the kernel reads on the next
 * KVM_RUN. Classes with accessors on the prototype (object literals with getters and setters
 * measured 200+ ns per store on Node 20; these a few ns). Closed vCPU: EBADF on every access.
 */
import { KvmError } from '../api/errors.js';
import type {
  KvmRunCrFilter, KvmRunDebug, KvmRunFailEntry, KvmRunHekiConfigure, KvmRunHekiDenial, KvmRunInternal, KvmRunIo, KvmRunMemoryFault, KvmRunMmio,
  KvmRunMsr, KvmRunRegIntercept, KvmRunSystemEvent, KvmSyncRegs,
} from '../api/exits.js';
import { KVM_REGS_FIELDS, type Regs, type Sregs } from '../api/regs.js';
import type { KvmFd } from './fd.js';
import { decodeSregs, encodeSregs } from './regs-codec.js';
import { RUN, RUN_DATA_MAX } from './uapi.js';

const U64_MAX = (1n << 64n) - 1n;

/** A part of kvm_run: the page and the vCPU whose it is. */
export class RunPart {
  constructor(
    protected readonly v: DataView,
    protected readonly fd: KvmFd,
  ) {}

  /** The page, after checking the vCPU is open. */
  protected live(): DataView {
    this.fd.check('kvm_run');
    return this.v;
  }

  /** data[] of the internal and system_event exits: `ndata` u64 (at most 16). */
  protected u64s(ndataAt: number, dataAt: number): bigint[] {
    const v = this.live();
    const n = Math.min(RUN_DATA_MAX, v.getUint32(ndataAt, true));
    return Array.from({ length: n }, (_, i) => v.getBigUint64(dataAt + 8 * i, true));
  }
}

export class RunMsr extends RunPart implements KvmRunMsr {
  get error(): number { return this.live().getUint8(RUN.msr_error); }
  set error(e: number) { this.live().setUint8(RUN.msr_error, e); }
  get reason(): number { return this.live().getUint32(RUN.msr_reason, true); }
  get index(): number { return this.live().getUint32(RUN.msr_index, true); }
  get data(): bigint { return this.live().getBigUint64(RUN.msr_data, true); }
  set data(d: bigint) { this.live().setBigUint64(RUN.msr_data, d, true); }
}

export class RunIo extends RunPart implements KvmRunIo {
  get direction(): number { return this.live().getUint8(RUN.io_direction); }
  get size(): number { return this.live().getUint8(RUN.io_size); }
  get port(): number { return this.live().getUint16(RUN.io_port, true); }
  get count(): number { return this.live().getUint32(RUN.io_count, true); }

  /** The first item at data_offset (pinbox's guests do no string I/O). */
  get data(): number {
    const [at, size] = this.item();
    const v = this.v;
    return size === 1 ? v.getUint8(at) : size === 2 ? v.getUint16(at, true) : v.getUint32(at, true);
  }

  set data(d: number) {
    const [at, size] = this.item();
    const v = this.v;
    if (size === 1) v.setUint8(at, d);
    else if (size === 2) v.setUint16(at, d, true);
    else v.setUint32(at, d, true);
  }

  /** Where the data is (kvm_run + data_offset, the page after the struct) and its size. */
  private item(): [number, number] {
    const v = this.live();
    const at = Number(v.getBigUint64(RUN.io_data_offset, true));
    const size = v.getUint8(RUN.io_size);
    if (size !== 1 && size !== 2 && size !== 4) throw new KvmError('EINVAL', 'kvm_run.io.data', `io.size is ${size}`);
    if (at + size > v.byteLength) throw new KvmError('EFAULT', 'kvm_run.io.data', `io.data_offset ${at} is outside kvm_run`);
    return [at, size];
  }
}

/** Heki's exits (docs/heki.md §3.2): reason u64, then the value. */
export class RunDebug extends RunPart implements KvmRunDebug {
  get exception(): number { return this.live().getUint32(RUN.debug_exception, true); }
  get pc(): bigint { return this.live().getBigUint64(RUN.debug_pc, true); }
  get dr6(): bigint { return this.live().getBigUint64(RUN.debug_dr6, true); }
  get dr7(): bigint { return this.live().getBigUint64(RUN.debug_dr7, true); }
}

export class RunHeki extends RunPart implements KvmRunHekiConfigure, KvmRunHekiDenial {
  get reason(): number { return Number(this.live().getBigUint64(RUN.heki_reason, true) & 0xffff_ffffn); }
  get cr_pinned(): bigint { return this.live().getBigUint64(RUN.heki_value, true); }
  get cr_value(): bigint { return this.live().getBigUint64(RUN.heki_value, true); }
}

/** pinbox's CR filter exit, at the layout of docs/pinbox-abi.md (no kernel fills it today). */
export class RunCrFilter extends RunPart implements KvmRunCrFilter {
  get cr(): number { return this.live().getUint32(RUN.cr_filter_cr, true); }
  get access(): number { return this.live().getUint32(RUN.cr_filter_access, true); }
  get old_value(): bigint { return this.live().getBigUint64(RUN.cr_filter_old, true); }
  get new_value(): bigint { return this.live().getBigUint64(RUN.cr_filter_new, true); }
  get rip(): bigint { return this.live().getBigUint64(RUN.cr_filter_rip, true); }
  get action(): number { return this.live().getUint32(RUN.cr_filter_action, true); }
  set action(a: number) { this.live().setUint32(RUN.cr_filter_action, a >>> 0, true); }
  get value(): bigint { return this.live().getBigUint64(RUN.cr_filter_value, true); }
  set value(d: bigint) { this.live().setBigUint64(RUN.cr_filter_value, BigInt.asUintN(64, d), true); }
}

/** pinbox's register-intercept exit, at the layout of docs/pinbox-abi.md (no kernel fills it today). */
export class RunRegIntercept extends RunPart implements KvmRunRegIntercept {
  get intercept(): number { return this.live().getUint32(RUN.reg_intercept_intercept, true); }
  get msr(): number { return this.live().getUint32(RUN.reg_intercept_msr, true); }
  get old_value(): bigint { return this.live().getBigUint64(RUN.reg_intercept_old, true); }
  get new_value(): bigint { return this.live().getBigUint64(RUN.reg_intercept_new, true); }
  get old_limit(): number { return this.live().getUint16(RUN.reg_intercept_old_limit, true); }
  get new_limit(): number { return this.live().getUint16(RUN.reg_intercept_new_limit, true); }
  get rip(): bigint { return this.live().getBigUint64(RUN.reg_intercept_rip, true); }
  get action(): number { return this.live().getUint32(RUN.reg_intercept_action, true); }
  set action(a: number) { this.live().setUint32(RUN.reg_intercept_action, a >>> 0, true); }
  get value(): bigint { return this.live().getBigUint64(RUN.reg_intercept_value, true); }
  set value(d: bigint) { this.live().setBigUint64(RUN.reg_intercept_value, BigInt.asUintN(64, d), true); }
  get limit(): number { return this.live().getUint16(RUN.reg_intercept_limit, true); }
  set limit(l: number) { this.live().setUint16(RUN.reg_intercept_limit, l & 0xffff, true); }
}

export class RunFailEntry extends RunPart implements KvmRunFailEntry {
  /** Real KVM gives no detail beyond the hardware reason. */
  readonly detail = '';
  get hardware_entry_failure_reason(): bigint { return this.live().getBigUint64(RUN.fail_entry_reason, true); }
  get cpu(): number { return this.live().getUint32(RUN.fail_entry_cpu, true); }
}

/** KVM_EXIT_MEMORY_FAULT: the upstream fields; pinbox's own gva and qualification no kernel fills. */
export class RunMemoryFault extends RunPart implements KvmRunMemoryFault {
  readonly gva = 0n;
  readonly qualification = 0;
  get flags(): bigint { return this.live().getBigUint64(RUN.memory_fault_flags, true); }
  get gpa(): bigint { return this.live().getBigUint64(RUN.memory_fault_gpa, true); }
  get size(): bigint { return this.live().getBigUint64(RUN.memory_fault_size, true); }
}

export class RunMmio extends RunPart implements KvmRunMmio {
  get phys_addr(): bigint { return this.live().getBigUint64(RUN.mmio_phys_addr, true); }
  get len(): number { return Math.min(8, this.live().getUint32(RUN.mmio_len, true)); }
  get is_write(): boolean { return this.live().getUint8(RUN.mmio_is_write) !== 0; }
  get data(): Uint8Array { return new Uint8Array(this.live().buffer.slice(RUN.mmio_data, RUN.mmio_data + this.len)); }
  set data(d: Uint8Array) { new Uint8Array(this.live().buffer).set(d.subarray(0, 8), RUN.mmio_data); }
}

export class RunInternal extends RunPart implements KvmRunInternal {
  get suberror(): number { return this.live().getUint32(RUN.internal_suberror, true); }
  get data(): bigint[] { return this.u64s(RUN.internal_ndata, RUN.internal_data); }
}

export class RunSystemEvent extends RunPart implements KvmRunSystemEvent {
  get type(): number { return this.live().getUint32(RUN.system_event_type, true); }
  get data(): bigint[] { return this.u64s(RUN.system_event_ndata, RUN.system_event_data); }
}

/** kvm_run.s.regs: the 18 fields of kvm_regs as properties (enumerable, so copies and JSON see them). */
export class RunRegs extends RunPart {
  static {
    KVM_REGS_FIELDS.forEach((name, i) => {
      const at = RUN.s_regs + 8 * i;
      Object.defineProperty(RunRegs.prototype, name, {
        get(this: RunRegs) { return this.live().getBigUint64(at, true); },
        set(this: RunRegs, value: bigint) {
          if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
            throw new KvmError('EINVAL', 'kvm_run.s.regs', `${name} must be a u64 bigint, got ${String(value)}`);
          }
          this.live().setBigUint64(at, value, true);
        },
        enumerable: true,
      });
    });
  }
}

export class RunSyncRegs extends RunPart implements KvmSyncRegs {
  readonly regs = new RunRegs(this.v, this.fd) as unknown as Regs;
  get sregs(): Sregs { return decodeSregs(this.live(), RUN.s_sregs); }
  set sregs(s: Sregs) { encodeSregs(this.live(), RUN.s_sregs, s, 'kvm_run.s.sregs'); }
}
