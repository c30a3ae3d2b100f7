/**
 * TSC, TSC_AUX, PAT, MISC_ENABLE, POWER_CTL, SPEC_CTRL, FLUSH_CMD and XSS:
 * __kvm_set_msr()/__kvm_get_msr(), kvm_{set,get}_msr_common() (arch/x86/kvm/msrs.c) and
 * vmx_{set,get}_msr().
 */
import * as abi from '../../../protocol/abi.js';
import { commitCoreMsr, coreMsr, KVM_MSR_RET_UNSUPPORTED, readCoreMsr, type MsrAccess, type MsrHandler, type MsrVcpu } from './msr-vcpu.js';

type StateField = 'pat' | 'miscEnable' | 'powerCtl' | 'specCtrl' | 'xss';

/**
 * A KVM-owned MSR stored in VcpuMsrState[field]: reads return it (1 where `readable`
 * refuses); a write is judged by `check` (which may adjust `a.data`) and stored on 0.
 */
function kvmMsr(
  advertised: boolean,
  field: StateField,
  check: (v: MsrVcpu, a: MsrAccess) => number,
  readable: (v: MsrVcpu, a: MsrAccess) => boolean = () => true,
): MsrHandler {
  return {
    advertised,
    get(v, a) {
      if (!readable(v, a)) return 1;
      a.data = v.msrState[field];
      return 0;
    },
    set(v, a) {
      const r = check(v, a);
      if (r === 0) v.msrState[field] = a.data;
      return r;
    },
  };
}

/** TSC_AUX exists for the guest only with RDTSCP or RDPID; the host may always reach it. */
const guestHasTscAux = (v: MsrVcpu, a: MsrAccess): boolean => a.hostInitiated || v.cpuid.rdtscp || v.cpuid.rdpid;

/** kvm_pat_valid(): each byte a memory type 0, 1, 4, 5, 6 or 7 (2 and 3 are reserved). */
export function kvmPatValid(data: bigint): boolean {
  if (data & 0xf8f8f8f8f8f8f8f8n) return false;
  return (data | ((data & 0x0202020202020202n) << 1n)) === data;
}

/** guest_has_spec_ctrl_msr() */
const guestHasSpecCtrl = (v: MsrVcpu, a: MsrAccess): boolean => a.hostInitiated || v.cpuid.specCtrl;

/**
 * MODEL DECISION: the modelled host accepts IBRS|STIBP|SSBD in IA32_SPEC_CTRL
 * (kvm_spec_ctrl_test_value() asks the real host CPU).
 */
const SPEC_CTRL_HOST_BITS = abi.SPEC_CTRL_IBRS | abi.SPEC_CTRL_STIBP | abi.SPEC_CTRL_SSBD;
/** MISC_ENABLE bits the guest may not change (MSR_IA32_MISC_ENABLE_PMU_RO_MASK). */
const MISC_ENABLE_RO = abi.MSR_IA32_MISC_ENABLE_PEBS_UNAVAIL | abi.MSR_IA32_MISC_ENABLE_BTS_UNAVAIL;

export const PLATFORM_MSRS: ReadonlyArray<readonly [number, MsrHandler]> = [
  // A guest write moves the guest TSC to the value written (the offset absorbs it).
  [abi.MSR_IA32_TSC, coreMsr(true, () => 0)],
  [abi.MSR_TSC_AUX, {
    advertised: true,
    get(v, a) {
      if (!guestHasTscAux(v, a)) return 1;
      a.data = readCoreMsr(v, abi.MSR_TSC_AUX);
      return 0;
    },
    set(v, a) {
      if (!guestHasTscAux(v, a)) return 1;
      // Intel's reserved bits 63:32, enforced for the GenuineIntel guest model (host too).
      if (a.data >> 32n) return 1;
      commitCoreMsr(v, abi.MSR_TSC_AUX, a.data);
      return 0;
    },
  }],
  [abi.MSR_IA32_CR_PAT, kvmMsr(true, 'pat', (_v, a) => (kvmPatValid(a.data) ? 0 : 1))],
  [abi.MSR_IA32_MISC_ENABLE, kvmMsr(
    true,
    'miscEnable',
    (v, a) => {
      // KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT is on by default: the MWAIT bit is plain storage.
      if (a.hostInitiated) return 0;
      const old = v.msrState.miscEnable;
      if ((old ^ a.data) & MISC_ENABLE_RO) return 1;
      // EMON is read-only too, but writes to it are ignored rather than refused.
      a.data = (a.data & ~abi.MSR_IA32_MISC_ENABLE_EMON) | (old & abi.MSR_IA32_MISC_ENABLE_EMON);
      return 0;
    },
  )],
  [abi.MSR_IA32_POWER_CTL, kvmMsr(true, 'powerCtl', () => 0)],
  [abi.MSR_IA32_SPEC_CTRL, kvmMsr(
    true,
    'specCtrl',
    (v, a) => (!guestHasSpecCtrl(v, a) || (a.data & ~SPEC_CTRL_HOST_BITS) !== 0n ? 1 : 0),
    guestHasSpecCtrl,
  )],
  // Write-only: a read falls through to "unknown" as in kvm_get_msr_common().
  [abi.MSR_IA32_FLUSH_CMD, {
    advertised: false,
    get: () => KVM_MSR_RET_UNSUPPORTED,
    set(v, a) {
      if (!a.hostInitiated && !v.cpuid.flushL1d) return 1;
      return a.data & ~abi.L1D_FLUSH ? 1 : 0;
    },
  }],
  /**
   * XSS with no XSAVES in the guest model (pinbox has none): KVM's own asymmetry — a guest
   * read is INVAL (returns 1), any write is UNSUPPORTED (UNKNOWN), docs/msr-filter.md §3.
   */
  [abi.MSR_IA32_XSS, kvmMsr(false, 'xss', () => KVM_MSR_RET_UNSUPPORTED, (_v, a) => a.hostInitiated)],
];
