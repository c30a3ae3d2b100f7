/**
 * What an MSR handler works on: `struct msr_data` (MsrAccess), the vCPU it runs for
 * (MsrVcpu) and the KVM-owned MSR values of that vCPU (VcpuMsrState). MSRs whose value the
 * CPU itself uses (EFER, the SYSCALL/SYSENTER MSRs, FS/GS bases, TSC, TSC_AUX) live in the
 * core and are reached through `cpu.readMsr`/`cpu.commitMsr`; the rest live here.
 *
 * A handler returns 0 (done), 1 (invalid: INVAL class), KVM_MSR_RET_UNSUPPORTED (UNKNOWN
 * class) or a negative errno, exactly as kvm_{get,set}_msr_common() do.
 */
import { MSR_IA32_CR_PAT_DEFAULT, MSR_IA32_MISC_ENABLE_BTS_UNAVAIL, MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL } from '../../../protocol/abi.js';
import type { GuestCpu } from '../../x86/guest-cpu.js';
import type { PhysicalMemory } from '../../x86/memory.js';
import type { AndersenPins } from '../andersen.js';
import type { GuestCpuid } from '../api/cpuid.js';
import type { LocalApic } from '../lapic.js';
import { hex } from '../../../protocol/notation.js';

// KVM's internal MSR return codes (arch/x86/kvm/x86.h): they never reach user space as such;
// kvm_msr_reason() turns them into an exit reason.

/** "The MSR isn't supported, either because it is completely unknown to KVM, or because the
 * MSR should not exist according to the vCPU model" → KVM_MSR_EXIT_REASON_UNKNOWN. */
export const KVM_MSR_RET_UNSUPPORTED = 2;
/** "Access to the MSR is denied by a userspace MSR filter" → KVM_MSR_EXIT_REASON_FILTER. */
export const KVM_MSR_RET_FILTERED = 3;

/** `struct msr_data`: one access, reused across accesses (no allocation per MSR). */
export interface MsrAccess {
  index: number;
  /** In for writes, out for reads. */
  data: bigint;
  hostInitiated: boolean;
}

/** The part of the CPU the MSR code may use. */
export type MsrCpuView = Pick<GuestCpu, 'readMsr' | 'commitMsr' | 'readCr'>;

/** Per-VM state the MSRs reach: kvm->arch.wall_clock and guest memory. */
export interface MsrVmState {
  readonly memory: PhysicalMemory;
  /** kvm->arch.wall_clock: the GPA last written to MSR_KVM_WALL_CLOCK(_NEW). */
  wallClock: bigint;
  /** Wall-clock time, in ns since the Unix epoch, at which kvmclock reads 0 (VM creation). */
  readonly wallClockEpochNs: bigint;
  /** max_host_virt_addr_bits(): 57 with host LA57, else 48. */
  readonly hostVirtAddrBits: number;
  /** The kvm.ignore_msrs module parameter. */
  readonly ignoreMsrs: boolean;
  /** The VM speaks John Andersen's CR-pinning ABI (VmOptions.andersen). */
  readonly andersen: boolean;
}

export interface MsrVcpu {
  readonly cpu: MsrCpuView;
  readonly cpuid: GuestCpuid;
  /** KVM_CAP_ENFORCE_PV_FEATURE_CPUID on this vCPU */
  readonly pvEnforce: boolean;
  readonly msrState: VcpuMsrState;
  readonly lapic: LocalApic;
  readonly vm: MsrVmState;
  /** John Andersen's CR pins of this vCPU (../andersen.ts). */
  readonly andersenPins: AndersenPins;
}

/** The KVM-owned MSR values of one vCPU, with their RESET/INIT values (kvm_vcpu_reset()). */
export class VcpuMsrState {
  pat = MSR_IA32_CR_PAT_DEFAULT;
  miscEnable = MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | MSR_IA32_MISC_ENABLE_BTS_UNAVAIL;
  powerCtl = 0n;
  specCtrl = 0n;
  xss = 0n;
  /** vcpu->arch.time (MSR_KVM_SYSTEM_TIME(_NEW)) */
  systemTime = 0n;
  asyncPfEn = 0n;
  asyncPfInt = 0n;
  stealTime = 0n;
  pvEoi = 0n;
  /** Set to 1 when the vCPU is created, untouched by RESET and INIT (kvm_arch_vcpu_create()). */
  pollControl = 1n;

  /**
   * kvm_vcpu_reset(): INIT clears the async-PF, steal-time, kvmclock and PV-EOI MSRs and
   * SPEC_CTRL (vmx_vcpu_reset()); RESET also restores PAT, MISC_ENABLE and XSS.
   */
  reset(initEvent: boolean): void {
    this.asyncPfEn = 0n;
    this.asyncPfInt = 0n;
    this.stealTime = 0n;
    this.systemTime = 0n;
    this.pvEoi = 0n;
    this.specCtrl = 0n;
    if (!initEvent) {
      this.pat = MSR_IA32_CR_PAT_DEFAULT;
      this.miscEnable = MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | MSR_IA32_MISC_ENABLE_BTS_UNAVAIL;
      this.xss = 0n;
    }
  }
}

/** One MSR's emulation: kvm_get_msr_common() / kvm_set_msr_common() for its index. */
export interface MsrHandler {
  /**
   * In KVM's msrs_to_save or emulated_msrs list (kvm_is_advertised_msr()): user space may
   * read it, and write 0 to it, even where the guest model lacks it.
   */
  readonly advertised: boolean;
  get(v: MsrVcpu, a: MsrAccess): number;
  set(v: MsrVcpu, a: MsrAccess): number;
}

/** Loads a core-owned MSR; a core that does not own it is a wiring bug, not a guest event. */
export function commitCoreMsr(v: MsrVcpu, index: number, value: bigint): void {
  if (!v.cpu.commitMsr(index, value)) throw new Error(`the x86 core does not own MSR ${hex(index)}`);
}

/** Reads a core-owned MSR. */
export function readCoreMsr(v: MsrVcpu, index: number): bigint {
  const value = v.cpu.readMsr(index);
  if (value === undefined) throw new Error(`the x86 core does not own MSR ${hex(index)}`);
  return value;
}

/** A handler for a core-owned MSR with a write rule; reads return the core's value. */
export function coreMsr(advertised: boolean, check: (v: MsrVcpu, a: MsrAccess) => number): MsrHandler {
  return {
    advertised,
    get(v, a) {
      a.data = readCoreMsr(v, a.index);
      return 0;
    },
    set(v, a) {
      const r = check(v, a);
      if (r === 0) commitCoreMsr(v, a.index, a.data);
      return r;
    },
  };
}
