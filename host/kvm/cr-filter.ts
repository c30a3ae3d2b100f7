/**
 * The CR filter, pinbox's extension of KVM (docs/cr-filter.md): the uAPI Sean Christopherson
 * sketched on Heki v3 ("userspace just needs [the] ability to intercept CR writes and inject
 * #GPs … the uAPI could look very similar to MSR filtering", ZjTuqV-AxQQRWwUW@google.com,
 * 3 May 2024), shaped as KVM_X86_SET_MSR_FILTER is:
 *   - PINBOX_SET_CR_FILTER builds the new filter aside and swaps it in whole: a refused one
 *     leaves the old in force, and the new one applies to every vCPU from its next CR write
 *     (kvm_vm_ioctl_set_msr_filter());
 *   - a guest write — MOV to CR, LMSW or CLTS — that would change a bit of the register's mask
 *     exits to user space (KVM_EXIT_PINBOX_CR_FILTER), which answers allow, deny (#GP(0)) or a
 *     value to load instead; the next KVM_RUN completes the write with the answer, whatever
 *     the filter says by then (complete_fast_msr_access() does not look at the filter again).
 */
import { PINBOX_CR_FILTER_VALID_FLAGS } from '../../protocol/abi.js';
import { hex } from '../../protocol/notation.js';
import { KvmError } from './api/errors.js';
import type { CrFilterSpec } from './api/cr-hardening.js';
import { toU64 } from './u64.js';

const IOCTL = 'PINBOX_SET_CR_FILTER';

export class CrFilter {
  private constructor(
    readonly cr0Mask: bigint,
    readonly cr4Mask: bigint,
  ) {}

  /** Checks a whole `struct pinbox_cr_filter` first, then makes the filter (or null: nothing masked). */
  static build(spec: CrFilterSpec): CrFilter | null {
    if (typeof spec !== 'object' || spec === null) throw new KvmError('EINVAL', IOCTL, 'the filter must be an object');
    const { flags } = spec;
    if (!Number.isInteger(flags) || flags < 0 || flags > 0xffff_ffff) throw new KvmError('EINVAL', IOCTL, `flags must be a u32, got ${String(flags)}`);
    if ((flags & ~PINBOX_CR_FILTER_VALID_FLAGS) !== 0) throw new KvmError('EINVAL', IOCTL, `flags ${hex(flags)} has bits no flag defines`);
    const cr0 = mask(spec.cr0Mask, 'cr0Mask');
    const cr4 = mask(spec.cr4Mask, 'cr4Mask');
    const xcr0 = spec.xcr0Mask === undefined ? 0n : mask(spec.xcr0Mask, 'xcr0Mask');
    // MODEL DECISION (docs/cr-filter.md): XCR0 has a field in the struct, but the modelled core
    // has no XSETBV, so no XCR0 write could ever be filtered: a mask there is refused, not ignored.
    if (xcr0 !== 0n) throw new KvmError('EINVAL', IOCTL, 'xcr0Mask must be 0: the modelled CPU has no XSETBV, so XCR0 cannot be filtered');
    return cr0 === 0n && cr4 === 0n ? null : new CrFilter(cr0, cr4);
  }

  /** Whether writing `next` over `current` changes a bit this filter masks for CR`cr`. */
  catches(cr: 0 | 4, current: bigint, next: bigint): boolean {
    const m = cr === 0 ? this.cr0Mask : this.cr4Mask;
    return ((current ^ next) & m) !== 0n;
  }

  spec(): CrFilterSpec {
    return { flags: 0, cr0Mask: this.cr0Mask, cr4Mask: this.cr4Mask };
  }
}

function mask(value: unknown, name: string): bigint {
  const v = toU64(value);
  if (v === undefined || typeof value !== 'bigint') throw new KvmError('EINVAL', IOCTL, `${name} must be a u64 bigint, got ${String(value)}`);
  return v;
}
