/**
 * The guest CPUID model: which features a vCPU has (what KVM_SET_CPUID2 would have given
 * it), the CR4 bits that makes reserved (__cr4_reserved_bits() in arch/x86/kvm/x86.h), and
 * the CPUID leaves KVM returns to the guest (kvm_cpuid() in arch/x86/kvm/cpuid.c), including
 * KVM's own 0x40000000 signature and 0x40000001 PV-feature leaves.
 */
import * as abi from '../../protocol/abi.js';
import { CR4_KNOWN_BITS } from './control-registers.js';
import type { GuestCpuid, GuestCpuidOptions } from './api/cpuid.js';
import { KvmError } from './api/errors.js';
import { isU32 } from './u64.js';

const bit = (n: number): number => 2 ** n;

/**
 * The PV features a QEMU `-cpu host` guest sees by default: kvmclock (both MSR pairs),
 * nopiodelay, async PF (+ interrupt delivery), steal time, PV EOI, PV unhalt, PV TLB flush,
 * PV send-IPI, poll control, PV sched-yield, MSI extended destination ID, clocksource
 * stable bit. A pinbox model decision.
 */
export const DEFAULT_KVM_PV_FEATURES =
  bit(abi.KVM_FEATURE_CLOCKSOURCE) + bit(abi.KVM_FEATURE_NOP_IO_DELAY) + bit(abi.KVM_FEATURE_CLOCKSOURCE2) +
  bit(abi.KVM_FEATURE_ASYNC_PF) + bit(abi.KVM_FEATURE_STEAL_TIME) + bit(abi.KVM_FEATURE_PV_EOI) +
  bit(abi.KVM_FEATURE_PV_UNHALT) + bit(abi.KVM_FEATURE_PV_TLB_FLUSH) + bit(abi.KVM_FEATURE_PV_SEND_IPI) +
  bit(abi.KVM_FEATURE_POLL_CONTROL) + bit(abi.KVM_FEATURE_PV_SCHED_YIELD) + bit(abi.KVM_FEATURE_ASYNC_PF_INT) +
  bit(abi.KVM_FEATURE_MSI_EXT_DEST_ID) + bit(abi.KVM_FEATURE_CLOCKSOURCE_STABLE_BIT);

/**
 * The default guest: SMEP, SMAP, UMIP, FSGSBASE, NX, RDTSCP and x2APIC; no CET, PKU, LA57,
 * VMX, PCID, XSAVE, RDPID, SPEC_CTRL, FLUSH_L1D or TSC-deadline timer; MAXPHYADDR 46 (the
 * value the x86 core is asked to use for reserved-bit checks as well).
 */
export const DEFAULT_GUEST_CPUID: GuestCpuid = Object.freeze({
  smep: true,
  smap: true,
  umip: true,
  fsgsbase: true,
  pku: false,
  la57: false,
  cet: false,
  x2apic: true,
  nx: true,
  pcid: false,
  xsave: false,
  rdtscp: true,
  rdpid: false,
  vmx: false,
  specCtrl: false,
  flushL1d: false,
  tscDeadline: false,
  kvmPvFeatures: DEFAULT_KVM_PV_FEATURES,
  maxPhysAddr: 46,
});

/** Fills in a partial CPUID over `base`, rejecting unknown keys and values of the wrong type. */
export function resolveGuestCpuid(options: GuestCpuidOptions | undefined, ioctl: string, base = DEFAULT_GUEST_CPUID): GuestCpuid {
  if (options === undefined) return base;
  if (typeof options !== 'object' || options === null) throw new KvmError('EINVAL', ioctl, 'guestCpuid must be an object');
  const out: Record<string, boolean | number> = { ...base };
  for (const [key, value] of Object.entries(options)) {
    if (!(key in base)) throw new KvmError('EINVAL', ioctl, `guestCpuid has no feature "${key}"`);
    if (value === undefined) continue;
    if (key === 'kvmPvFeatures') {
      if (!isU32(value)) throw new KvmError('EINVAL', ioctl, `guestCpuid.kvmPvFeatures must be a u32, got ${String(value)}`);
    } else if (key === 'maxPhysAddr') {
      if (!Number.isInteger(value) || (value as number) < 36 || (value as number) > 52) {
        throw new KvmError('EINVAL', ioctl, `guestCpuid.maxPhysAddr must be an integer 36..52, got ${String(value)}`);
      }
    } else if (typeof value !== 'boolean') {
      throw new KvmError('EINVAL', ioctl, `guestCpuid.${key} must be a boolean, got ${String(value)}`);
    }
    out[key] = value as boolean | number;
  }
  return Object.freeze(out) as unknown as GuestCpuid;
}

