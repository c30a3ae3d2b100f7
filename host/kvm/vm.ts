/**
 * The model's VM file descriptor, the KvmVm of host/kvm/api/vm.ts: the VM ioctls pinbox models
 * (KVM_CHECK_EXTENSION, KVM_ENABLE_CAP, KVM_X86_SET_MSR_FILTER, KVM_CREATE_VCPU), plus the
 * model's extensions for Heki, which has no ioctl of its own (ModelVm): a read-only view of the
 * pins (as debugfs would give), the pin reset a VM reboot asks for, and save/restore of the Heki
 * state for snapshots.
 */
import * as abi from '../../protocol/abi.js';
import type { HekiAbiProfile } from '../../protocol/abi.js';
import type { GuestCpu } from '../x86/guest-cpu.js';
import type { PhysicalMemory } from '../x86/memory.js';
import { enableCapArgs, kvmCheckExtension, PINBOX_MAX_VCPU_IDS } from './capabilities.js';
import { KvmError } from './api/errors.js';
import type {
  HekiSnapshot, MemoryAttributeRange, MemoryPermissionRange, MemoryProtectionSnapshot, ModelMemoryProtection, ModelVm,
} from './api/model.js';
import type { CrFilterSpec } from './api/cr-hardening.js';
import type { MsrFilterSpec } from './api/msr-filter.js';
import type { KvmMemoryAttributes, KvmVm } from './api/vm.js';
import { CrFilter } from './cr-filter.js';
import { HekiState } from './heki.js';
import { MsrFilter } from './msr-filter.js';
import { userSpaceMsrMask } from './user-space-msr.js';
import { Vcpu } from './vcpu.js';
import type { VmArch } from './vm-arch.js';

/** Makes the CPU of a new vCPU over the VM's memory. */
export type CpuFactory = (memory: PhysicalMemory, vcpuId: number) => GuestCpu;

export class Vm implements KvmVm, ModelVm {
  private readonly vcpus = new Map<number, Vcpu>();

  /** @internal Created by `Kvm.createVm()`. */
  constructor(
    private readonly arch: VmArch,
    private readonly createCpu: CpuFactory,
    readonly maxVcpus: number,
  ) {}

  /** Guest-physical memory (the one memory slot). */
  get memory(): PhysicalMemory {
    return this.arch.memory;
  }

  /** The model's own calls (host/kvm/api/model.ts): Heki's state. */
  get model(): ModelVm {
    return this;
  }

  /** The Heki ABI numbers this VM speaks. */
  get profile(): HekiAbiProfile {
    return this.arch.profile;
  }

  /** KVM_CHECK_EXTENSION on the VM fd (KVM_CAP_MEMORY_ATTRIBUTES: this VM's supported attributes). */
  checkExtension(cap: number): number {
    if (cap === abi.KVM_CAP_MEMORY_ATTRIBUTES) return Number(this.arch.memoryProtection.supportedAttributes());
    return kvmCheckExtension(cap, this.arch.profile, this.maxVcpus);
  }

  /** KVM_SET_MEMORY_ATTRIBUTES (memory-protection.ts): all checked, then applied to every vCPU. */
  setMemoryAttributes(attributes: KvmMemoryAttributes): void {
    if (typeof attributes !== 'object' || attributes === null) throw new KvmError('EINVAL', 'KVM_SET_MEMORY_ATTRIBUTES', 'expected struct kvm_memory_attributes');
    this.arch.memoryProtection.setAttributes(attributes.address, attributes.size, attributes.attributes, attributes.flags ?? 0n);
  }

  /** pinbox extension: the attributes user space set (KVM has no GET ioctl). */
  getMemoryAttributes(address = 0n, size?: bigint, limit = Infinity): MemoryAttributeRange[] {
    return this.arch.memoryProtection.getAttributes(address, size, limit);
  }

  /** pinbox extension: what the second stage lets the guest do in [address, address + size). */
  memoryPermissions(address: bigint, size: bigint, limit = Infinity): MemoryPermissionRange[] {
    return this.arch.memoryProtection.permissions(address, size, limit);
  }

  /** pinbox extension: MBEC and the delivery of refused accesses, as they stand. */
  get memoryFaultSettings(): ModelMemoryProtection['memoryFaultSettings'] {
    const p = this.arch.memoryProtection;
    return { mbec: p.mbec, delivery: p.faultPolicy === abi.PINBOX_MEMORY_FAULT_INJECT_PF ? 'inject' : 'exit' };
  }

  /** pinbox extension: Heki's memory locks, as the guest made them. */
  get hekiMemoryLocks(): ModelMemoryProtection['hekiMemoryLocks'] {
    const p = this.arch.memoryProtection;
    return {
      v1: { nowrite: p.hekiV1.nowrite.map((r) => ({ ...r })), exec: p.hekiV1.exec.map((r) => ({ ...r })) },
      v2: p.v2Ranges(),
    };
  }

