/**
 * John Andersen's paravirtual CR pinning, as posted on 17 Jun 2020 ("[PATCH 2/4] KVM: x86:
 * Introduce paravirt feature CR0/CR4 pinning", 20200617190757.27081-3-john.s.andersen@intel.com;
 * docs/andersen.md), on a VM created with the `andersen` option:
 *   - per vCPU, bits pinned high (must stay 1) and low (must stay 0), in CR0 and CR4;
 *   - kvm_set_cr0() and kvm_set_cr4() refuse a value that differs from a pin — #GP(0) for the
 *     guest — right after their validity checks; KVM_SET_SREGS and CLTS do not go through them;
 *   - kvm_vcpu_reset() clears the pins, at RESET and at INIT alike ("to avoid faulting non-boot
 *     CPUs when they are disabled and then re-enabled, which is done when hibernating");
 *   - the MSRs (msrs/andersen-msrs.ts) are how guest and host read and set them.
 * Not modelled: SMM (the model has none; the patch suspended pinning there and checked RSM) and
 * nested VMX (no L2).
 */

/** `struct kvm_vcpu_cr_pinning` for CR0 and CR4 (vcpu->arch.cr0_pinned, cr4_pinned). */
export class AndersenPins {
  cr0High = 0n;
  cr0Low = 0n;
  cr4High = 0n;
  cr4Low = 0n;

  /** kvm_vcpu_reset(): "memset(&vcpu->arch.cr0_pinned, 0, …)", at RESET and INIT. */
  clear(): void {
    this.cr0High = 0n;
    this.cr0Low = 0n;
    this.cr4High = 0n;
    this.cr4Low = 0n;
  }

  /**
   * The check the patch adds to kvm_set_cr0()/kvm_set_cr4(): a value that clears a bit pinned
   * high, or sets one pinned low, is refused.
   */
  refuses(cr: 0 | 4, value: bigint): boolean {
    const high = cr === 0 ? this.cr0High : this.cr4High;
    const low = cr === 0 ? this.cr0Low : this.cr4Low;
    return ((value ^ high) & high) !== 0n || ((~value ^ low) & low) !== 0n;
  }
}
