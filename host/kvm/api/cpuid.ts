/**
 * The guest CPUID as the KVM API of pinbox describes it: which features a vCPU has (what
 * KVM_SET_CPUID2 gives it), by name. The model derives its CPUID leaves from these
 * (host/kvm/cpuid.ts); the real backend reads and writes them in the kernel's CPUID entries.
 */

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
