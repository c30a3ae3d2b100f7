/**
 * The real /dev/kvm, in the manner of kvm-ioctls `Kvm`, the KvmSystem of host/kvm/api/system.ts:
 * KVM_CHECK_EXTENSION, KVM_GET_MSR_INDEX_LIST and KVM_CREATE_VM on the system fd, plus what a
 * real VMM needs from it (KVM_GET_API_VERSION, KVM_GET_VCPU_MMAP_SIZE, KVM_GET_SUPPORTED_CPUID).
 * `openKvm()` is the only way in: it loads koffi (libc.ts) the first time it is called.
 */
import { DEFAULT_HEKI_PROFILE, HEKI_PROFILES, type HekiAbiProfile, type HekiProfileName } from '../../../protocol/abi.js';
import { KvmError } from '../api/errors.js';
import type { KvmSystem, VmOptions } from '../api/system.js';
import { decodeCpuid, encodeCpuid, type CpuidEntry2 } from './cpuid.js';
import { errnoError } from './errno.js';
import { KvmFd } from './fd.js';
import { loadLibc, O_CLOEXEC, O_RDWR, type Libc } from './libc.js';
import { Mapping } from './mapping.js';
import { RealKvmUnavailable } from './unavailable.js';
import {
  KVM_API_VERSION, KVM_CHECK_EXTENSION, KVM_CREATE_VM, KVM_GET_API_VERSION, KVM_GET_MSR_INDEX_LIST, KVM_GET_SUPPORTED_CPUID,
  KVM_GET_VCPU_MMAP_SIZE, KVM_MAX_CPUID_ENTRIES, KVM_SET_USER_MEMORY_REGION, MEMORY_REGION, SIZEOF_MSR_LIST_HEADER,
  SIZEOF_USERSPACE_MEMORY_REGION,
} from './uapi.js';
import { VmFd } from './vm.js';

export interface RealKvmOptions {
  /** The KVM device (default /dev/kvm). */
  path?: string;
  /** The Heki ABI numbers callers mean (default 'v2', as the model's). */
  profile?: HekiProfileName;
  /**
   * The kernel implements Heki: true under either profile's numbers, a profile's name under that
   * one's only (default false: mainline KVM has no Heki). host/vmm's surveyHost() tells by behaviour.
   */
  hostHeki?: boolean | HekiProfileName;
}

/** The model's VmOptions that describe a modelled host: real KVM has the real one. */
const MODEL_ONLY_OPTIONS: Readonly<Record<string, string>> = {
  hostCr0: 'real KVM reads the host\'s own CR0',
  hostCr4: 'real KVM reads the host\'s own CR4',
  cr4PinnableMask: 'the host kernel\'s cr4_pinned_mask is its own',
  guestCpuid: 'set the guest CPUID per vCPU with setCpuid2()',
  ignoreMsrs: 'kvm.ignore_msrs is a module parameter of the host',
  maxVcpus: 'the host kernel sets KVM_MAX_VCPUS',
  andersen: 'John Andersen\'s CR-pinning MSRs were never merged: no kernel has them',
};
const DEFAULT_MEMORY = 16 * 1024 * 1024;

/** Opens the machine's KVM. Rejects with RealKvmUnavailable (no koffi, wrong platform) or KvmError (open, version). */
export async function openKvm(options: RealKvmOptions = {}): Promise<Kvm> {
  const libc = await loadLibc();
  return Kvm.open(libc, options);
}

export class Kvm implements KvmSystem {
  /** KVM_GET_API_VERSION (12). */
  readonly apiVersion: number;
  readonly profile: HekiAbiProfile;
  /** As opened (RealKvmOptions.hostHeki). */
  readonly hostHeki: boolean | HekiProfileName;
  readonly #fd: KvmFd;
  readonly #vcpuMmapSize: number;
  #supportedCpuid: readonly CpuidEntry2[] | undefined;

  private constructor(fd: KvmFd, profile: HekiAbiProfile, hostHeki: boolean | HekiProfileName) {
    this.#fd = fd;
    this.profile = profile;
    this.hostHeki = hostHeki;
    this.apiVersion = fd.ioctlValue('KVM_GET_API_VERSION', KVM_GET_API_VERSION);
    if (this.apiVersion !== KVM_API_VERSION) {
      fd.close();
      throw new RealKvmUnavailable('api-version', `KVM_GET_API_VERSION answered ${this.apiVersion}; pinbox speaks version ${KVM_API_VERSION}`);
    }
    this.#vcpuMmapSize = fd.ioctlValue('KVM_GET_VCPU_MMAP_SIZE', KVM_GET_VCPU_MMAP_SIZE);
  }

