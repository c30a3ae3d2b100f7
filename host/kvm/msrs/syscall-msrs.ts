/**
 * The MSRs behind SYSCALL, SYSENTER and the FS/GS bases, all owned by the core: the checks
 * of __kvm_set_msr() (arch/x86/kvm/msrs.c) and vmx_set_msr().
 */
import * as abi from '../../../protocol/abi.js';
import { canonicalAddress, isCanonicalAddress } from './canonical.js';
import { coreMsr, type MsrAccess, type MsrHandler, type MsrVcpu } from './msr-vcpu.js';

/**
 * FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR and CSTAR must be canonical for the *host's*
 * linear-address width (is_noncanonical_msr_address() uses max_host_virt_addr_bits()),
 * whatever the guest's CPUID or CR4.LA57 say.
 */
const canonical = (v: MsrVcpu, a: MsrAccess): number => (isCanonicalAddress(a.data, v.vm.hostVirtAddrBits) ? 0 : 1);

/**
 * SYSENTER_ESP/EIP are made canonical rather than refused, so that 64-bit code behaves as
 * on AMD (which ignores the upper half) while VM entry stays valid on Intel.
 */
const canonicalized = (v: MsrVcpu, a: MsrAccess): number => {
  a.data = canonicalAddress(a.data, v.vm.hostVirtAddrBits);
  return 0;
};

export const SYSCALL_MSRS: ReadonlyArray<readonly [number, MsrHandler]> = [
  // STAR takes any value.
  [abi.MSR_STAR, coreMsr(true, () => 0)],
  [abi.MSR_LSTAR, coreMsr(true, canonical)],
  [abi.MSR_CSTAR, coreMsr(true, canonical)],
  /**
   * MODEL DECISION: IA32_FMASK bits 63:32 are reserved (Intel SDM vol. 4); KVM passes the
   * value to the hardware WRMSR (vmx_set_guest_uret_msr()), which refuses reserved bits,
   * so a guest write of them is INVAL here.
   */
  [abi.MSR_SYSCALL_MASK, coreMsr(true, (_v, a) => (a.data >> 32n ? 1 : 0))],
  [abi.MSR_FS_BASE, coreMsr(false, canonical)],
  [abi.MSR_GS_BASE, coreMsr(false, canonical)],
  [abi.MSR_KERNEL_GS_BASE, coreMsr(true, canonical)],
  // The VMCS field is 32 bits wide: the upper half is dropped, not refused.
  [abi.MSR_IA32_SYSENTER_CS, coreMsr(true, (_v, a) => {
    a.data &= 0xffff_ffffn;
    return 0;
  })],
  [abi.MSR_IA32_SYSENTER_ESP, coreMsr(true, canonicalized)],
  [abi.MSR_IA32_SYSENTER_EIP, coreMsr(true, canonicalized)],
];
