/**
 * The arguments of pinbox's two KVM extensions for CR hardening (protocol/abi/pinbox-ext.ts;
 * docs/cr-filter.md, docs/register-intercepts.md), as either backend takes them. A backend that
 * lacks an extension has no method for it, and KVM_CHECK_EXTENSION answers 0 for its capability.
 */

/**
 * `struct pinbox_cr_filter` (PINBOX_SET_CR_FILTER on the VM fd): the bits of CR0 and CR4 whose
 * change by a guest write — MOV to CR, LMSW or CLTS — exits to user space first
 * (KVM_EXIT_PINBOX_CR_FILTER). A filter with both masks 0 filters nothing.
 */
export interface CrFilterSpec {
  /** No flag is defined: must be 0. */
  flags: number;
  cr0Mask: bigint;
  cr4Mask: bigint;
  /** XCR0 (XSETBV): the modelled core has no XSETBV, so only 0 is accepted. */
  xcr0Mask?: bigint;
}

/**
 * `struct pinbox_reg_intercepts` (PINBOX_SET_REG_INTERCEPTS / _GET_ on the vCPU fd): one vCPU's
 * HV_REGISTER_CR_INTERCEPT_CONTROL and its mask registers (protocol/abi/hyperv-vsm.ts).
 */
export interface RegInterceptSpec {
  /** HV_REGISTER_CR_INTERCEPT_CONTROL: which accesses exit (KVM_EXIT_PINBOX_REG_INTERCEPT). */
  control: bigint;
  /** HvX64RegisterCrInterceptCr0Mask: with Cr0Write, only writes that change one of these bits exit. */
  cr0Mask: bigint;
  /** HvX64RegisterCrInterceptCr4Mask, likewise for Cr4Write. */
  cr4Mask: bigint;
  /** HvX64RegisterCrInterceptIa32MiscEnableMask, likewise for IA32MiscEnableWrite. */
  miscEnableMask: bigint;
}
