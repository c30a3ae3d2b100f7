/**
 * KVM's paravirtual MSRs (kvmclock, async PF, steal time, PV EOI, poll control), from
 * kvm_{set,get}_msr_common() in arch/x86/kvm/msrs.c. Each needs its KVM_FEATURE_* bit
 * (guest_pv_has(), binding only under KVM_CAP_ENFORCE_PV_FEATURE_CPUID) or is UNSUPPORTED.
 *
 * MODEL DECISIONS: the kvmclock page (MSR_KVM_SYSTEM_TIME*), the steal-time record and
 * async page faults are not produced — the MSRs validate and store their values only. The
 * wall-clock MSRs do write `struct pvclock_wall_clock` into guest memory, with kvmclock's
 * zero at VM creation.
 */
import * as abi from '../../../protocol/abi.js';
import { guestPvHas } from '../cpuid.js';
import { KVM_MSR_RET_UNSUPPORTED, type MsrAccess, type MsrHandler, type MsrVcpu, type MsrVmState } from './msr-vcpu.js';

type PvField = 'systemTime' | 'asyncPfEn' | 'asyncPfInt' | 'stealTime' | 'pvEoi' | 'pollControl';

const EFAULT = -abi.Errno.EFAULT;

function pvHas(v: MsrVcpu, feature: number): boolean {
  return guestPvHas(v.cpuid, v.pvEnforce, feature);
}

/** kvm_gfn_to_hva_cache_init() succeeds only for guest-physical ranges inside memory. */
function gpaMapped(vm: MsrVmState, gpa: bigint, length: number): boolean {
  return gpa + BigInt(length) <= BigInt(vm.memory.size);
}

/** A per-vCPU PV MSR: `check` validates a write (0 to store it). */
function pvMsr(feature: number, field: PvField, check: (v: MsrVcpu, a: MsrAccess) => number): MsrHandler {
  return {
    advertised: true,
    get(v, a) {
      if (!pvHas(v, feature)) return KVM_MSR_RET_UNSUPPORTED;
      a.data = v.msrState[field];
      return 0;
    },
    set(v, a) {
      if (!pvHas(v, feature)) return KVM_MSR_RET_UNSUPPORTED;
      const r = check(v, a);
      if (r === 0) v.msrState[field] = a.data;
      return r;
    },
  };
}

/** The per-VM wall-clock MSR: kvm->arch.wall_clock, and kvm_write_wall_clock(). */
function wallClockMsr(feature: number): MsrHandler {
  return {
    advertised: true,
    get(v, a) {
      if (!pvHas(v, feature)) return KVM_MSR_RET_UNSUPPORTED;
      a.data = v.vm.wallClock;
      return 0;
    },
    set(v, a) {
      if (!pvHas(v, feature)) return KVM_MSR_RET_UNSUPPORTED;
      v.vm.wallClock = a.data;
      writeWallClock(v.vm, a.data);
      return 0;
    },
  };
}

/**
 * kvm_write_wall_clock(): bump the version to odd, write {version, sec, nsec}, bump it to
 * even. Nothing is written for GPA 0 or a structure outside memory (kvm_read_guest fails).
 */
export function writeWallClock(vm: MsrVmState, gpa: bigint): void {
  if (gpa === 0n || !gpaMapped(vm, gpa, 12)) return;
  const at = Number(gpa);
  let version = vm.memory.read32(at);
  if (version & 1) version++;
  version = (version + 1) >>> 0;
  vm.memory.write32(at, version);
  const epoch = vm.wallClockEpochNs;
  vm.memory.write32(at + 4, Number(BigInt.asUintN(32, epoch / 1_000_000_000n)));
  vm.memory.write32(at + 8, Number(epoch % 1_000_000_000n));
  vm.memory.write32(at, (version + 1) >>> 0);
}

const accept = (): number => 0;

export const KVM_PV_MSRS: ReadonlyArray<readonly [number, MsrHandler]> = [
  [abi.MSR_KVM_WALL_CLOCK, wallClockMsr(abi.KVM_FEATURE_CLOCKSOURCE)],
  [abi.MSR_KVM_WALL_CLOCK_NEW, wallClockMsr(abi.KVM_FEATURE_CLOCKSOURCE2)],
  [abi.MSR_KVM_SYSTEM_TIME, pvMsr(abi.KVM_FEATURE_CLOCKSOURCE, 'systemTime', accept)],
  [abi.MSR_KVM_SYSTEM_TIME_NEW, pvMsr(abi.KVM_FEATURE_CLOCKSOURCE2, 'systemTime', accept)],
  // kvm_pv_enable_async_pf()
  [abi.MSR_KVM_ASYNC_PF_EN, pvMsr(abi.KVM_FEATURE_ASYNC_PF, 'asyncPfEn', (v, a) => {
    const data = a.data;
    if (data & 0x30n) return 1;
    if ((data & abi.KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT) !== 0n && !pvHas(v, abi.KVM_FEATURE_ASYNC_PF_VMEXIT)) return 1;
    if ((data & abi.KVM_ASYNC_PF_DELIVERY_AS_INT) !== 0n && !pvHas(v, abi.KVM_FEATURE_ASYNC_PF_INT)) return 1;
    if ((data & abi.KVM_MSR_ENABLED) !== 0n && !gpaMapped(v.vm, data & ~0x3fn, 8)) return 1;
    return 0;
  })],
  // kvm_pv_enable_async_pf_int(): bits 63:8 are reserved.
  [abi.MSR_KVM_ASYNC_PF_INT, pvMsr(abi.KVM_FEATURE_ASYNC_PF_INT, 'asyncPfInt', (_v, a) => (a.data >> 8n ? 1 : 0))],
  [abi.MSR_KVM_ASYNC_PF_ACK, {
    advertised: true,
    get(v, a) {
      if (!pvHas(v, abi.KVM_FEATURE_ASYNC_PF_INT)) return KVM_MSR_RET_UNSUPPORTED;
      a.data = 0n;
      return 0;
    },
    set(v) {
      return pvHas(v, abi.KVM_FEATURE_ASYNC_PF_INT) ? 0 : KVM_MSR_RET_UNSUPPORTED;
    },
  }],
  [abi.MSR_KVM_STEAL_TIME, pvMsr(abi.KVM_FEATURE_STEAL_TIME, 'stealTime', (_v, a) => (a.data & abi.KVM_STEAL_RESERVED_MASK ? 1 : 0))],
  /**
   * kvm_lapic_set_pv_eoi(): the address must be 4-byte aligned (else 1); enabling it at a
   * GPA outside memory fails the cache setup with -EFAULT, which is not a #GP: with no INVAL
   * exit enabled, KVM_RUN itself fails with EFAULT (docs/msr-filter.md §3, §8.6).
   */
  [abi.MSR_KVM_PV_EOI_EN, pvMsr(abi.KVM_FEATURE_PV_EOI, 'pvEoi', (v, a) => {
    const addr = a.data & ~abi.KVM_MSR_ENABLED;
    if (addr & 3n) return 1;
    if ((a.data & abi.KVM_MSR_ENABLED) !== 0n && !gpaMapped(v.vm, addr, 1)) return EFAULT;
    return 0;
  })],
  // "only enable bit supported"
  [abi.MSR_KVM_POLL_CONTROL, pvMsr(abi.KVM_FEATURE_POLL_CONTROL, 'pollControl', (_v, a) => (a.data & ~1n ? 1 : 0))],
];
