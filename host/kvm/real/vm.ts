/**
 * A real VM file descriptor, in the manner of kvm-ioctls `VmFd`, the KvmVm of
 * host/kvm/api/vm.ts: KVM_CHECK_EXTENSION, KVM_ENABLE_CAP, KVM_X86_SET_MSR_FILTER and
 * KVM_CREATE_VCPU, over one memory slot at GPA 0 that the VM owns.
 *
 * Heki has no number of its own on a mainline kernel: its capability numbers (235–237) are
 * other capabilities there (KVM_CAP_VM_TYPES, …), and enabling one of those with a Heki mask
 * could change the VM. So unless the Kvm was opened with `hostHeki: true`, the Heki
 * capabilities of the VM's profile answer 0 to KVM_CHECK_EXTENSION and EINVAL to
 * KVM_ENABLE_CAP without reaching the kernel; saying "this host lacks Heki" is the caller's job.
 */
import type { HekiAbiProfile } from '../../../protocol/abi.js';
import * as abi from '../../../protocol/abi.js';
import { KvmError } from '../api/errors.js';
import type { KvmMemoryAttributes, KvmVm } from '../api/vm.js';
import type { MsrFilterSpec } from '../api/msr-filter.js';
import type { CpuidEntry2 } from './cpuid.js';
import { KvmFd } from './fd.js';
import { MappedMemory } from './guest-memory.js';
import type { HekiExits } from './kvm-run.js';
import type { Mapping } from './mapping.js';
import { setMsrFilter } from './msr-filter.js';
import { KVM_CHECK_EXTENSION, KVM_CREATE_VCPU, KVM_ENABLE_CAP } from './uapi.js';
import { enableCapBuffer, VcpuFd } from './vcpu.js';

export class VmFd implements KvmVm {
  /** Guest-physical memory: memory slot 0, from GPA 0. */
  readonly memory: MappedMemory;
  readonly #fd: KvmFd;
  readonly #memory: Mapping;
  readonly #vcpus = new Map<number, VcpuFd>();
  readonly #heki: HekiExits = { profile: null };

  /** @internal Made by Kvm.createVm(). */
  constructor(
    fd: KvmFd,
    memory: Mapping,
    /** The Heki ABI numbers this VM's callers mean. */
    readonly profile: HekiAbiProfile,
    private readonly hostHeki: boolean,
    private readonly vcpuMmapSize: number,
    private readonly supportedCpuid: () => readonly CpuidEntry2[],
  ) {
    this.#fd = fd;
    this.#memory = memory;
    this.memory = new MappedMemory(memory, fd);
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  #isHekiCap(cap: number): boolean {
    return cap === this.profile.KVM_CAP_HEKI_CONFIGURE || cap === this.profile.KVM_CAP_HEKI_DENIAL;
  }

  /** KVM_CHECK_EXTENSION on the VM fd (Heki: see above). */
  checkExtension(cap: number): number {
    this.#fd.check('KVM_CHECK_EXTENSION');
    if (this.#isHekiCap(cap) && !this.hostHeki) return 0;
    return this.#fd.ioctlValue(`KVM_CHECK_EXTENSION(${cap})`, KVM_CHECK_EXTENSION, cap);
  }

  /** KVM_ENABLE_CAP on the VM fd; the kernel checks flags and args. */
  enableCap(cap: number, args: readonly (bigint | number)[] = [], flags = 0): void {
    const call = `KVM_ENABLE_CAP(${cap})`;
    this.#fd.check(call);
    const heki = this.#isHekiCap(cap);
    if (heki && !this.hostHeki) throw new KvmError('EINVAL', call, 'this host kernel has no Heki (open the Kvm with hostHeki: true on a Heki kernel)');
    this.#fd.ioctlPointer(call, KVM_ENABLE_CAP, enableCapBuffer(call, cap, args, flags));
    if (heki) this.#heki.profile = this.profile;
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES, passed to the kernel as given: a mainline kernel refuses pinbox's
   * out-of-tree RWX attributes with EINVAL (outside its supported mask), one before 6.8 has no
   * such ioctl (ENOTTY) — the kernel's answer, not pinbox's (docs/memory-protection.md §3).
   */
  setMemoryAttributes(attributes: KvmMemoryAttributes): void {
    const call = 'KVM_SET_MEMORY_ATTRIBUTES';
    this.#fd.check(call);
    const v = new DataView(new ArrayBuffer(abi.KVM_MEMORY_ATTRIBUTES_SIZE));
    const fields = [attributes.address, attributes.size, attributes.attributes, attributes.flags ?? 0n];
    fields.forEach((x, i) => {
      if (typeof x !== 'bigint' || x < 0n || x >= 1n << 64n) throw new KvmError('EINVAL', call, 'every field must be a u64 bigint');
      v.setBigUint64(8 * i, x, true);
    });
    this.#fd.ioctlPointer(call, abi.KVM_SET_MEMORY_ATTRIBUTES, new Uint8Array(v.buffer));
  }

  /** KVM_X86_SET_MSR_FILTER, from the model's MsrFilterSpec (msr-filter.ts). */
  setMsrFilter(filter: MsrFilterSpec): void {
    setMsrFilter(this.#fd, filter);
  }

  /** KVM_CREATE_VCPU, its kvm_run mapped and its signal mask set for run()'s deadline. */
  createVcpu(id: number): VcpuFd {
    const call = 'KVM_CREATE_VCPU';
    if (!Number.isInteger(id) || id < 0 || id > 0xffff_ffff) throw new KvmError('EINVAL', call, `vCPU id must be a u32, got ${String(id)}`);
    const fd = this.#fd.ioctlValue(call, KVM_CREATE_VCPU, id);
    const vcpu = new VcpuFd(id, new KvmFd(this.#fd.libc, fd, `vCPU ${id}`), this.vcpuMmapSize, this.#heki, this.supportedCpuid);
    this.#vcpus.set(id, vcpu);
    return vcpu;
  }

  /**
   * Closes the VM and every vCPU made from it; its memory is released (a view still held reads
   * zeros) and every later call, on the VM, its memory or its vCPUs, is EBADF.
   */
  close(): void {
    if (this.#fd.closed) return;
    for (const vcpu of this.#vcpus.values()) vcpu.close();
    this.#fd.close();
    this.#memory.release();
  }
}
