/**
 * KVM_CHECK_EXTENSION (kvm_vm_ioctl_check_extension() in arch/x86/kvm/x86.c, for the
 * capabilities pinbox models) and the argument handling shared by the KVM_ENABLE_CAP ioctls.
 */
import * as abi from '../../protocol/abi.js';
import type { HekiAbiProfile } from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import { SUPPORTED_REG_INTERCEPTS } from './reg-intercepts.js';
import { toU64 } from './u64.js';

/** MODEL DECISION: pinbox creates at most 64 vCPUs per VM (and reports 64 as KVM_MAX_VCPUS). */
export const PINBOX_MAX_VCPUS = 64;
/** vCPU ids are below this (kvm->arch.max_vcpu_ids); a pinbox model decision. */
export const PINBOX_MAX_VCPU_IDS = 4096;

/**
 * The KVM_CHECK_EXTENSION answer for `cap`; 0 for anything not modelled. `maxVcpus` is the
 * VM's limit for the VM ioctl, PINBOX_MAX_VCPUS for the system one. The Heki caps answer
 * KVM_HEKI_EXIT_REASON_VALID_MASK under the profile's numbers only (they collide with
 * mainline caps and with each other across profiles).
 */
export function kvmCheckExtension(cap: number, profile: HekiAbiProfile, maxVcpus = PINBOX_MAX_VCPUS): number {
  switch (cap) {
    case abi.KVM_CAP_X86_USER_SPACE_MSR:
    case abi.KVM_CAP_X86_MSR_FILTER:
    case abi.KVM_CAP_IMMEDIATE_EXIT:
    case abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
    case abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT:
      return 1;
    case abi.KVM_CAP_SYNC_REGS:
      // MODEL DECISION (sync-regs.ts): REGS|SREGS; x86 KVM also syncs vCPU events.
      return abi.KVM_SYNC_X86_REGS | abi.KVM_SYNC_X86_SREGS;
    case abi.KVM_CAP_NR_VCPUS:
    case abi.KVM_CAP_MAX_VCPUS:
      return maxVcpus;
    case profile.KVM_CAP_HEKI_CONFIGURE:
    case profile.KVM_CAP_HEKI_DENIAL:
      return abi.KVM_HEKI_EXIT_REASON_VALID_MASK;
    case abi.KVM_CAP_MEMORY_FAULT_INFO:
    case abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY:
    case abi.KVM_CAP_PINBOX_MBEC:
      return 1;
    case abi.KVM_CAP_MEMORY_ATTRIBUTES:
      // pinbox's out-of-tree attributes (no private memory); the VM adds NUX once MBEC is on (vm.ts).
      return Number(abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX);
    case abi.KVM_CAP_PINBOX_CR_FILTER:
      return abi.PINBOX_CR_FILTER_REGISTERS;
    case abi.KVM_CAP_PINBOX_REG_INTERCEPTS:
      return Number(SUPPORTED_REG_INTERCEPTS);
    default:
      return 0;
  }
}

/**
 * `struct kvm_enable_cap` as given: flags must be 0 (EINVAL otherwise, checked first as in
 * kvm_vm_ioctl_enable_cap()), and args are up to four __u64s, missing ones 0.
 */
export function enableCapArgs(ioctl: string, args: readonly (bigint | number)[], flags: number): bigint[] {
  if (flags !== 0) throw new KvmError('EINVAL', ioctl, `flags must be 0, got ${String(flags)}`);
  if (!Array.isArray(args) || args.length > 4) throw new KvmError('EINVAL', ioctl, 'args must be an array of at most 4 u64 values');
  const out = [0n, 0n, 0n, 0n];
  args.forEach((a, i) => {
    const v = toU64(a);
    if (v === undefined) throw new KvmError('EINVAL', ioctl, `args[${i}] must be a u64, got ${String(a)}`);
    out[i] = v;
  });
  return out;
}
