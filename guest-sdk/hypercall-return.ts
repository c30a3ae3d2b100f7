/**
 * Reading a hypercall's return value. KVM returns in RAX either a result or a negated KVM_E*
 * code (include/uapi/linux/kvm_para.h); the protocol carries RAX as the u64 it is, so
 * -KVM_EINVAL arrives as 0xffffffffffffffea (PROTOCOL.md §4.2).
 */
import { KVM_E2BIG, KVM_EFAULT, KVM_EINVAL, KVM_ENOSYS, KVM_EOPNOTSUPP, KVM_EPERM } from '../protocol/index.js';

/** The names of the KVM_E* codes a hypercall can return, without the `KVM_` prefix. */
export type KvmErrno = 'ENOSYS' | 'EFAULT' | 'EINVAL' | 'E2BIG' | 'EPERM' | 'EOPNOTSUPP';

const BY_NEGATED_VALUE: ReadonlyMap<bigint, KvmErrno> = new Map([
  [-BigInt(KVM_ENOSYS), 'ENOSYS'],
  [-BigInt(KVM_EFAULT), 'EFAULT'],
  [-BigInt(KVM_EINVAL), 'EINVAL'],
  [-BigInt(KVM_E2BIG), 'E2BIG'],
  [-BigInt(KVM_EPERM), 'EPERM'],
  [-BigInt(KVM_EOPNOTSUPP), 'EOPNOTSUPP'],
]);

/** RAX read as the signed 64-bit value the guest kernel sees in its `long`: 2^64-22 → -22n. */
export function asSigned(ret: bigint): bigint {
  return BigInt.asIntN(64, ret);
}

/**
 * The KVM_E* name of a hypercall return (`-KVM_EINVAL` → 'EINVAL'), or undefined when the
 * value is not a negated KVM error code (a result, or an error this SDK does not know).
 */
export function kvmErrno(ret: bigint): KvmErrno | undefined {
  return BY_NEGATED_VALUE.get(asSigned(ret));
}
