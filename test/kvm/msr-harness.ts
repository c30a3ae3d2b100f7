/**
 * A stand-alone MsrVcpu for the MSR-table tests: the KVM-owned MSR state, the LAPIC and the
 * guest CPUID are the real ones; the core-owned MSRs (the ones GuestCpu.readMsr/commitMsr
 * serve) are kept in a plain register store, with CR0 fixed at the boot value unless a test
 * sets it. It runs no guest code; the RDMSR/WRMSR glue is tested on the real core.
 */
import { AndersenPins } from '../../host/kvm/andersen.js';
import * as abi from '../../protocol/abi.js';
import { KVM_MSR_RET_UNSUPPORTED } from '../../host/kvm/msrs/msr-vcpu.js';
import { resolveGuestCpuid } from '../../host/kvm/cpuid.js';
import { type GuestCpuid, type GuestCpuidOptions } from '../../host/kvm/api/cpuid.js';
import { LocalApic } from '../../host/kvm/lapic.js';
import { kvmDoMsrAccess } from '../../host/kvm/msr-table.js';
import { type MsrAccess, type MsrCpuView, type MsrVcpu, type MsrVmState, VcpuMsrState } from '../../host/kvm/msrs/msr-vcpu.js';
import type { ControlRegister } from '../../host/x86/guest-cpu.js';
import { PhysicalMemory } from '../../host/x86/memory.js';

/** The MSRs GuestCpu documents as core-owned. */
export const CORE_OWNED_MSRS = [
  abi.MSR_EFER, abi.MSR_STAR, abi.MSR_LSTAR, abi.MSR_CSTAR, abi.MSR_SYSCALL_MASK, abi.MSR_FS_BASE,
  abi.MSR_GS_BASE, abi.MSR_KERNEL_GS_BASE, abi.MSR_IA32_SYSENTER_CS, abi.MSR_IA32_SYSENTER_ESP,
  abi.MSR_IA32_SYSENTER_EIP, abi.MSR_IA32_TSC, abi.MSR_TSC_AUX,
];

export class CoreMsrStore implements MsrCpuView {
  readonly msrs = new Map<number, bigint>(CORE_OWNED_MSRS.map((i) => [i, 0n]));
  cr0 = 0x80050033n;

  constructor() {
    this.msrs.set(abi.MSR_EFER, abi.EFER_SCE | abi.EFER_LME | abi.EFER_LMA | abi.EFER_NXE);
  }

  readMsr(index: number): bigint | undefined {
    return this.msrs.get(index);
  }

  commitMsr(index: number, value: bigint): boolean {
    if (!this.msrs.has(index)) return false;
    this.msrs.set(index, value);
    return true;
  }

  readCr(cr: ControlRegister): bigint {
    return cr === 0 ? this.cr0 : 0n;
  }
}

export interface HarnessOptions {
  cpuid?: GuestCpuidOptions;
  pvEnforce?: boolean;
  ignoreMsrs?: boolean;
  hostVirtAddrBits?: number;
  vcpuId?: number;
  memorySize?: number;
  /** The VM speaks John Andersen's CR-pinning ABI. */
  andersen?: boolean;
}

export class MsrHarness implements MsrVcpu {
  readonly cpu = new CoreMsrStore();
  readonly msrState = new VcpuMsrState();
  readonly lapic: LocalApic;
  readonly vm: MsrVmState;
  readonly andersenPins = new AndersenPins();
  cpuid: GuestCpuid;
  pvEnforce: boolean;
  readonly access: MsrAccess = { index: 0, data: 0n, hostInitiated: false };

  constructor(o: HarnessOptions = {}) {
    this.cpuid = resolveGuestCpuid(o.cpuid, 'test');
    this.pvEnforce = o.pvEnforce ?? false;
    this.lapic = new LocalApic(o.vcpuId ?? 0, () => this.cpuid);
    this.lapic.reset(false);
    this.vm = {
      memory: new PhysicalMemory(o.memorySize ?? 1024 * 1024),
      wallClock: 0n,
      wallClockEpochNs: 1_700_000_000_123_456_789n,
      hostVirtAddrBits: o.hostVirtAddrBits ?? 48,
      ignoreMsrs: o.ignoreMsrs ?? false,
      andersen: o.andersen ?? false,
    };
  }

  /** A guest (or, with host = true, a host-initiated) read: [result, data]. */
  read(index: number, host = false): [number, bigint] {
    const a = this.access;
    a.index = index;
    a.data = 0xdeadn;
    a.hostInitiated = host;
    const r = kvmDoMsrAccess(this, a, false);
    return [r, a.data];
  }

  /** A guest (or host-initiated) write: the result code. */
  write(index: number, data: bigint, host = false): number {
    const a = this.access;
    a.index = index;
    a.data = data;
    a.hostInitiated = host;
    return kvmDoMsrAccess(this, a, true);
  }
}

export const INVALID = 1;
export const UNSUPPORTED = KVM_MSR_RET_UNSUPPORTED;
