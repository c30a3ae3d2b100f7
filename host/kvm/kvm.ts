/**
 * The model's system file descriptor (/dev/kvm), the KvmSystem of host/kvm/api/system.ts:
 * KVM_CHECK_EXTENSION, KVM_GET_MSR_INDEX_LIST and KVM_CREATE_VM. Each vCPU runs on host/x86's
 * `Cpu` unless a factory is given, so any other implementation of `GuestCpu` can be plugged in.
 */
import * as abi from '../../protocol/abi.js';
import { HEKI_PROFILES, type HekiProfileName } from '../../protocol/abi.js';
import { Cpu } from '../x86/cpu.js';
import { PhysicalMemory } from '../x86/memory.js';
import { KvmError } from './api/errors.js';
import type { ModelKvm } from './api/model.js';
import type { KvmSystem, VmOptions } from './api/system.js';
import { kvmCheckExtension, PINBOX_MAX_VCPUS } from './capabilities.js';
import { resolveGuestCpuid } from './cpuid.js';
import { EMULATED_MSRS } from './msr-table.js';
import { HekiState } from './heki.js';
import { Tracepoints } from './tracepoints.js';
import { toU64 } from './u64.js';
import { Vm, type CpuFactory } from './vm.js';
import { MemoryProtection } from './memory-protection.js';
import { VmArch } from './vm-arch.js';

export interface KvmOptions {
  /** Makes each vCPU's CPU (default: host/x86's `Cpu` over the VM's memory). */
  createCpu?: CpuFactory;
  /** The Heki profile whose cap numbers the system-level KVM_CHECK_EXTENSION answers (v2). */
  profile?: HekiProfileName;
}

/** The development host's CR0 as Heki reads it with read_cr0(): PG|AM|WP|NE|ET|MP|PE (docs/heki.md §8). */
export const DEFAULT_HOST_CR0 = 0x80050033n;

/**
 * The modelled host's CR4 as Heki reads it with __read_cr4() — a typical Intel host running
 * VMs: PSE|PAE|MCE|PGE|OSFXSR|OSXMMEXCPT|UMIP|VMXE|FSGSBASE|PCIDE|OSXSAVE|SMEP|SMAP|PKE, and
 * not CET, LA57 or FRED (docs/heki.md §8 assumes SMEP|SMAP|UMIP|FSGSBASE and not CET).
 * A pinbox model decision; VmOptions.hostCr4 overrides it.
 */
export const DEFAULT_HOST_CR4 =
  abi.X86_CR4_PSE | abi.X86_CR4_PAE | abi.X86_CR4_MCE | abi.X86_CR4_PGE | abi.X86_CR4_OSFXSR | abi.X86_CR4_OSXMMEXCPT |
  abi.X86_CR4_UMIP | abi.X86_CR4_VMXE | abi.X86_CR4_FSGSBASE | abi.X86_CR4_PCIDE | abi.X86_CR4_OSXSAVE |
  abi.X86_CR4_SMEP | abi.X86_CR4_SMAP | abi.X86_CR4_PKE; // 0x772ef0

const VM_OPTION_KEYS = new Set(['profile', 'hostCr0', 'hostCr4', 'cr4PinnableMask', 'guestCpuid', 'memorySize', 'ignoreMsrs', 'maxVcpus', 'hekiMemory', 'andersen']);
const CREATE_VM = 'KVM_CREATE_VM';

/** The default core: the modelled x86-64 CPU of host/x86, with block translation on. */
const createX86Cpu: CpuFactory = (memory) => new Cpu(memory);

export class Kvm implements KvmSystem, ModelKvm {
  /** KVM's tracepoints, for every VM made by this Kvm. */
  readonly tracepoints = new Tracepoints();
  private readonly createCpu: CpuFactory;
  private readonly profile: HekiProfileName;

  constructor(options: KvmOptions = {}) {
    this.createCpu = options.createCpu ?? createX86Cpu;
    this.profile = options.profile ?? abi.DEFAULT_HEKI_PROFILE;
    if (!(this.profile in HEKI_PROFILES)) throw new KvmError('EINVAL', 'open(/dev/kvm)', `unknown Heki profile ${String(this.profile)}`);
  }

  /** KVM_CHECK_EXTENSION on the system fd. */
  checkExtension(cap: number): number {
    return kvmCheckExtension(cap, HEKI_PROFILES[this.profile]);
  }

