/**
 * KVM_X86_SET_MSR_FILTER and kvm_msr_allowed(), as in arch/x86/kvm/msrs.c
 * (kvm_vm_ioctl_set_msr_filter, kvm_add_msr_filter, kvm_msr_allowed); docs/msr-filter.md §2.1–2.3.
 */
import {
  KVM_MSR_FILTER_DEFAULT_DENY,
  KVM_MSR_FILTER_MAX_BITMAP_SIZE,
  KVM_MSR_FILTER_MAX_RANGES,
  KVM_MSR_FILTER_RANGE_VALID_MASK,
  KVM_MSR_FILTER_VALID_MASK,
  X2APIC_MSR_FIRST,
  X2APIC_MSR_LAST,
} from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import type { MsrFilterRange, MsrFilterSpec } from './api/msr-filter.js';
import { isU32 } from './u64.js';
import { hex } from '../../protocol/notation.js';

/** The access type a range flag covers: KVM_MSR_FILTER_READ or KVM_MSR_FILTER_WRITE. */
export type MsrAccessType = 1 | 2;

interface InstalledRange {
  readonly flags: number;
  readonly start: number;
  /** base + nmsrs computed in 32 bits, as `u32 end` is in kvm_msr_allowed(). */
  readonly end: number;
  readonly bitmap: Uint8Array;
}

const IOCTL = 'KVM_X86_SET_MSR_FILTER';

/**
 * An installed filter (`struct kvm_x86_msr_filter`). Built aside by `MsrFilter.build` and
 * only then swapped in by the VM, so a failed call leaves the previous filter in force
 * (the atomic install of commit b318e8decf6b, docs/msr-filter.md §2.2 step 6).
 */
export class MsrFilter {
  private constructor(
    readonly defaultAllow: boolean,
    private readonly ranges: readonly InstalledRange[],
  ) {}

  /** Number of non-empty ranges kept, in their original order. */
  get count(): number {
    return this.ranges.length;
  }

  /**
   * Validates a filter in the order kvm_vm_ioctl_set_msr_filter() does and builds it:
   * filter flags, then "DENY with no non-empty range", then each range in index order
   * (kvm_add_msr_filter(): skip nmsrs 0, unknown flags, flags 0, bitmap size, copy).
   * The first error wins and nothing is installed.
   */
  static build(spec: MsrFilterSpec): MsrFilter {
    const ranges = readShape(spec);
    if (spec.flags & ~KVM_MSR_FILTER_VALID_MASK) {
      throw new KvmError('EINVAL', IOCTL, `unknown filter flags ${hex(spec.flags)}`);
    }
    // "empty" looks only at nmsrs, never at the range flags (docs/msr-filter.md §2.2 step 3).
    const empty = ranges.every((r) => r.nmsrs === 0);
    const defaultAllow = (spec.flags & KVM_MSR_FILTER_DEFAULT_DENY) === 0;
    if (empty && !defaultAllow) {
      throw new KvmError('EINVAL', IOCTL, 'KVM_MSR_FILTER_DEFAULT_DENY needs at least one range with nmsrs > 0');
    }
    const installed: InstalledRange[] = [];
    ranges.forEach((range, i) => addRange(installed, range, i));
    return new MsrFilter(defaultAllow, installed);
  }

  /**
   * The filter's verdict for an index that is not an x2APIC MSR: the first range whose
   * [base, base + nmsrs) holds the index *and* whose flags cover this access type decides
   * by its bit; with none, the default action does.
   */
  allows(index: number, type: MsrAccessType): boolean {
    const ranges = this.ranges;
    for (let i = 0; i < ranges.length; i++) {
      const r = ranges[i]!;
      if (index >= r.start && index < r.end && (r.flags & type) !== 0) {
        const bit = index - r.start;
        return ((r.bitmap[bit >>> 3]! >>> (bit & 7)) & 1) === 1;
      }
    }
    return this.defaultAllow;
  }
}

