/**
 * The per-VM state the "kernel" keeps (`struct kvm_arch` plus Heki's fields of `struct kvm`):
 * shared by every vCPU of the VM, reached by them at each access, so a change made by one
 * ioctl or one vCPU applies to all from their next access. Internal to host/kvm.
 */
import type { HekiAbiProfile, HekiMemoryAbi } from '../../protocol/abi.js';
import type { PhysicalMemory } from '../x86/memory.js';
import type { GuestCpuid } from './api/cpuid.js';
import type { CrFilter } from './cr-filter.js';
import type { HekiState } from './heki.js';
import type { MemoryProtection } from './memory-protection.js';
import type { MsrFilter } from './msr-filter.js';
import type { MsrVmState } from './msrs/msr-vcpu.js';
import type { Tracepoints } from './tracepoints.js';

export class VmArch implements MsrVmState {
  /** kvm->arch.msr_filter: replaced whole by KVM_X86_SET_MSR_FILTER, never edited in place. */
  msrFilter: MsrFilter | null = null;
  /** kvm->arch.user_space_msr_mask */
  userSpaceMsrMask = 0;
  /** kvm->arch.triple_fault_event: KVM_SET_VCPU_EVENTS may request a triple fault (KVM_CAP_X86_TRIPLE_FAULT_EVENT). */
  tripleFaultEvent = false;
  /** pinbox's CR filter (cr-filter.ts): replaced whole by PINBOX_SET_CR_FILTER, never edited in place. */
  crFilter: CrFilter | null = null;
  wallClock = 0n;

  constructor(
    readonly memory: PhysicalMemory,
    readonly profile: HekiAbiProfile,
    readonly heki: HekiState,
    /** The CPUID each new vCPU starts with. */
    readonly guestCpuid: GuestCpuid,
    readonly ignoreMsrs: boolean,
    readonly hostVirtAddrBits: number,
    readonly wallClockEpochNs: bigint,
    readonly trace: Tracepoints,
    /** Memory attributes, Heki's memory locks, the violation policy (memory-protection.ts). */
    readonly memoryProtection: MemoryProtection,
    /** Which Heki memory hypercall this VM's guest may call. */
    readonly hekiMemory: HekiMemoryAbi,
    /** John Andersen's CR-pinning ABI (VmOptions.andersen). */
    readonly andersen: boolean,
  ) {}
}
