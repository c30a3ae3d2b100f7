/**
 * Heki CR pinning, per VM: the KVM_HC_LOCK_CR_UPDATE hypercall (heki_lock_cr()), the check on
 * every guest CR0/CR4 write (heki_check_cr()) and the user-space exit masks of
 * KVM_CAP_HEKI_CONFIGURE / KVM_CAP_HEKI_DENIAL — Heki RFC v2 02/19 and 03/19, identical in
 * v3 2/5 and 3/5 but for the ABI numbers (docs/heki.md §1.4, §2, §3).
 */
import {
  HEKI_ABI_VERSION,
  KVM_EINVAL,
  KVM_HEKI_EXIT_REASON_CR0,
  KVM_HEKI_EXIT_REASON_CR4,
  KVM_HEKI_EXIT_REASON_VALID_MASK,
  KVM_LOCK_CR_UPDATE_VERSION,
  X86_CR0_WP,
} from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import type { HekiSnapshot } from './api/model.js';
import { toU64 } from './u64.js';
import { hex } from '../../protocol/notation.js';

/** What heki_lock_cr() returns, plus the CONFIGURE exit it may ask for. */
export interface HekiLockResult {
  /** The hypercall's return value, signed (1 for the version query, 0, or -KVM_EINVAL). */
  readonly ret: bigint;
  /** KVM_HEKI_EXIT_REASON_CR0/CR4 when user space asked to hear of this pin, else 0. */
  readonly configureExit: number;
  /** This call's pin (for CR4 after `&= host CR4`), for kvm_run.heki_configure.cr_pinned. */
  readonly crPinned: bigint;
}

const EINVAL = -BigInt(KVM_EINVAL);
const noExit = (ret: bigint): HekiLockResult => ({ ret, configureExit: 0, crPinned: 0n });

export class HekiState {
  /** kvm->heki_pinned_cr0 / cr4: ORed by the guest, never cleared by it. */
  pinnedCr0 = 0n;
  pinnedCr4 = 0n;
  /** kvm->heki_configure_exit_reason / heki_denial_exit_reason */
  configureExitReason = 0;
  denialExitReason = 0;

  constructor(
    /** read_cr0() on the host */
    readonly hostCr0: bigint,
    /** __read_cr4() on the host */
    readonly hostCr4: bigint,
    /** the host kernel's cr4_pinned_mask */
    readonly cr4PinnableMask: bigint,
  ) {}

  /**
   * heki_lock_cr(cr = a0, pin = a1, flags = a2). The guest's current CR value is never
   * consulted. MODEL DECISION (docs/heki.md §1.4, §9): the CR0 rule is the code's — the pin must
   * contain WP and be a subset of the host CR0 (so WP|PG is accepted) — not the commit
   * message's "subset of X86_CR0_WP".
   */
  lockCr(cr: bigint, pin: bigint, flags: bigint): HekiLockResult {
    if (flags !== 0n) {
      if (flags === BigInt(KVM_LOCK_CR_UPDATE_VERSION) && cr === 0n && pin === 0n) return noExit(BigInt(HEKI_ABI_VERSION));
      return noExit(EINVAL);
    }
    if (pin === 0n) return noExit(EINVAL);
    if (cr === 0n) {
      if ((pin & X86_CR0_WP) === 0n) return noExit(EINVAL);
      if ((pin & this.hostCr0) !== pin) return noExit(EINVAL);
      this.pinnedCr0 |= pin;
      return { ret: 0n, configureExit: this.configureExitReason & KVM_HEKI_EXIT_REASON_CR0, crPinned: pin };
    }
    if (cr === 4n) {
      // "Checks for irrelevant bits", then "Ignores bits not present in host".
      if ((pin & this.cr4PinnableMask) !== pin) return noExit(EINVAL);
      const kept = pin & this.hostCr4;
      this.pinnedCr4 |= kept;
      return { ret: 0n, configureExit: this.configureExitReason & KVM_HEKI_EXIT_REASON_CR4, crPinned: kept };
    }
    return noExit(EINVAL);
  }

  /** heki_check_cr(): a write to CR0 or CR4 that clears any pinned bit is denied. */
  deniesWrite(cr: number, value: bigint): boolean {
    if (cr === 0) return (value & this.pinnedCr0) !== this.pinnedCr0;
    if (cr === 4) return (value & this.pinnedCr4) !== this.pinnedCr4;
    return false;
  }

  /** KVM_ENABLE_CAP(KVM_CAP_HEKI_CONFIGURE or _DENIAL): validated, then assigned (not ORed). */
  static exitMask(arg0: bigint, ioctl: string): number {
    if (arg0 & ~BigInt(KVM_HEKI_EXIT_REASON_VALID_MASK)) {
      throw new KvmError('EINVAL', ioctl, `args[0] ${hex(arg0)} has bits outside KVM_HEKI_EXIT_REASON_VALID_MASK (0x3)`);
    }
    return Number(arg0);
  }

  /**
   * What a VM reset asked for by user space does. Heki itself never clears pins (no reboot,
   * kexec or hibernation story, docs/heki.md §1.4); pinbox follows Paolo Bonzini's position that
   * user space resets pinning on reboot while INIT keeps it (docs/heki.md §5.4, §7.5). The exit
   * masks are VMM configuration and stay.
   */
  resetPins(): void {
    this.pinnedCr0 = 0n;
    this.pinnedCr4 = 0n;
  }

  snapshot(): HekiSnapshot {
    return {
      pinnedCr0: this.pinnedCr0,
      pinnedCr4: this.pinnedCr4,
      configureExitReason: this.configureExitReason,
      denialExitReason: this.denialExitReason,
    };
  }

  /** Restores a snapshot; every field is checked first, so a bad one changes nothing. */
  restore(s: HekiSnapshot, ioctl: string): void {
    if (typeof s !== 'object' || s === null) throw new KvmError('EINVAL', ioctl, 'the Heki state must be an object');
    const cr0 = toU64(s.pinnedCr0);
    const cr4 = toU64(s.pinnedCr4);
    if (cr0 === undefined || typeof s.pinnedCr0 !== 'bigint') throw new KvmError('EINVAL', ioctl, 'pinnedCr0 must be a u64 bigint');
    if (cr4 === undefined || typeof s.pinnedCr4 !== 'bigint') throw new KvmError('EINVAL', ioctl, 'pinnedCr4 must be a u64 bigint');
    const configure = HekiState.exitMask(exitReasonArg(s.configureExitReason, 'configureExitReason', ioctl), ioctl);
    const denial = HekiState.exitMask(exitReasonArg(s.denialExitReason, 'denialExitReason', ioctl), ioctl);
    this.pinnedCr0 = cr0;
    this.pinnedCr4 = cr4;
    this.configureExitReason = configure;
    this.denialExitReason = denial;
  }
}

function exitReasonArg(value: unknown, name: string, ioctl: string): bigint {
  const v = toU64(value);
  if (v === undefined) throw new KvmError('EINVAL', ioctl, `${name} must be a non-negative integer`);
  return v;
}
