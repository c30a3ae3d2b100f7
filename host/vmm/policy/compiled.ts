/**
 * A compiled policy: plain data the VMM applies, in the order it should apply it —
 *
 *   const vm = kvm.createVm(policy.vmOptions);
 *   for (const { cap, args } of policy.caps) vm.enableCap(cap, args);   // before the filter:
 *   if (policy.msrFilter) vm.setMsrFilter(policy.msrFilter);            // api.rst §4.97
 *   for (let i = 0; i < policy.vcpus; i++) vm.createVcpu(i);
 *
 * then answer user-space MSR exits with `new EmulatedMsrs(policy.msrHandlers, policy.vcpus)` and
 * Heki denial exits per `policy.onDenial`. The shapes mirror the KVM model's inputs (host/kvm)
 * without importing it: `msrFilter` is struct kvm_msr_filter exactly, caps are KVM_ENABLE_CAP
 * arguments with the numbers of protocol/abi.
 */
import type { HekiMemoryAbi, HekiProfileName } from '../../../protocol/abi.js';
import type { GuestCpuidSettings } from './guest-cpuid.js';
import type { CrAnswer, OnDenial, OnShutdown } from './document.js';

/** What `Kvm.createVm` takes. Fields left undefined take the KVM model's defaults. */
export interface PolicyVmOptions {
  profile: HekiProfileName;
  hostCr0?: bigint;
  hostCr4?: bigint;
  cr4PinnableMask?: bigint;
  guestCpuid: GuestCpuidSettings;
  memorySize: number;
  ignoreMsrs: boolean;
  vcpus: number;
  /** John Andersen's CR-pinning ABI (only when the policy asks: other backends lack the option). */
  andersen?: boolean;
  /** Heki's memory hypercall, where the policy chooses one (docs/memory-protection.md §4.3); else the profile's. */
  hekiMemory?: HekiMemoryAbi;
}

/** pinbox's CR filter as PINBOX_SET_CR_FILTER takes it. */
export interface CrFilterMasks {
  readonly cr0Mask: bigint;
  readonly cr4Mask: bigint;
}

/** A vCPU's secure register intercepts as PINBOX_SET_REG_INTERCEPTS takes them. */
export interface RegisterIntercepts {
  readonly control: bigint;
  readonly cr0Mask: bigint;
  readonly cr4Mask: bigint;
  readonly miscEnableMask: bigint;
}

/** One KVM_ENABLE_CAP call. */
export interface CapabilityToEnable {
  cap: number;
  args: bigint[];
}

/** struct kvm_msr_filter_range */
export interface MsrFilterRange {
  /** KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE */
  flags: number;
  base: number;
  nmsrs: number;
  /** BITS_TO_LONGS(nmsrs) * 8 bytes, as KVM copies; bit i (byte i >> 3, bit i & 7) is MSR base + i. */
  bitmap: Uint8Array;
}

/** struct kvm_msr_filter (KVM_X86_SET_MSR_FILTER) */
export interface MsrFilter {
  /** KVM_MSR_FILTER_DEFAULT_ALLOW or KVM_MSR_FILTER_DEFAULT_DENY */
  flags: number;
  ranges: MsrFilterRange[];
}

/** How the VMM answers a read exit for one MSR. */
export type MsrReadAnswer =
  | { readonly kind: 'value'; readonly value: bigint }
  | { readonly kind: 'deny' }
  /** write is 'store': the value last stored on this vCPU, else `initial`. */
  | { readonly kind: 'stored'; readonly initial: bigint };

export type MsrWriteAnswer = 'accept' | 'deny' | 'store';

export interface MsrHandler {
  readonly index: number;
  readonly read: MsrReadAnswer;
  readonly write: MsrWriteAnswer;
}

/** One range of the memory section: KVM_SET_MEMORY_ATTRIBUTES' struct, with its place in the policy. */
export interface MemoryRegion {
  /** Its index in memory.protect. */
  readonly index: number;
  readonly address: bigint;
  readonly size: bigint;
  /** KVM_MEMORY_ATTRIBUTE_PINBOX_NR/NW/NX/NUX. */
  readonly attributes: bigint;
  readonly name?: string;
}

/**
 * The memory section (policy/memory-protection.ts), applied when the VM is made and again at
 * each VM reset: KVM_ENABLE_CAP(KVM_CAP_PINBOX_MBEC) if `mbec`, then
 * KVM_ENABLE_CAP(KVM_CAP_PINBOX_MEMORY_FAULT_POLICY) if `delivery` is given, then each range.
 */
export interface MemoryPolicy {
  /** Whether anything goes to KVM (needs the model): MBEC, a delivery, or a range. */
  readonly applies: boolean;
  readonly mbec: boolean;
  /** undefined: the KVM's default for the profile (exit under v3, inject under v2). */
  readonly delivery?: 'exit' | 'inject';
  /** What the VMM does after a refused access. */
  readonly onViolation: OnDenial;
  readonly protect: readonly MemoryRegion[];
}

export interface CompiledPolicy {
  /** The VM's name ("default" unless the policy names it). */
  readonly name: string;
  readonly vcpus: number;
  readonly memorySize: number;
  readonly vmOptions: PolicyVmOptions;
  /** KVM_CAP_X86_USER_SPACE_MSR, then KVM_CAP_HEKI_CONFIGURE and KVM_CAP_HEKI_DENIAL (numbers per profile). */
  readonly caps: readonly CapabilityToEnable[];
  /** undefined: install no filter. */
  readonly msrFilter: MsrFilter | undefined;
  readonly msrHandlers: ReadonlyMap<number, MsrHandler>;
  readonly onDenial: OnDenial;
  /** What a triple fault (KVM_EXIT_SHUTDOWN) does: reboot the vCPU (default), reset or kill the VM. */
  readonly onShutdown: OnShutdown;
  /** undefined: install no CR filter. */
  readonly crFilter: CrFilterMasks | undefined;
  /** The VMM's answer to a CR-filter exit (default deny). */
  readonly crFilterAnswer: CrAnswer;
  /** undefined: no vCPU boots with register intercepts. */
  readonly registerIntercepts: RegisterIntercepts | undefined;
  /** The answer to a register intercept while no monitor decides (default deny). */
  readonly interceptAnswer: CrAnswer;
  /** Guest memory protections (NO_MEMORY_POLICY when the policy has none). */
  readonly memory: MemoryPolicy;
  /** Things that are allowed but probably not meant (for the CLI to print). */
  readonly warnings: readonly string[];
}
