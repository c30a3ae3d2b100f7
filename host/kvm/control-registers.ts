/**
 * KVM's architectural checks on guest writes to control registers, as in arch/x86/kvm/x86.c
 * (kvm_is_valid_cr0, kvm_set_cr0, kvm_lmsw, kvm_set_cr3, __kvm_is_valid_cr4, kvm_set_cr4,
 * kvm_set_cr8) and the CLTS case of handle_cr() in vmx.c. Each setter returns the value to
 * load into the CPU, or undefined where KVM returns 1 and the guest gets #GP(0).
 *
 * Not modelled: load_pdptrs() for legacy PAE paging (the core runs only in long mode, where
 * KVM never loads PDPTRs), LAM bits in CR3 (no LAM in the guest model), SMM and nested VMX.
 */
import {
  EFER_LMA, EFER_LME, X86_CR0_AM, X86_CR0_CD, X86_CR0_EM, X86_CR0_ET, X86_CR0_MP, X86_CR0_NE,
  X86_CR0_NW, X86_CR0_PE, X86_CR0_PG, X86_CR0_TS, X86_CR0_WP, X86_CR3_PCID_MASK,
  X86_CR3_PCID_NOFLUSH, X86_CR4_CET, X86_CR4_DE, X86_CR4_FRED, X86_CR4_FSGSBASE, X86_CR4_LA57,
  X86_CR4_LAM_SUP, X86_CR4_MCE, X86_CR4_OSFXSR, X86_CR4_OSXMMEXCPT, X86_CR4_OSXSAVE, X86_CR4_PAE,
  X86_CR4_PCE, X86_CR4_PCIDE, X86_CR4_PGE, X86_CR4_PKE, X86_CR4_PSE, X86_CR4_PVI, X86_CR4_SMAP,
  X86_CR4_SMEP, X86_CR4_TSD, X86_CR4_UMIP, X86_CR4_VME, X86_CR4_VMXE,
} from '../../protocol/abi.js';

// KVM's control-register masks (arch/x86/include/asm/kvm_host.h): KVM's own, never seen by
// user space, so they live here rather than in protocol/.

/** CR0 bits KVM knows; the others are reserved and silently dropped (kvm_set_cr0()). */
export const CR0_KNOWN_BITS =
  X86_CR0_PE | X86_CR0_MP | X86_CR0_EM | X86_CR0_TS | X86_CR0_ET | X86_CR0_NE |
  X86_CR0_WP | X86_CR0_AM | X86_CR0_NW | X86_CR0_CD | X86_CR0_PG;
/** CR4 bits KVM knows (the complement of CR4_RESERVED_BITS); the CPUID-gated ones are
 * further reserved per guest by __cr4_reserved_bits(). */
export const CR4_KNOWN_BITS =
  X86_CR4_VME | X86_CR4_PVI | X86_CR4_TSD | X86_CR4_DE | X86_CR4_PSE | X86_CR4_PAE |
  X86_CR4_MCE | X86_CR4_PGE | X86_CR4_PCE | X86_CR4_OSFXSR | X86_CR4_PCIDE |
  X86_CR4_OSXSAVE | X86_CR4_SMEP | X86_CR4_FSGSBASE | X86_CR4_OSXMMEXCPT | X86_CR4_LA57 |
  X86_CR4_VMXE | X86_CR4_SMAP | X86_CR4_PKE | X86_CR4_UMIP | X86_CR4_LAM_SUP |
  X86_CR4_CET | X86_CR4_FRED;
/** CR8 holds only the task priority, bits 3:0 (CR8_RESERVED_BITS is the rest). */
export const X86_CR8_TPR = 0xfn;

/** The pins kvm_set_cr0/4() enforce on a VM with John Andersen's ABI (andersen.ts). */
export interface CrPinCheck {
  refuses(cr: 0 | 4, value: bigint): boolean;
}

/** The vCPU state the checks read, and the guest model they apply. */
export interface CrWriteContext {
  readonly cr0: bigint;
  readonly cr3: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
  /** CS.L: with EFER.LMA, the CPU is in 64-bit mode (is_64_bit_mode()). */
  readonly csL: boolean;
  /** vcpu->arch.cr4_guest_rsvd_bits (cpuid.ts cr4GuestReservedBits). */
  readonly cr4ReservedBits: bigint;
  /** CPUID.80000008H:EAX[7:0]; CR3 bits at and above it are reserved. */
  readonly maxPhysAddr: number;
  /** Andersen's pins, on a VM that has them (null elsewhere). */
  readonly pins: CrPinCheck | null;
}

