/**
 * The guest CPUID as the KVM API of pinbox describes it: which features a vCPU has (what
 * KVM_SET_CPUID2 gives it), by name. The model derives its CPUID leaves from these
 * (host/kvm/cpuid.ts); the real backend reads and writes them in the kernel's CPUID entries
 * (GUEST_CPUID_BITS says where each one is, for them and for a guest that looks).
 */
import * as abi from '../../../protocol/abi.js';

/** Guest features. Every field is optional in options; see DEFAULT_GUEST_CPUID. */
export interface GuestCpuid {
  readonly smep: boolean;
  readonly smap: boolean;
  readonly umip: boolean;
  readonly fsgsbase: boolean;
  readonly pku: boolean;
  readonly la57: boolean;
  /** CET: both shadow stacks (SHSTK) and IBT. */
  readonly cet: boolean;
  readonly x2apic: boolean;
  readonly nx: boolean;
  readonly pcid: boolean;
  readonly xsave: boolean;
  readonly rdtscp: boolean;
  readonly rdpid: boolean;
  readonly vmx: boolean;
  /** IA32_SPEC_CTRL: CPUID.7.EDX SPEC_CTRL, STIBP and SSBD. */
  readonly specCtrl: boolean;
  /** IA32_FLUSH_CMD: CPUID.7.EDX FLUSH_L1D. */
  readonly flushL1d: boolean;
  readonly tscDeadline: boolean;
  /** CPUID 0x40000001 EAX: KVM_FEATURE_* bits. */
  readonly kvmPvFeatures: number;
  /** CPUID 0x80000008 EAX[7:0]: bits of guest-physical address. */
  readonly maxPhysAddr: number;
}

export type GuestCpuidOptions = Partial<GuestCpuid>;

export type CpuidRegister = 'eax' | 'ebx' | 'ecx' | 'edx';
/** A feature's bits: leaf (subleaf 0), register, mask. All bits set = the feature. */
export type CpuidBits = readonly (readonly [number, CpuidRegister, number])[];
export type BooleanCpuidFeature = Exclude<keyof GuestCpuid, 'kvmPvFeatures' | 'maxPhysAddr'>;

/** Where CPUID shows each feature ([sdm] vol. 2, CPUID; protocol/abi/x86-arch.ts). */
export const GUEST_CPUID_BITS: Readonly<Record<BooleanCpuidFeature, CpuidBits>> = {
  smep: [[7, 'ebx', abi.CPUID_7_EBX_SMEP]],
  smap: [[7, 'ebx', abi.CPUID_7_EBX_SMAP]],
  umip: [[7, 'ecx', abi.CPUID_7_ECX_UMIP]],
  fsgsbase: [[7, 'ebx', abi.CPUID_7_EBX_FSGSBASE]],
  pku: [[7, 'ecx', abi.CPUID_7_ECX_PKU]],
  la57: [[7, 'ecx', abi.CPUID_7_ECX_LA57]],
  cet: [[7, 'ecx', abi.CPUID_7_ECX_CET_SS], [7, 'edx', abi.CPUID_7_EDX_CET_IBT]],
  x2apic: [[1, 'ecx', abi.CPUID_1_ECX_X2APIC]],
  nx: [[0x8000_0001, 'edx', abi.CPUID_80000001_EDX_NX]],
  pcid: [[1, 'ecx', abi.CPUID_1_ECX_PCID]],
  xsave: [[1, 'ecx', abi.CPUID_1_ECX_XSAVE]],
  rdtscp: [[0x8000_0001, 'edx', abi.CPUID_80000001_EDX_RDTSCP]],
  rdpid: [[7, 'ecx', abi.CPUID_7_ECX_RDPID]],
  vmx: [[1, 'ecx', abi.CPUID_1_ECX_VMX]],
  specCtrl: [[7, 'edx', abi.CPUID_7_EDX_SPEC_CTRL | abi.CPUID_7_EDX_INTEL_STIBP | abi.CPUID_7_EDX_SPEC_CTRL_SSBD]],
  flushL1d: [[7, 'edx', abi.CPUID_7_EDX_FLUSH_L1D]],
  tscDeadline: [[1, 'ecx', abi.CPUID_1_ECX_TSC_DEADLINE_TIMER]],
};
