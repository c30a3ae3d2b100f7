/**
 * The guest side of Heki CR pinning (docs/heki.md §4): the version query, one lock call, and
 * the whole lock-down a Heki guest kernel performs at the end of its boot — `kvm_init_heki()`
 * then `kvm_lock_crs()` (RFC v2 04/19, v3 4/5).
 */
import {
  type Exit, type Fault, HEKI_CR4_PINNABLE_MASK_V2, HEKI_CR4_PINNABLE_MASK_V3, KVM_HC_LOCK_CR_UPDATE,
  KVM_LOCK_CR_UPDATE_VERSION, X86_CR0_WP,
} from '../protocol/index.js';
import { type U64, cplOption, oneOfArgument, optionsArgument, u64Argument } from './arguments.js';
import { hex } from '../protocol/notation.js';
import { GuestFault, InvalidArgumentError } from './errors.js';
import { describeFault } from '../protocol/notation.js';
import type { GuestOperations } from './guest-operations.js';
import { type KvmErrno, asSigned, kvmErrno } from './hypercall-return.js';
import type { HypercallOptions } from './operations.js';

/** Options of every Heki call: the privilege level and the hypercall instruction. */
export type HekiCallOptions = HypercallOptions;

/** What the version query (`KVM_HC_LOCK_CR_UPDATE(0, 0, KVM_LOCK_CR_UPDATE_VERSION)`) returned. */
export interface HekiVersion {
  /** True when the version is at least 1: the guest kernel's `if (err < 1) return;` (docs/heki.md §4.2). */
  supported: boolean;
  /** RAX read as the guest kernel's signed `long`: 1 on a Heki v2/v3 host, -1000 (-KVM_ENOSYS) without Heki. */
  version: bigint;
  /** RAX as the u64 it is. */
  ret: bigint;
  /** The KVM_E* name when `version` is a negated KVM error code. */
  errno: KvmErrno | undefined;
  exits: Exit[];
}

/** What one `KVM_HC_LOCK_CR_UPDATE(cr, pin, 0)` returned: 0 on success (docs/heki.md §1.2). */
export type LockCrResult =
  | { ok: true; ret: bigint; exits: Exit[] }
  | {
    ok: false;
    /** RAX as the u64 it is (read it signed with `asSigned()`). */
    ret: bigint;
    /** The KVM_E* name, or undefined for a non-zero value that is not a negated KVM error code. */
    errno: KvmErrno | undefined;
    exits: Exit[];
  };

/** One lock call of a lock-down, with the pin it asked for. */
export type HekiLockCall = { cr: 0 | 4; pin: bigint } & LockCrResult;

export interface HekiLockDownOptions extends HekiCallOptions {
  /**
   * The guest kernel's `cr4_pinned_mask`, which CR4 is ANDed with: `v2` (SMEP|SMAP|UMIP|FSGSBASE|CET,
   * the default: a ≈6.6 guest), `v3` (also FRED: a 6.9+ guest) or a mask of your own.
   */
  cr4PinnableMask?: 'v2' | 'v3' | bigint;
}

export interface HekiLockDownReport {
  /** Both pins were accepted: the guest kernel would log "Control registers locked". */
  locked: boolean;
  /** The version query's answer; absent only when the query itself faulted. */
  version: HekiVersion | undefined;
  /** The lock calls made, in order: CR0 first, then CR4 (which is not attempted if CR0 failed). */
  calls: HekiLockCall[];
  /** The guest's CR4 as read before pinning it. */
  cr4: bigint | undefined;
  /** Where and why the lock-down stopped short; absent when `locked`. */
  stopped: { at: 'version' | 'cr0' | 'cr4'; reason: string; fault?: Fault } | undefined;
}

const CALL_OPTIONS = ['cpl', 'insn'] as const;
const LOCK_DOWN_OPTIONS = ['cpl', 'insn', 'cr4PinnableMask'] as const;
const MASKS = { v2: HEKI_CR4_PINNABLE_MASK_V2, v3: HEKI_CR4_PINNABLE_MASK_V3 } as const;

/** Heki helpers of one guest: `guest.heki`. */
export class Heki {
  /** @internal */
  constructor(private readonly guest: GuestOperations) {}

  /** The version query of `kvm_init_heki()` (docs/heki.md §4.2). */
  async version(options?: HekiCallOptions): Promise<HekiVersion> {
    const { ret, exits } = await this.lockCrUpdate('heki.version', 0, 0n, KVM_LOCK_CR_UPDATE_VERSION, options);
    const version = asSigned(ret);
    return { supported: version >= 1n, version, ret, errno: kvmErrno(ret), exits };
  }

  /** Pins the bits `pin` of CR`cr` for the whole VM: `KVM_HC_LOCK_CR_UPDATE(cr, pin, 0)` (docs/heki.md §1.4). */
  async lockCr(cr: 0 | 4, pin: U64, options?: HekiCallOptions): Promise<LockCrResult> {
    const { ret, exits } = await this.lockCrUpdate('heki.lockCr', cr, pin, 0, options);
    return ret === 0n ? { ok: true, ret, exits } : { ok: false, ret, errno: kvmErrno(ret), exits };
  }

