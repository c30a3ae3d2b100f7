/**
 * The guest side of John Andersen's paravirtual CR pinning (docs/andersen.md; the 17 Jun 2020
 * posting, 20200617190757.27081-{1..5}-john.s.andersen@intel.com): discovery by KVM's PV CPUID
 * leaf, the allowed and pinned MSRs, and the lock-down a guest kernel of that series performs —
 * pin CR0.WP and the CR4 bits it pins natively (SMEP, SMAP, UMIP), each ANDed with what the host
 * allows, to 1 (kvm_setup_paravirt_cr_pinning()). Only a VM made with the `andersen` option gives
 * these MSRs their meaning; elsewhere the guest's discovery says so.
 */
import {
  type Exit, type Fault, KVM_CPUID_FEATURES, KVM_CPUID_SIGNATURE, KVM_CR4_PIN_ALLOWED, KVM_FEATURE_CR_PIN,
  MSR_KVM_CR0_PIN_ALLOWED, MSR_KVM_CR0_PINNED_HIGH, MSR_KVM_CR0_PINNED_LOW, MSR_KVM_CR4_PIN_ALLOWED, MSR_KVM_CR4_PINNED_HIGH,
  MSR_KVM_CR4_PINNED_LOW, X86_CR0_WP,
} from '../protocol/index.js';
import { describeFault, hex } from '../protocol/notation.js';
import { type OpOptions, type U64, oneOfArgument, u64Argument } from './arguments.js';
import type { GuestOperations } from './guest-operations.js';

/** "KVMKVMKVM\0\0\0" in EBX, ECX, EDX of CPUID 0x40000000. */
const KVM_SIGNATURE = [0x4b4d564b, 0x564b4d56, 0x4d];

export interface AndersenDiscovery {
  /** KVM's PV signature and KVM_FEATURE_CR_PIN (0x40000001 EAX bit 15) are there. */
  feature: boolean;
  /** MSR_KVM_CR0/CR4_PIN_ALLOWED, when the feature is there and the reads succeed. */
  cr0Allowed: bigint | undefined;
  cr4Allowed: bigint | undefined;
  /** The fault of a read of the allowed MSRs (a host without the ABI refuses them). */
  fault: Fault | undefined;
}

export interface AndersenPinned {
  cr0High: bigint;
  cr0Low: bigint;
  cr4High: bigint;
  cr4Low: bigint;
}

/** What one WRMSR to a pinned MSR did: accepted, or the fault (#GP: a bit not allowed, pinned the other way, or dropped). */
export type PinResult = { ok: true; exits: Exit[] } | { ok: false; fault: Fault; exits: Exit[] };

export interface AndersenLockDownReport {
  locked: boolean;
  discovery: AndersenDiscovery;
  /** The CR4 the guest read before pinning it. */
  cr4: bigint | undefined;
  /** The bits written to CR0_PINNED_HIGH and CR4_PINNED_HIGH, when they were. */
  cr0: bigint | undefined;
  cr4Pinned: bigint | undefined;
  stopped: string | undefined;
}

const PINNED: Readonly<Record<'0high' | '0low' | '4high' | '4low', number>> = {
  '0high': MSR_KVM_CR0_PINNED_HIGH, '0low': MSR_KVM_CR0_PINNED_LOW, '4high': MSR_KVM_CR4_PINNED_HIGH, '4low': MSR_KVM_CR4_PINNED_LOW,
};

/** Andersen's CR pinning from one guest vCPU: `guest.andersen`. Pins are per vCPU. */
export class Andersen {
  /** @internal */
  constructor(private readonly guest: GuestOperations) {}

