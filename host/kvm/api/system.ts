/**
 * The system file descriptor (/dev/kvm), in the manner of rust-vmm's kvm-ioctls `Kvm`:
 * KVM_CHECK_EXTENSION, KVM_GET_MSR_INDEX_LIST and KVM_CREATE_VM.
 */
import type { HekiMemoryAbi, HekiProfileName } from '../../../protocol/abi.js';
import type { GuestCpuidOptions } from './cpuid.js';
import type { ModelKvm } from './model.js';
import type { KvmVm } from './vm.js';

/**
 * KVM_CREATE_VM's options. Every backend takes `profile` and `memorySize`; the others describe
 * the host and the module parameters the model plays, which a real kernel has of its own: a
 * backend that cannot honour an option refuses it (EINVAL, naming it) rather than ignore it.
 */
export interface VmOptions {
  /** Heki ABI numbers: 'v2' (default, RFC v2) or 'v3' (RFC v3). */
  profile?: HekiProfileName;
  /** Guest memory in bytes, a multiple of 4096 up to 4 GiB (default 16 MiB). */
  memorySize?: number;
  /** The model: the host's CR0 as Heki reads it (default 0x80050033). */
  hostCr0?: bigint;
  /** The model: the host's CR4 as Heki reads it (default 0x772ef0; LA57 here also makes MSR canonical checks 57-bit). */
  hostCr4?: bigint;
  /** The model: the host kernel's cr4_pinned_mask (default by profile: 0xb10800, plus FRED in v3). */
  cr4PinnableMask?: bigint;
  /** The model: every vCPU's CPUID features (elsewhere: KvmVcpu.setCpuid per vCPU). */
  guestCpuid?: GuestCpuidOptions;
  /** The model: the kvm.ignore_msrs module parameter (default false). */
  ignoreMsrs?: boolean;
  /** The model: at most this many vCPUs (default and maximum 64). */
  maxVcpus?: number;
  /**
   * The model: which Heki memory hypercall the guest may call (docs/memory-protection.md §4, §5):
   * 'v1' (KVM_HC_LOCK_MEM_PAGE_RANGES = 13, in place of KVM_HC_LOCK_CR_UPDATE), 'v2'
   * (KVM_HC_PROTECT_MEMORY = 14) or 'none'. Default: the profile's own ('v2' for v2, 'none' for v3).
   */
  hekiMemory?: HekiMemoryAbi;
  /**
   * The model: John Andersen's PV CR pinning (docs/andersen.md) under its 2020 numbers —
   * 0x4b564d08-0d are its MSRs and KVM_FEATURE 15 is KVM_FEATURE_CR_PIN, in place of mainline's
   * MSR_KVM_MIGRATION_CONTROL and KVM_FEATURE_MSI_EXT_DEST_ID (default false).
   */
  andersen?: boolean;
}

export interface KvmSystem {
  /** KVM_CHECK_EXTENSION on the system fd (Heki's capabilities under the profile it was opened with). */
  checkExtension(cap: number): number;
  /** KVM_GET_MSR_INDEX_LIST: the MSRs KVM_GET_MSRS / KVM_SET_MSRS save and restore. */
  getMsrIndexList(): number[];
  /** KVM_CREATE_VM: every option is checked before anything is made. */
  createVm(options?: VmOptions): KvmVm;
  /** Closes the fd (VMs made from it stay usable, as in the kernel); a backend holding none has no close. */
  close?(): void;
  /** What only the model can do; undefined on other backends (model.ts). */
  readonly model?: ModelKvm;
}