  /**
   * Does what a Heki guest kernel does (docs/heki.md §4.2–4.3), stopping at the first failure
   * and reporting it: the version query (below 1, including -ENOSYS, -EINVAL and -EPERM,
   * means no Heki: stop); pin CR0.WP (non-zero: stop); read CR4 with a real MOV from CR4; pin
   * `CR4 & cr4PinnableMask` — even when that is 0, which the host refuses with -EINVAL, as
   * the kernel's call would be. A guest fault on the way stops the lock-down and is reported;
   * host errors reject.
   */
  async lockDown(options?: HekiLockDownOptions): Promise<HekiLockDownReport> {
    const checked = optionsArgument<HekiLockDownOptions>('heki.lockDown', options, LOCK_DOWN_OPTIONS);
    const mask = cr4Mask(checked?.cr4PinnableMask);
    const callOptions: HekiCallOptions = { cpl: checked?.cpl, insn: checked?.insn };
    const report: HekiLockDownReport = { locked: false, version: undefined, calls: [], cr4: undefined, stopped: undefined };
    const stop = (at: 'version' | 'cr0' | 'cr4', reason: string, fault?: Fault): HekiLockDownReport => {
      report.stopped = fault ? { at, reason, fault } : { at, reason };
      return report;
    };

    try {
      const version = (report.version = await this.version(callOptions));
      if (!version.supported) {
        const errno = version.errno ? ` (-KVM_${version.errno})` : '';
        return stop('version', `KVM_HC_LOCK_CR_UPDATE version query returned ${version.version}${errno}: the host does not support Heki CR pinning`);
      }
    } catch (e) {
      if (e instanceof GuestFault) return stop('version', e.message, e.fault);
      throw e;
    }

    if (!(await this.pinStep(report, 0, X86_CR0_WP, callOptions))) return report;

    const cr4 = await this.guest.readCrSafe(4, { cpl: callOptions.cpl });
    if (!cr4.ok) return stop('cr4', `reading CR4 raised ${describeFault(cr4.fault)}`, cr4.fault);
    report.cr4 = cr4.value;

    if (!(await this.pinStep(report, 4, cr4.value & mask, callOptions))) return report;
    report.locked = true;
    return report;
  }

  /** One lock call of lockDown, recorded in the report; a failure or fault is recorded as the stop. */
  private async pinStep(report: HekiLockDownReport, cr: 0 | 4, pin: bigint, options: HekiCallOptions): Promise<boolean> {
    const at = cr === 0 ? 'cr0' : 'cr4';
    let result: LockCrResult;
    try {
      result = await this.lockCr(cr, pin, options);
    } catch (e) {
      if (!(e instanceof GuestFault)) throw e;
      report.stopped = { at, reason: e.message, fault: e.fault };
      return false;
    }
    report.calls.push({ cr, pin, ...result });
    if (!result.ok) {
      const errno = result.errno ? ` (-KVM_${result.errno})` : '';
      report.stopped = { at, reason: `pinning CR${cr} with ${hex(pin)} returned ${asSigned(result.ret)}${errno}` };
    }
    return result.ok;
  }

  /** The hypercall itself; a fault rejects with a GuestFault naming KVM_HC_LOCK_CR_UPDATE. */
  private async lockCrUpdate(op: string, a0: U64, a1: U64, a2: U64, options: HekiCallOptions | undefined): Promise<{ ret: bigint; exits: Exit[] }> {
    const checked = optionsArgument<HekiCallOptions>(op, options, CALL_OPTIONS) ?? {};
    const call = { cpl: cplOption(op, checked.cpl), insn: checked.insn };
    const cr = u64Argument(op, 'cr', a0);
    const pin = u64Argument(op, 'pin', a1);
    const r = await this.guest.hypercallSafe(KVM_HC_LOCK_CR_UPDATE, cr, pin, a2, call);
    if (!r.ok) {
      throw new GuestFault('hypercall', `KVM_HC_LOCK_CR_UPDATE(${cr}, ${hex(pin)}, ${a2})`, r.fault, r.exits, r.exitsDropped);
    }
    return { ret: r.value, exits: r.exits };
  }
}

function cr4Mask(v: unknown): bigint {
  if (v === undefined) return MASKS.v2;
  if (typeof v === 'bigint') return u64Argument('heki.lockDown', 'options.cr4PinnableMask', v) as bigint;
  if (typeof v !== 'string') throw new InvalidArgumentError('heki.lockDown', 'options.cr4PinnableMask', 'must be "v2", "v3" or a bigint mask');
  return MASKS[oneOfArgument('heki.lockDown', 'options.cr4PinnableMask', v, ['v2', 'v3'] as const)];
}
