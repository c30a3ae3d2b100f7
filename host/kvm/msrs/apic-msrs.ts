/** IA32_APIC_BASE and IA32_TSC_DEADLINE, both kept by the in-kernel LAPIC (lapic.ts). */
import { MSR_IA32_APICBASE, MSR_IA32_TSC_DEADLINE } from '../../../protocol/abi.js';
import type { MsrHandler } from './msr-vcpu.js';

export const APIC_MSRS: ReadonlyArray<readonly [number, MsrHandler]> = [
  [MSR_IA32_APICBASE, {
    advertised: false,
    get(v, a) {
      a.data = v.lapic.apicBase;
      return 0;
    },
    set(v, a) {
      return v.lapic.setBase(a.data, a.hostInitiated, v.cpuid.maxPhysAddr);
    },
  }],
  /**
   * Always accepted; it takes effect only in TSC-deadline timer mode. MODEL DECISION: the
   * MSR filter applies to it like to any MSR — upstream's IRQs-off fastpath WRMSR skips
   * the filter for TSC_DEADLINE, a flaw Sean Christopherson leaned towards fixing
   * (docs/msr-filter.md §2.6, §8.2).
   */
  [MSR_IA32_TSC_DEADLINE, {
    advertised: true,
    get(v, a) {
      a.data = v.lapic.readTscDeadline();
      return 0;
    },
    set(v, a) {
      v.lapic.writeTscDeadline(a.data);
      return 0;
    },
  }],
];