  /**
   * KVM_ENABLE_CAP on the VM fd: KVM_CAP_X86_USER_SPACE_MSR and, under this VM's profile
   * numbers, KVM_CAP_HEKI_CONFIGURE / KVM_CAP_HEKI_DENIAL. Masks are validated, then
   * assigned; a refused call changes nothing.
   */
  enableCap(cap: number, args: readonly (bigint | number)[] = [], flags = 0): void {
    const ioctl = `KVM_ENABLE_CAP(${capName(cap, this.arch.profile)})`;
    const a = enableCapArgs(ioctl, args, flags);
    const arch = this.arch;
    switch (cap) {
      case abi.KVM_CAP_X86_USER_SPACE_MSR:
        arch.userSpaceMsrMask = userSpaceMsrMask(a[0]!);
        return;
      case arch.profile.KVM_CAP_HEKI_CONFIGURE:
        arch.heki.configureExitReason = HekiState.exitMask(a[0]!, ioctl);
        return;
      case arch.profile.KVM_CAP_HEKI_DENIAL:
        arch.heki.denialExitReason = HekiState.exitMask(a[0]!, ioctl);
        return;
      case abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT:
        // kvm_vm_ioctl_enable_cap(): args[0] as the flag, at any time.
        arch.tripleFaultEvent = a[0] !== 0n;
        return;
      case abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY:
        arch.memoryProtection.setFaultPolicy(a[0]!, ioctl);
        return;
      case abi.KVM_CAP_PINBOX_MBEC:
        if (a[0] > 1n) throw new KvmError('EINVAL', ioctl, 'args[0] must be 0 or 1');
        arch.memoryProtection.setMbec(a[0] === 1n, ioctl);
        return;
      default:
        throw new KvmError('EINVAL', ioctl, 'not a VM capability pinbox can enable');
    }
  }

  /**
   * KVM_X86_SET_MSR_FILTER: builds the new filter aside and swaps it in only when it is
   * whole, so a failed call leaves the previous filter in force; the new one governs every
   * vCPU from its next RDMSR/WRMSR. A filter with DEFAULT_ALLOW and no non-empty range is
   * the way to clear filtering.
   */
  setMsrFilter(filter: MsrFilterSpec): void {
    this.arch.msrFilter = MsrFilter.build(filter);
  }

  /**
   * PINBOX_SET_CR_FILTER (cr-filter.ts): checked whole, then swapped in, so a refused filter
   * leaves the old one in force; the new one governs every vCPU from its next CR write.
   */
  setCrFilter(filter: CrFilterSpec): void {
    this.arch.crFilter = CrFilter.build(filter);
  }

  /** KVM_CREATE_VCPU: the vCPU starts in the RESET state (real mode). */
  createVcpu(id: number): Vcpu {
    const ioctl = 'KVM_CREATE_VCPU';
    if (!Number.isInteger(id) || id < 0 || id >= PINBOX_MAX_VCPU_IDS) {
      throw new KvmError('EINVAL', ioctl, `vCPU id must be an integer 0..${PINBOX_MAX_VCPU_IDS - 1}, got ${String(id)}`);
    }
    if (this.vcpus.size >= this.maxVcpus) throw new KvmError('EINVAL', ioctl, `the VM already has its maximum of ${this.maxVcpus} vCPUs`);
    if (this.vcpus.has(id)) throw new KvmError('EEXIST', ioctl, `vCPU ${id} exists`);
    const vcpu = new Vcpu(id, this.createCpu(this.arch.memory, id), this.arch);
    this.vcpus.set(id, vcpu);
    return vcpu;
  }

  /** pinbox extension: the pinned CR0/CR4 bits of this VM, read-only. */
  get hekiPins(): { readonly cr0: bigint; readonly cr4: bigint } {
    return Object.freeze({ cr0: this.arch.heki.pinnedCr0, cr4: this.arch.heki.pinnedCr4 });
  }

  /**
   * pinbox extension: what a VM reset asked for by user space does to Heki — the pins are
   * cleared (Paolo Bonzini's position, docs/heki.md §5.4, §7.5). vCPU INIT never clears them.
   */
  resetHekiPins(): void {
    this.arch.heki.resetPins();
  }

  /** pinbox extension: what a VM reset asked for by user space does to memory protections (memory-protection.ts). */
  resetMemoryProtection(): void {
    this.arch.memoryProtection.reset();
  }

  /** pinbox extension: the memory protections, for a snapshot. */
  getMemoryProtectionState(): MemoryProtectionSnapshot {
    return this.arch.memoryProtection.snapshot();
  }

  /** pinbox extension: loads a snapshot's memory protections (all fields checked first). */
  setMemoryProtectionState(state: MemoryProtectionSnapshot): void {
    this.arch.memoryProtection.restore(state, 'pinbox SET_MEMORY_PROTECTION_STATE');
  }

  /** pinbox extension: the Heki state, for a snapshot. */
  getHekiState(): HekiSnapshot {
    return this.arch.heki.snapshot();
  }

  /** pinbox extension: restores a snapshot's Heki state (all fields checked first). */
  setHekiState(state: HekiSnapshot): void {
    this.arch.heki.restore(state, 'pinbox SET_HEKI_STATE');
  }
}

function capName(cap: number, profile: HekiAbiProfile): string {
  switch (cap) {
    case abi.KVM_CAP_X86_USER_SPACE_MSR:
      return 'KVM_CAP_X86_USER_SPACE_MSR';
    case profile.KVM_CAP_HEKI_CONFIGURE:
      return 'KVM_CAP_HEKI_CONFIGURE';
    case profile.KVM_CAP_HEKI_DENIAL:
      return 'KVM_CAP_HEKI_DENIAL';
    case abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT:
      return 'KVM_CAP_X86_TRIPLE_FAULT_EVENT';
    case abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY:
      return 'KVM_CAP_PINBOX_MEMORY_FAULT_POLICY';
    case abi.KVM_CAP_PINBOX_MBEC:
      return 'KVM_CAP_PINBOX_MBEC';
    default:
      return String(cap);
  }
}