  /** KVM's signature, KVM_FEATURE_CR_PIN, then the allowed MSRs. */
  async discover(options?: OpOptions): Promise<AndersenDiscovery> {
    const sig = await this.guest.cpuid(KVM_CPUID_SIGNATURE, 0, options);
    const kvm = sig.ebx === KVM_SIGNATURE[0] && sig.ecx === KVM_SIGNATURE[1] && sig.edx === KVM_SIGNATURE[2];
    const features = kvm ? await this.guest.cpuid(KVM_CPUID_FEATURES, 0, options) : undefined;
    const feature = features !== undefined && (features.eax & (1 << KVM_FEATURE_CR_PIN)) !== 0;
    const none: AndersenDiscovery = { feature, cr0Allowed: undefined, cr4Allowed: undefined, fault: undefined };
    if (!feature) return none;
    const cr0 = await this.guest.rdmsrSafe(MSR_KVM_CR0_PIN_ALLOWED, options);
    if (!cr0.ok) return { ...none, fault: cr0.fault };
    const cr4 = await this.guest.rdmsrSafe(MSR_KVM_CR4_PIN_ALLOWED, options);
    if (!cr4.ok) return { ...none, cr0Allowed: cr0.value, fault: cr4.fault };
    return { feature, cr0Allowed: cr0.value, cr4Allowed: cr4.value, fault: undefined };
  }

  /** WRMSR to CR`cr`_PINNED_HIGH (pinned to 1) or _LOW (pinned to 0). The guest may only add pins. */
  async pin(cr: 0 | 4, to: 'high' | 'low', bits: U64, options?: OpOptions): Promise<PinResult> {
    const which = oneOfArgument('andersen.pin', 'to', to, ['high', 'low'] as const);
    const value = u64Argument('andersen.pin', 'bits', bits);
    const r = await this.guest.wrmsrSafe(PINNED[`${cr === 4 ? 4 : 0}${which}`], value, options);
    return r.ok ? { ok: true, exits: r.exits } : { ok: false, fault: r.fault, exits: r.exits };
  }

  /** The four pinned MSRs, read back (the posting's code lets the guest read them). */
  async pinned(options?: OpOptions): Promise<AndersenPinned> {
    const read = (index: number): Promise<bigint> => this.guest.rdmsr(index, options);
    return {
      cr0High: await read(MSR_KVM_CR0_PINNED_HIGH),
      cr0Low: await read(MSR_KVM_CR0_PINNED_LOW),
      cr4High: await read(MSR_KVM_CR4_PINNED_HIGH),
      cr4Low: await read(MSR_KVM_CR4_PINNED_LOW),
    };
  }

  /**
   * What the series' guest does for each CPU once its own CR pinning is set up: discover; pin
   * CR0.WP & allowed high; read CR4 and pin CR4 & (SMEP|SMAP|UMIP) & allowed high. It stops at
   * the first thing missing or refused, and says why.
   */
  async lockDown(options?: OpOptions): Promise<AndersenLockDownReport> {
    const discovery = await this.discover(options);
    const report: AndersenLockDownReport = { locked: false, discovery, cr4: undefined, cr0: undefined, cr4Pinned: undefined, stopped: undefined };
    if (!discovery.feature) {
      report.stopped = 'no KVM_FEATURE_CR_PIN in CPUID 0x40000001: the host does not offer Andersen\'s CR pinning';
      return report;
    }
    if (discovery.fault !== undefined) {
      report.stopped = `reading the allowed MSRs raised ${describeFault(discovery.fault)}`;
      return report;
    }
    report.cr0 = X86_CR0_WP & discovery.cr0Allowed!;
    const cr0 = await this.pin(0, 'high', report.cr0, options);
    if (!cr0.ok) {
      report.stopped = `pinning CR0 with ${hex(report.cr0)} raised ${describeFault(cr0.fault)}`;
      return report;
    }
    report.cr4 = await this.guest.readCr(4, options);
    report.cr4Pinned = report.cr4 & KVM_CR4_PIN_ALLOWED & discovery.cr4Allowed!;
    const cr4 = await this.pin(4, 'high', report.cr4Pinned, options);
    if (!cr4.ok) {
      report.stopped = `pinning CR4 with ${hex(report.cr4Pinned)} raised ${describeFault(cr4.fault)}`;
      return report;
    }
    report.locked = true;
    return report;
  }
}