/**
 * vcpu->arch.cr4_guest_rsvd_bits: every bit KVM does not know, plus the bits whose feature
 * the guest lacks (__cr4_reserved_bits()). MODEL DECISION: the modelled KVM supports every
 * feature this model can give a guest, so KVM's own cr4_reserved_bits adds nothing.
 */
export function cr4GuestReservedBits(c: GuestCpuid): bigint {
  let reserved = ~CR4_KNOWN_BITS & ((1n << 64n) - 1n);
  if (!c.xsave) reserved |= abi.X86_CR4_OSXSAVE;
  if (!c.smep) reserved |= abi.X86_CR4_SMEP;
  if (!c.smap) reserved |= abi.X86_CR4_SMAP;
  if (!c.fsgsbase) reserved |= abi.X86_CR4_FSGSBASE;
  if (!c.pku) reserved |= abi.X86_CR4_PKE;
  if (!c.la57) reserved |= abi.X86_CR4_LA57;
  if (!c.umip) reserved |= abi.X86_CR4_UMIP;
  if (!c.vmx) reserved |= abi.X86_CR4_VMXE;
  if (!c.pcid) reserved |= abi.X86_CR4_PCIDE;
  // No LAM and no FRED in this model.
  reserved |= abi.X86_CR4_LAM_SUP | abi.X86_CR4_FRED;
  if (!c.cet) reserved |= abi.X86_CR4_CET;
  return reserved;
}

/** guest_pv_has(): the PV feature bits bind only once KVM_CAP_ENFORCE_PV_FEATURE_CPUID is on. */
export function guestPvHas(c: GuestCpuid, enforce: boolean, feature: number): boolean {
  return !enforce || (c.kvmPvFeatures & bit(feature)) !== 0;
}

/** The vCPU state the dynamic CPUID bits reflect (kvm_update_cpuid_runtime()). */
export interface CpuidRuntime {
  readonly vcpuId: number;
  readonly cr4: bigint;
  readonly apicBase: bigint;
}

const VENDOR_INTEL = [0x756e6547, 0x6c65746e, 0x49656e69]; // "Genu" "ntel" "ineI": EBX, ECX, EDX
const KVM_SIGNATURE = [0x4b4d564b, 0x564b4d56, 0x0000004d]; // "KVMK" "VMKV" "M\0\0\0"
/** Family 6 model 0x6a stepping 6 (Ice Lake-SP): a pinbox model decision. */
const FAMILY_MODEL_STEPPING = 0x000606a6;

function maxBasicLeaf(c: GuestCpuid): number {
  return c.xsave ? 0xd : 0x7;
}

/**
 * CPUID(leaf, subleaf) as KVM answers it, written into `out` as [EAX, EBX, ECX, EDX]. A leaf
 * inside a class's range with no entry reads as zeros; a leaf past its class's maximum gets
 * the highest basic leaf, as Intel CPUs do (get_out_of_range_cpuid_entry()).
 */
export function kvmCpuid(c: GuestCpuid, rt: CpuidRuntime, leaf: number, subleaf: number, out: Uint32Array): void {
  out.fill(0);
  if (fillLeaf(c, rt, leaf, subleaf, out)) return;
  if (leafInRange(c, leaf)) return;
  fillLeaf(c, rt, maxBasicLeaf(c), 0, out);
}

function leafInRange(c: GuestCpuid, leaf: number): boolean {
  if (leaf >= 0x40000000 && leaf <= 0x4fffffff) return leaf >= 0x40000000 && leaf <= 0x40000001;
  if (leaf >= 0xc0000000) return false;
  if (leaf >= 0x80000000) return leaf <= 0x80000008;
  return leaf <= maxBasicLeaf(c);
}