  /** The model's own calls (host/kvm/api/model.ts): its tracepoints. */
  get model(): ModelKvm {
    return this;
  }

  /** KVM_GET_MSR_INDEX_LIST: the MSRs the model's table emulates (x2APIC range aside). */
  getMsrIndexList(): number[] {
    return [...EMULATED_MSRS];
  }

  /** KVM_CREATE_VM: every option is checked before anything is made. */
  createVm(options: VmOptions = {}): Vm {
    if (typeof options !== 'object' || options === null) throw new KvmError('EINVAL', CREATE_VM, 'options must be an object');
    for (const key of Object.keys(options)) {
      if (!VM_OPTION_KEYS.has(key)) throw new KvmError('EINVAL', CREATE_VM, `unknown option "${key}"`);
    }
    // A VM takes the profile of the /dev/kvm it was created from unless told otherwise, so that
    // the caps its KVM_CHECK_EXTENSION answers match the system's.
    const profileName = options.profile ?? this.profile;
    if (!(profileName in HEKI_PROFILES)) throw new KvmError('EINVAL', CREATE_VM, `profile must be 'v2' or 'v3', got ${String(profileName)}`);
    const profile = HEKI_PROFILES[profileName];
    const hostCr0 = u64Option('hostCr0', options.hostCr0, DEFAULT_HOST_CR0);
    const hostCr4 = u64Option('hostCr4', options.hostCr4, DEFAULT_HOST_CR4);
    const pinnable = u64Option(
      'cr4PinnableMask',
      options.cr4PinnableMask,
      profileName === 'v3' ? abi.HEKI_CR4_PINNABLE_MASK_V3 : abi.HEKI_CR4_PINNABLE_MASK_V2,
    );
    const guestCpuid = resolveGuestCpuid(options.guestCpuid, CREATE_VM);
    const memorySize = options.memorySize ?? 16 * 1024 * 1024;
    if (!Number.isInteger(memorySize) || memorySize <= 0 || memorySize % 4096 !== 0 || memorySize > 2 ** 32) {
      throw new KvmError('EINVAL', CREATE_VM, `memorySize must be a positive multiple of 4096 up to 4 GiB, got ${String(memorySize)}`);
    }
    const ignoreMsrs = options.ignoreMsrs ?? false;
    if (typeof ignoreMsrs !== 'boolean') throw new KvmError('EINVAL', CREATE_VM, 'ignoreMsrs must be a boolean');
    const andersen = options.andersen ?? false;
    if (typeof andersen !== 'boolean') throw new KvmError('EINVAL', CREATE_VM, 'andersen must be a boolean');
    const maxVcpus = options.maxVcpus ?? PINBOX_MAX_VCPUS;
    if (!Number.isInteger(maxVcpus) || maxVcpus < 1 || maxVcpus > PINBOX_MAX_VCPUS) {
      throw new KvmError('EINVAL', CREATE_VM, `maxVcpus must be an integer 1..${PINBOX_MAX_VCPUS}, got ${String(maxVcpus)}`);
    }
    const hekiMemory = options.hekiMemory ?? profile.memory;
    if (hekiMemory !== 'v1' && hekiMemory !== 'v2' && hekiMemory !== 'none') {
      throw new KvmError('EINVAL', CREATE_VM, `hekiMemory must be 'v1', 'v2' or 'none', got ${String(hekiMemory)}`);
    }
    const memory = new PhysicalMemory(memorySize);
    const arch = new VmArch(
      memory,
      profile,
      new HekiState(hostCr0, hostCr4, pinnable),
      guestCpuid,
      ignoreMsrs,
      // max_host_virt_addr_bits(): the modelled host has LA57 iff its CR4 says so.
      (hostCr4 & abi.X86_CR4_LA57) !== 0n ? 57 : 48,
      // kvmclock counts from VM creation; the wall-clock MSRs report this instant.
      BigInt(Date.now()) * 1_000_000n,
      this.tracepoints,
      new MemoryProtection(memory, profile.KVM_EXIT_MEMORY_FAULT !== undefined),
      hekiMemory,
      andersen,
    );
    return new Vm(arch, this.createCpu, maxVcpus);
  }
}

function u64Option(name: string, value: unknown, fallback: bigint): bigint {
  if (value === undefined) return fallback;
  if (typeof value !== 'bigint' || toU64(value) === undefined) throw new KvmError('EINVAL', CREATE_VM, `${name} must be a u64 bigint, got ${String(value)}`);
  return value;
}