/** kvm_msr_allowed(): x2APIC MSRs are never filtered; no filter allows everything. */
export function kvmMsrAllowed(filter: MsrFilter | null, index: number, type: MsrAccessType): boolean {
  if (index >= X2APIC_MSR_FIRST && index <= X2APIC_MSR_LAST) return true;
  return filter === null || filter.allows(index, type);
}

/**
 * The copy-in step: the C structure cannot hold anything but __u32 fields and exactly 16
 * slots, so a JavaScript value that is not of that shape is rejected with EINVAL before any
 * other check. MODEL DECISION (docs/msr-filter.md §8.3): more than 16 ranges is EINVAL; real KVM reads a
 * fixed `ranges[16]` and could never see a 17th.
 */
export function readShape(spec: MsrFilterSpec): MsrFilterRange[] {
  if (typeof spec !== 'object' || spec === null) throw new KvmError('EINVAL', IOCTL, 'the filter must be an object');
  if (!isU32(spec.flags)) throw new KvmError('EINVAL', IOCTL, `filter flags must be a u32, got ${String(spec.flags)}`);
  const ranges = spec.ranges ?? [];
  if (!Array.isArray(ranges)) throw new KvmError('EINVAL', IOCTL, 'ranges must be an array');
  if (ranges.length > KVM_MSR_FILTER_MAX_RANGES) {
    throw new KvmError('EINVAL', IOCTL, `${ranges.length} ranges given; KVM_MSR_FILTER_MAX_RANGES is ${KVM_MSR_FILTER_MAX_RANGES}`);
  }
  const out: MsrFilterRange[] = [];
  for (let i = 0; i < ranges.length; i++) {
    const r: unknown = ranges[i];
    if (typeof r !== 'object' || r === null) throw new KvmError('EINVAL', IOCTL, `range ${i} must be an object`);
    const range = r as MsrFilterRange;
    for (const field of ['flags', 'base', 'nmsrs'] as const) {
      if (!isU32(range[field])) {
        throw new KvmError('EINVAL', IOCTL, `range ${i}: ${field} must be a u32, got ${String(range[field])}`);
      }
    }
    out.push(range);
  }
  return out;
}

/** kvm_add_msr_filter() */
function addRange(installed: InstalledRange[], range: MsrFilterRange, i: number): void {
  // Checked before the flags (docs/msr-filter.md §2.3 step 1): an empty slot may hold anything.
  if (range.nmsrs === 0) return;
  if (range.flags & ~KVM_MSR_FILTER_RANGE_VALID_MASK) {
    throw new KvmError('EINVAL', IOCTL, `range ${i} has unknown flags ${hex(range.flags)}`);
  }
  if (range.flags === 0) throw new KvmError('EINVAL', IOCTL, `range ${i} has flags 0`);
  // BITS_TO_LONGS(nmsrs) * sizeof(long)
  const bitmapSize = Math.ceil(range.nmsrs / 64) * 8;
  if (bitmapSize > KVM_MSR_FILTER_MAX_BITMAP_SIZE) {
    throw new KvmError('EINVAL', IOCTL, `range ${i}: nmsrs ${range.nmsrs} needs a ${bitmapSize}-byte bitmap (max ${KVM_MSR_FILTER_MAX_BITMAP_SIZE})`);
  }
  // memdup_user(): a bitmap that cannot be read is EFAULT, at this range's turn.
  if (!(range.bitmap instanceof Uint8Array)) {
    throw new KvmError('EFAULT', IOCTL, `range ${i}: bitmap is not a Uint8Array`);
  }
  // KVM copies bitmapSize bytes into its own buffer: later changes by the caller do not
  // reach the installed filter. MODEL DECISION (docs/msr-filter.md §8.4): a shorter array is accepted
  // (QEMU, Hyperlight and the selftest pass 1- or 8-byte buffers); bytes past its end read
  // as 0, i.e. deny, where real KVM would read whatever follows the buffer.
  const bitmap = new Uint8Array(bitmapSize);
  bitmap.set(range.bitmap.subarray(0, bitmapSize));
  installed.push({ flags: range.flags, start: range.base, end: (range.base + range.nmsrs) >>> 0, bitmap });
}