/** Writes an entry the model has; false if there is none for (leaf, subleaf). */
function fillLeaf(c: GuestCpuid, rt: CpuidRuntime, leaf: number, subleaf: number, out: Uint32Array): boolean {
  switch (leaf) {
    case 0x0:
      out[0] = maxBasicLeaf(c);
      out[1] = VENDOR_INTEL[0]!;
      out[2] = VENDOR_INTEL[1]!;
      out[3] = VENDOR_INTEL[2]!;
      return true;
    case 0x1:
      out[0] = FAMILY_MODEL_STEPPING;
      // Initial APIC ID in 31:24, CLFLUSH line size 8 × 8 bytes in 15:8.
      out[1] = ((rt.vcpuId & 0xff) << 24 | 0x0800) >>> 0;
      out[2] =
        (abi.CPUID_1_ECX_HYPERVISOR |
          (c.vmx ? abi.CPUID_1_ECX_VMX : 0) |
          (c.pcid ? abi.CPUID_1_ECX_PCID : 0) |
          (c.x2apic ? abi.CPUID_1_ECX_X2APIC : 0) |
          (c.tscDeadline ? abi.CPUID_1_ECX_TSC_DEADLINE_TIMER : 0) |
          (c.xsave ? abi.CPUID_1_ECX_XSAVE : 0) |
          (c.xsave && (rt.cr4 & abi.X86_CR4_OSXSAVE) !== 0n ? abi.CPUID_1_ECX_OSXSAVE : 0)) >>> 0;
      out[3] =
        abi.CPUID_1_EDX_PSE | abi.CPUID_1_EDX_TSC | abi.CPUID_1_EDX_MSR | abi.CPUID_1_EDX_PAE |
        abi.CPUID_1_EDX_PGE | abi.CPUID_1_EDX_CMOV | abi.CPUID_1_EDX_PAT |
        ((rt.apicBase & abi.MSR_IA32_APICBASE_ENABLE) !== 0n ? abi.CPUID_1_EDX_APIC : 0);
      return true;
    case 0x7:
      if (subleaf !== 0) return false;
      out[1] =
        (c.fsgsbase ? abi.CPUID_7_EBX_FSGSBASE : 0) | (c.smep ? abi.CPUID_7_EBX_SMEP : 0) |
        (c.smap ? abi.CPUID_7_EBX_SMAP : 0);
      out[2] =
        (c.umip ? abi.CPUID_7_ECX_UMIP : 0) | (c.pku ? abi.CPUID_7_ECX_PKU : 0) |
        (c.pku && (rt.cr4 & abi.X86_CR4_PKE) !== 0n ? abi.CPUID_7_ECX_OSPKE : 0) |
        (c.cet ? abi.CPUID_7_ECX_CET_SS : 0) | (c.la57 ? abi.CPUID_7_ECX_LA57 : 0) |
        (c.rdpid ? abi.CPUID_7_ECX_RDPID : 0);
      out[3] =
        ((c.cet ? abi.CPUID_7_EDX_CET_IBT : 0) |
          (c.specCtrl ? abi.CPUID_7_EDX_SPEC_CTRL | abi.CPUID_7_EDX_INTEL_STIBP | abi.CPUID_7_EDX_SPEC_CTRL_SSBD : 0) |
          (c.flushL1d ? abi.CPUID_7_EDX_FLUSH_L1D : 0)) >>> 0;
      return true;
    case 0xd:
      if (!c.xsave || subleaf !== 0) return false;
      // XCR0 may hold x87|SSE; the legacy area plus header is 576 bytes.
      out[0] = 0x3;
      out[1] = 576;
      out[2] = 576;
      return true;
    case abi.KVM_CPUID_SIGNATURE:
      out[0] = abi.KVM_CPUID_FEATURES;
      out[1] = KVM_SIGNATURE[0]!;
      out[2] = KVM_SIGNATURE[1]!;
      out[3] = KVM_SIGNATURE[2]!;
      return true;
    case abi.KVM_CPUID_FEATURES:
      out[0] = c.kvmPvFeatures >>> 0;
      return true;
    case 0x80000000:
      out[0] = 0x80000008;
      return true;
    case 0x80000001:
      out[3] =
        (abi.CPUID_80000001_EDX_SYSCALL | (c.nx ? abi.CPUID_80000001_EDX_NX : 0) |
          abi.CPUID_80000001_EDX_PDPE1GB | (c.rdtscp ? abi.CPUID_80000001_EDX_RDTSCP : 0) |
          abi.CPUID_80000001_EDX_LM) >>> 0;
      return true;
    case 0x80000008:
      out[0] = c.maxPhysAddr | ((c.la57 ? 57 : 48) << 8);
      return true;
    default:
      return false;
  }
}
