/**
 * KVM_CAP_X86_USER_SPACE_MSR and the choice between a user-space MSR exit and #GP
 * (kvm_msr_reason(), kvm_msr_user_space() in arch/x86/kvm/msrs.c); docs/msr-filter.md §2.4, §2.5.
 */
import {
  KVM_MSR_EXIT_REASON_FILTER,
  KVM_MSR_EXIT_REASON_INVAL,
  KVM_MSR_EXIT_REASON_UNKNOWN,
  KVM_MSR_EXIT_REASON_VALID_MASK,
} from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import { KVM_MSR_RET_FILTERED, KVM_MSR_RET_UNSUPPORTED } from './msrs/msr-vcpu.js';
import type { CompleteUserspaceIo } from './complete-userspace-io.js';
import type { VcpuArch } from './vcpu-arch.js';
import { hex } from '../../protocol/notation.js';

/**
 * The new user_space_msr_mask for KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR, args[0]):
 * any bit outside INVAL|UNKNOWN|FILTER is EINVAL and the caller keeps the old mask; 0 turns
 * every exit off. The value is assigned, never ORed.
 */
export function userSpaceMsrMask(arg0: bigint): number {
  if (arg0 & ~BigInt(KVM_MSR_EXIT_REASON_VALID_MASK)) {
    throw new KvmError('EINVAL', 'KVM_ENABLE_CAP(KVM_CAP_X86_USER_SPACE_MSR)', `args[0] ${hex(arg0)} has bits outside KVM_MSR_EXIT_REASON_VALID_MASK (0x7)`);
  }
  return Number(arg0);
}

/**
 * kvm_msr_reason(): the exit reason is decided by the failure code alone — UNSUPPORTED is
 * UNKNOWN, FILTERED is FILTER, anything else (1, or a negative errno) is INVAL. There is no
 * fallback: a filtered access is FILTER or nothing.
 */
export function kvmMsrReason(r: number): number {
  switch (r) {
    case KVM_MSR_RET_UNSUPPORTED:
      return KVM_MSR_EXIT_REASON_UNKNOWN;
    case KVM_MSR_RET_FILTERED:
      return KVM_MSR_EXIT_REASON_FILTER;
    default:
      return KVM_MSR_EXIT_REASON_INVAL;
  }
}

/**
 * kvm_msr_user_space(): whether failure `r` of an access to MSR `index` goes to user space — only
 * when the VM's user_space_msr_mask has the reason kvm_msr_reason() gives it. If it does, kvm_run
 * carries the exit (`error` 0, `data` the value a WRMSR wrote, 0 for a read) and `completion` runs
 * on the next KVM_RUN.
 */
export function kvmMsrUserSpace(
  v: VcpuArch, index: number, exitReason: 'KVM_EXIT_X86_RDMSR' | 'KVM_EXIT_X86_WRMSR', data: bigint,
  completion: CompleteUserspaceIo, r: number,
): boolean {
  const reason = kvmMsrReason(r);
  if ((v.vm.userSpaceMsrMask & reason) === 0) return false;
  const msr = v.run.msr;
  msr.error = 0;
  msr.reason = reason;
  msr.index = index;
  msr.data = data;
  return v.exitToUserSpace(exitReason, completion);
}