  /** @internal openKvm() is the way in. */
  static open(libc: Libc, options: RealKvmOptions): Kvm {
    const path = options.path ?? '/dev/kvm';
    const profileName = options.profile ?? DEFAULT_HEKI_PROFILE;
    if (!(profileName in HEKI_PROFILES)) throw new KvmError('EINVAL', `open(${path})`, `unknown Heki profile ${String(profileName)}`);
    const fd = libc.open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) throw errnoError(libc.errno(), `open(${path})`, 'the KVM device');
    const kvmFd = new KvmFd(libc, fd, path);
    try {
      const hostHeki = options.hostHeki ?? false;
      if (typeof hostHeki !== 'boolean' && !(hostHeki in HEKI_PROFILES)) throw new KvmError('EINVAL', `open(${path})`, `hostHeki must be a boolean or a Heki profile, got ${String(hostHeki)}`);
      return new Kvm(kvmFd, HEKI_PROFILES[profileName], hostHeki);
    } catch (e) {
      kvmFd.close();
      throw e;
    }
  }

  get closed(): boolean {
    return this.#fd.closed;
  }

  /** KVM_CHECK_EXTENSION on the system fd (the Heki caps as on a VM: see vm.ts). */
  checkExtension(cap: number): number {
    this.#fd.check('KVM_CHECK_EXTENSION');
    if (!this.hasHeki(this.profile.name) && (cap === this.profile.KVM_CAP_HEKI_CONFIGURE || cap === this.profile.KVM_CAP_HEKI_DENIAL)) return 0;
    return this.#fd.ioctlValue(`KVM_CHECK_EXTENSION(${cap})`, KVM_CHECK_EXTENSION, cap);
  }

  /** Whether the kernel was said to implement Heki under this profile's numbers. */
  hasHeki(profile: HekiProfileName): boolean {
    return this.hostHeki === true || this.hostHeki === profile;
  }

  /** KVM_CHECK_EXTENSION as the kernel answers it, whatever the number means there. */
  checkExtensionRaw(cap: number): number {
    return this.#fd.ioctlValue(`KVM_CHECK_EXTENSION(${cap})`, KVM_CHECK_EXTENSION, cap);
  }

  /**
   * KVM_GET_MSR_INDEX_LIST: asked first with room for none (E2BIG, and the kernel writes how many
   * there are), then with room for them all.
   */
  getMsrIndexList(): number[] {
    const call = 'KVM_GET_MSR_INDEX_LIST';
    const count = new DataView(new ArrayBuffer(SIZEOF_MSR_LIST_HEADER));
    try {
      this.#fd.ioctlPointer(call, KVM_GET_MSR_INDEX_LIST, new Uint8Array(count.buffer));
    } catch (e) {
      if (!(e instanceof KvmError && e.code === 'E2BIG')) throw e;
    }
    const n = count.getUint32(0, true);
    const list = new DataView(new ArrayBuffer(SIZEOF_MSR_LIST_HEADER + 4 * n));
    list.setUint32(0, n, true);
    this.#fd.ioctlPointer(call, KVM_GET_MSR_INDEX_LIST, new Uint8Array(list.buffer));
    return Array.from({ length: list.getUint32(0, true) }, (_, i) => list.getUint32(SIZEOF_MSR_LIST_HEADER + 4 * i, true));
  }

  /** KVM_GET_VCPU_MMAP_SIZE: the bytes of a vCPU's kvm_run mapping (with the PIO data page). */
  get vcpuMmapSize(): number {
    this.#fd.check('KVM_GET_VCPU_MMAP_SIZE');
    return this.#vcpuMmapSize;
  }

  /** KVM_GET_SUPPORTED_CPUID: what this kernel can give a guest. */
  getSupportedCpuid(): CpuidEntry2[] {
    const buf = encodeCpuid([], KVM_MAX_CPUID_ENTRIES, 'KVM_GET_SUPPORTED_CPUID');
    this.#fd.ioctlPointer('KVM_GET_SUPPORTED_CPUID', KVM_GET_SUPPORTED_CPUID, new Uint8Array(buf.buffer));
    return decodeCpuid(buf);
  }

  /** KVM_CREATE_VM (default type), with its memory slot: every option is checked first. */
  createVm(options: VmOptions = {}): VmFd {
    const call = 'KVM_CREATE_VM';
    if (typeof options !== 'object' || options === null) throw new KvmError('EINVAL', call, 'options must be an object');
    for (const key of Object.keys(options)) {
      const why = MODEL_ONLY_OPTIONS[key];
      if (why !== undefined) throw new KvmError('EINVAL', call, `option "${key}" is the model's only: ${why}`);
      if (key !== 'memorySize' && key !== 'profile') throw new KvmError('EINVAL', call, `unknown option "${key}"`);
    }
    const profileName = options.profile ?? this.profile.name;
    if (!(profileName in HEKI_PROFILES)) throw new KvmError('EINVAL', call, `profile must be 'v2' or 'v3', got ${String(profileName)}`);
    const size = options.memorySize ?? DEFAULT_MEMORY;
    if (!Number.isInteger(size) || size <= 0 || size % 4096 !== 0 || size > 2 ** 32) {
      throw new KvmError('EINVAL', call, `memorySize must be a positive multiple of 4096 up to 4 GiB, got ${String(size)}`);
    }
    const libc = this.#fd.libc;
    const vmFd = new KvmFd(libc, this.#fd.ioctlValue(call, KVM_CREATE_VM, 0), 'the VM');
    let memory: Mapping | undefined;
    try {
      memory = Mapping.anonymous(libc, size, call);
      const region = new DataView(new ArrayBuffer(SIZEOF_USERSPACE_MEMORY_REGION));
      region.setUint32(MEMORY_REGION.slot, 0, true);
      region.setUint32(MEMORY_REGION.flags, 0, true);
      region.setBigUint64(MEMORY_REGION.guest_phys_addr, 0n, true);
      region.setBigUint64(MEMORY_REGION.memory_size, BigInt(size), true);
      region.setBigUint64(MEMORY_REGION.userspace_addr, memory.address, true);
      vmFd.ioctlPointer('KVM_SET_USER_MEMORY_REGION', KVM_SET_USER_MEMORY_REGION, new Uint8Array(region.buffer));
      // Read once per Kvm: where setCpuid() starts on a vCPU with no CPUID yet.
      const supported = (this.#supportedCpuid ??= Object.freeze(this.getSupportedCpuid()));
      return new VmFd(vmFd, memory, HEKI_PROFILES[profileName], this.hasHeki(profileName), this.#vcpuMmapSize, () => supported);
    } catch (e) {
      vmFd.close();
      memory?.release();
      throw e;
    }
  }

  /** Closes /dev/kvm. VMs made from it stay usable, as in the kernel. */
  close(): void {
    this.#fd.close();
  }
}