const isLongMode = (c: CrWriteContext): boolean => (c.efer & EFER_LMA) !== 0n;
const is64BitMode = (c: CrWriteContext): boolean => isLongMode(c) && c.csL;

/** kvm_is_valid_cr0(): the checks that need no vCPU state (also used by KVM_SET_SREGS). */
export function kvmIsValidCr0(cr0: bigint): boolean {
  if (cr0 >> 32n) return false;
  if ((cr0 & X86_CR0_NW) !== 0n && (cr0 & X86_CR0_CD) === 0n) return false;
  if ((cr0 & X86_CR0_PG) !== 0n && (cr0 & X86_CR0_PE) === 0n) return false;
  return true;
}

/** kvm_set_cr0() */
export function kvmSetCr0(c: CrWriteContext, value: bigint): bigint | undefined {
  if (!kvmIsValidCr0(value)) return undefined;
  // Andersen's check comes right after the validity checks, before the paging ones.
  if (c.pins !== null && c.pins.refuses(0, value)) return undefined;
  // ET is hardwired to 1 and "writes to CR0 reserved bits are ignored, even on Intel".
  const cr0 = (value | X86_CR0_ET) & CR0_KNOWN_BITS;
  const enablingPaging = (c.cr0 & X86_CR0_PG) === 0n && (cr0 & X86_CR0_PG) !== 0n;
  if ((c.efer & EFER_LME) !== 0n && enablingPaging) {
    if ((c.cr4 & X86_CR4_PAE) === 0n) return undefined;
    if (c.csL) return undefined;
  }
  if ((cr0 & X86_CR0_PG) === 0n && (is64BitMode(c) || (c.cr4 & X86_CR4_PCIDE) !== 0n)) return undefined;
  if ((cr0 & X86_CR0_WP) === 0n && (c.cr4 & X86_CR4_CET) !== 0n) return undefined;
  return cr0;
}

/** kvm_lmsw(): LMSW loads CR0 bits 3:1 and can set, never clear, PE. */
export function kvmLmswValue(cr0: bigint, msw: number): bigint {
  return (cr0 & ~0x0en) | BigInt(msw & 0x0f);
}

/** CLTS clears CR0.TS (handle_cr() access type 2). */
export function cltsValue(cr0: bigint): bigint {
  return cr0 & ~X86_CR0_TS;
}

/** __kvm_is_valid_cr4() */
export function kvmIsValidCr4(cr4ReservedBits: bigint, cr4: bigint): boolean {
  return (cr4 & cr4ReservedBits) === 0n;
}

/** kvm_set_cr4() */
export function kvmSetCr4(c: CrWriteContext, cr4: bigint): bigint | undefined {
  if (!kvmIsValidCr4(c.cr4ReservedBits, cr4)) return undefined;
  if (c.pins !== null && c.pins.refuses(4, cr4)) return undefined;
  if (isLongMode(c)) {
    if ((cr4 & X86_CR4_PAE) === 0n) return undefined;
    if (((cr4 ^ c.cr4) & X86_CR4_LA57) !== 0n) return undefined;
  }
  if ((cr4 & X86_CR4_PCIDE) !== 0n && (c.cr4 & X86_CR4_PCIDE) === 0n) {
    // "PCID can not be enabled when cr3[11:0]!=000H or EFER.LMA=0"
    if ((c.cr3 & X86_CR3_PCID_MASK) !== 0n || !isLongMode(c)) return undefined;
  }
  if ((cr4 & X86_CR4_CET) !== 0n && (c.cr0 & X86_CR0_WP) === 0n) return undefined;
  return cr4;
}

/**
 * kvm_set_cr3(): with CR4.PCIDE, bit 63 asks not to flush and is never loaded; any other bit
 * at or above MAXPHYADDR is reserved (kvm_vcpu_is_legal_cr3()), bit 63 included when PCIDE
 * is off. Rewriting the current value is always accepted.
 */
export function kvmSetCr3(c: CrWriteContext, value: bigint): bigint | undefined {
  let cr3 = value;
  if ((c.cr4 & X86_CR4_PCIDE) !== 0n) cr3 &= ~X86_CR3_PCID_NOFLUSH;
  if (cr3 === c.cr3) return cr3;
  const reserved = ((1n << 64n) - 1n) & ~((1n << BigInt(c.maxPhysAddr)) - 1n);
  if ((cr3 & reserved) !== 0n) return undefined;
  return cr3;
}

/** kvm_set_cr8(): only the 4-bit task priority may be set. */
export function kvmIsValidCr8(cr8: bigint): boolean {
  return (cr8 & ~X86_CR8_TPR) === 0n;
}
