/**
 * KVM_SET_VCPU_EVENTS, the exception part (KvmVcpu.injectException), checked as
 * kvm_vcpu_ioctl_x86_set_vcpu_events() checks it — an exception vector 0..31 that is not NMI's 2
 * (an NMI is an event of its own) — plus the shapes the struct's fields can hold. Both backends
 * check with this before anything changes.
 */
import { KvmError } from './api/errors.js';
import type { ExceptionEvent } from './api/memory-fault.js';
import { isU32 } from './u64.js';

const IOCTL = 'KVM_SET_VCPU_EVENTS';

export function checkExceptionEvent(event: ExceptionEvent): ExceptionEvent {
  if (typeof event !== 'object' || event === null) throw new KvmError('EINVAL', IOCTL, 'expected { vector, errorCode?, payload? }');
  const { vector, errorCode, payload } = event;
  if (!Number.isInteger(vector) || vector < 0 || vector > 31 || vector === 2) {
    throw new KvmError('EINVAL', IOCTL, `exception.nr ${String(vector)} is not an exception vector (0..31, not NMI)`);
  }
  if (errorCode !== undefined && !isU32(errorCode)) throw new KvmError('EINVAL', IOCTL, 'exception.error_code must be a u32');
  if (payload !== undefined && (typeof payload !== 'bigint' || payload < 0n || payload >= 1n << 64n)) {
    throw new KvmError('EINVAL', IOCTL, 'exception_payload must be a u64 bigint');
  }
  return { vector, ...(errorCode !== undefined && { errorCode }), ...(payload !== undefined && { payload }) };
}
