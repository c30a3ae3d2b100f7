/**
 * KVM_X86_SET_MSR_FILTER from the model's MsrFilterSpec: the copy-in step lays out
 * `struct kvm_msr_filter` with its 16 ranges and their bitmaps in one scratch mapping; every
 * other check (flags, DEFAULT_DENY with no range, bitmap size, the atomic swap) is the
 * kernel's, so its answer is the real one. Values a __u32 cannot hold, or more than 16 ranges
 * (which the C structure cannot express), are EINVAL here, as in the model (msr-filter.ts).
 */
import { KVM_MSR_FILTER_MAX_BITMAP_SIZE, KVM_MSR_FILTER_MAX_RANGES } from '../../../protocol/abi.js';
import { readShape } from '../msr-filter.js';
import { type MsrFilterSpec } from '../api/msr-filter.js';
import type { KvmFd } from './fd.js';
import { Mapping } from './mapping.js';
import { KVM_X86_SET_MSR_FILTER, MSR_FILTER, MSR_FILTER_RANGE, SIZEOF_MSR_FILTER, SIZEOF_MSR_FILTER_RANGE } from './uapi.js';

/** Room for every range's largest bitmap after the structure. */
const SCRATCH = SIZEOF_MSR_FILTER + KVM_MSR_FILTER_MAX_RANGES * KVM_MSR_FILTER_MAX_BITMAP_SIZE;

/**
 * Installs `spec` on the VM. A range's bitmap is copied into a buffer of the size the kernel
 * reads (BITS_TO_LONGS(nmsrs) × 8 bytes), zero-padded: bits past a short array deny, as the
 * model decides (docs/msr-filter.md §8.4). A range with nmsrs > 0 and no Uint8Array bitmap is
 * passed a NULL bitmap, so the kernel answers EFAULT at that range's turn, as the model does.
 */
export function setMsrFilter(vm: KvmFd, spec: MsrFilterSpec): void {
  // The copy-in step is the model's (host/kvm/msr-filter.ts readShape): the same EINVALs.
  const ranges = readShape(spec);
  vm.check('KVM_X86_SET_MSR_FILTER');
  const scratch = Mapping.anonymous(vm.libc, SCRATCH, 'KVM_X86_SET_MSR_FILTER');
  try {
    const v = scratch.view;
    v.setUint32(MSR_FILTER.flags, spec.flags, true);
    let bitmapAt = SIZEOF_MSR_FILTER;
    ranges.forEach((r, i) => {
      const at = MSR_FILTER.ranges + i * SIZEOF_MSR_FILTER_RANGE;
      v.setUint32(at + MSR_FILTER_RANGE.flags, r.flags, true);
      v.setUint32(at + MSR_FILTER_RANGE.nmsrs, r.nmsrs, true);
      v.setUint32(at + MSR_FILTER_RANGE.base, r.base, true);
      const size = Math.ceil(r.nmsrs / 64) * 8;
      // A bitmap larger than the kernel takes is refused (EINVAL) before it is read: pass none.
      if (!(r.bitmap instanceof Uint8Array) || size > KVM_MSR_FILTER_MAX_BITMAP_SIZE || size === 0) return;
      scratch.bytes.set(r.bitmap.subarray(0, size), bitmapAt);
      v.setBigUint64(at + MSR_FILTER_RANGE.bitmap, scratch.address + BigInt(bitmapAt), true);
      bitmapAt += KVM_MSR_FILTER_MAX_BITMAP_SIZE;
    });
    vm.ioctlPointer('KVM_X86_SET_MSR_FILTER', KVM_X86_SET_MSR_FILTER, scratch.bytes);
  } finally {
    // KVM copied every bitmap (memdup_user): the scratch memory goes now.
    scratch.release();
  }
}
