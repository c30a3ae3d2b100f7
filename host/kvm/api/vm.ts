/**
 * The VM file descriptor (KVM_CREATE_VM's fd), in the manner of rust-vmm's kvm-ioctls `VmFd`:
 * the VM ioctls pinbox uses, over the VM's one memory slot at GPA 0.
 */
import type { HekiAbiProfile } from '../../../protocol/abi.js';
import type { CrFilterSpec } from './cr-hardening.js';
import type { GuestMemory } from './guest-memory.js';
import type { ModelVm } from './model.js';
import type { MsrFilterSpec } from './msr-filter.js';
import type { KvmVcpu } from './vcpu.js';

/** struct kvm_memory_attributes: address and size page-aligned, flags 0. */
export interface KvmMemoryAttributes {
  readonly address: bigint;
  readonly size: bigint;
  readonly attributes: bigint;
  readonly flags?: bigint;
}

export interface KvmVm {
  /** Guest-physical memory: memory slot 0, from GPA 0. */
  readonly memory: GuestMemory;
  /** The Heki ABI numbers this VM speaks (its exit and capability numbers). */
  readonly profile: HekiAbiProfile;
  /** KVM_CHECK_EXTENSION on the VM fd. */
  checkExtension(cap: number): number;
  /** KVM_ENABLE_CAP on the VM fd; a refused call changes nothing. */
  enableCap(cap: number, args?: readonly (bigint | number)[], flags?: number): void;
  /**
   * KVM_SET_MEMORY_ATTRIBUTES with pinbox's out-of-tree read/write/execute attributes
   * (docs/memory-protection.md §3): every check is made before anything changes. A backend
   * without the ioctl has no such method; one whose kernel refuses the attributes throws its
   * KvmError (a mainline kernel: EINVAL, they are outside its supported mask).
   */
  setMemoryAttributes?(attributes: KvmMemoryAttributes): void;
  /** KVM_X86_SET_MSR_FILTER: the old filter stays in force if the new one is refused. */
  setMsrFilter(filter: MsrFilterSpec): void;
  /**
   * PINBOX_SET_CR_FILTER, pinbox's extension (docs/cr-filter.md), present where
   * KVM_CAP_PINBOX_CR_FILTER is: the new filter or, if it is refused, the old one stays in force.
   */
  setCrFilter?(filter: CrFilterSpec): void;
  /** KVM_CREATE_VCPU */
  createVcpu(id: number): KvmVcpu;
  /** Closes the VM's fd and releases what it holds in the kernel (a backend with nothing to release has none). */
  close?(): void;
  /** What only the model can do; undefined on other backends (model.ts). */
  readonly model?: ModelVm;
}
