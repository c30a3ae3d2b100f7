/** IA32_EFER: set_efer() and kvm_valid_efer() in arch/x86/kvm/msrs.c. */
import { EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, MSR_EFER, X86_CR0_PG } from '../../../protocol/abi.js';
import { coreMsr, readCoreMsr, type MsrHandler } from './msr-vcpu.js';

/** EFER bits a VMX host with NX lets a guest set: kvm_init_efer_bits() + kvm_enable_efer_bits(). */
export const EFER_SUPPORTED_BITS = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;

/**
 * Bits outside SCE|LME|LMA|NX are refused for everyone. A guest may not set NX without NX
 * in its CPUID, nor change LME while paging is on. LMA is the CPU's: a write never changes
 * it, not even a host one (KVM_SET_SREGS sets it).
 */
export const EFER_MSR: readonly [number, MsrHandler] = [
  MSR_EFER,
  coreMsr(false, (v, a) => {
    const efer = a.data;
    if (efer & ~EFER_SUPPORTED_BITS) return 1;
    const old = readCoreMsr(v, MSR_EFER);
    if (!a.hostInitiated) {
      // __kvm_valid_efer(): the guest model is always 64-bit capable (LM), so only NX matters.
      if ((efer & EFER_NXE) !== 0n && !v.cpuid.nx) return 1;
      const paging = (v.cpu.readCr(0) & X86_CR0_PG) !== 0n;
      if (paging && (old & EFER_LME) !== (efer & EFER_LME)) return 1;
    }
    a.data = (efer & ~EFER_LMA) | (old & EFER_LMA);
    return 0;
  }),
];
