/**
 * John Andersen's CR-pinning MSRs, kvm_{get,set}_msr_common() of his 17 Jun 2020 posting
 * (protocol/abi/andersen.ts; ../andersen.ts), on a VM created with the `andersen` option; on any
 * other VM these indices are what mainline leaves them (0x4b564d08 is MSR_KVM_MIGRATION_CONTROL,
 * which the model does not emulate, and the rest are unknown), so they are UNSUPPORTED there.
 *
 *   *_PIN_ALLOWED   reads give WP (CR0) or SMEP|SMAP|UMIP (CR4); a write succeeds only with
 *                   exactly that value ("return (data != KVM_CR0_PIN_ALLOWED)"), guest or host;
 *   *_PINNED_LOW/HIGH  a write fails (INVAL, #GP for the guest) with a bit outside the allowed
 *                   ones or a bit pinned the other way, and — from the guest only — when it
 *                   would clear a bit already pinned ("~data & current"); otherwise it assigns.
 *                   The host may assign anything else, clearing pins included. Reads give the pins:
 *                   msr.rst calls them "write-only for the guest", but the code lets the guest
 *                   read them, and so does the posting's kvm-unit-test.
 *
 * MODEL DECISION (docs/andersen.md): under KVM_CAP_ENFORCE_PV_FEATURE_CPUID the MSRs need
 * KVM_FEATURE_CR_PIN, as every PV MSR needs its feature bit once that capability binds (the
 * capability came two months after the posting, so the posting has no such check).
 */
import {
  KVM_CR0_PIN_ALLOWED, KVM_CR4_PIN_ALLOWED, KVM_FEATURE_CR_PIN, MSR_KVM_CR0_PIN_ALLOWED, MSR_KVM_CR0_PINNED_HIGH,
  MSR_KVM_CR0_PINNED_LOW, MSR_KVM_CR4_PIN_ALLOWED, MSR_KVM_CR4_PINNED_HIGH, MSR_KVM_CR4_PINNED_LOW,
} from '../../../protocol/abi.js';
import type { AndersenPins } from '../andersen.js';
import { guestPvHas } from '../cpuid.js';
import { KVM_MSR_RET_UNSUPPORTED, type MsrAccess, type MsrHandler, type MsrVcpu } from './msr-vcpu.js';

type PinField = 'cr0High' | 'cr0Low' | 'cr4High' | 'cr4Low';
const OPPOSITE: Readonly<Record<PinField, PinField>> = { cr0High: 'cr0Low', cr0Low: 'cr0High', cr4High: 'cr4Low', cr4Low: 'cr4High' };

/** The pins exist only on a VM that speaks Andersen's ABI, and with its PV feature where that binds. */
function present(v: MsrVcpu): boolean {
  return v.vm.andersen && guestPvHas(v.cpuid, v.pvEnforce, KVM_FEATURE_CR_PIN);
}

function pinAllowed(allowed: bigint): MsrHandler {
  return {
    advertised: false,
    get(v, a) {
      if (!present(v)) return KVM_MSR_RET_UNSUPPORTED;
      a.data = allowed;
      return 0;
    },
    set(v, a) {
      if (!present(v)) return KVM_MSR_RET_UNSUPPORTED;
      return a.data !== allowed ? 1 : 0;
    },
  };
}

function pinned(field: PinField, allowed: bigint): MsrHandler {
  return {
    advertised: false,
    get(v, a) {
      if (!present(v)) return KVM_MSR_RET_UNSUPPORTED;
      a.data = v.andersenPins[field];
      return 0;
    },
    set(v, a: MsrAccess) {
      if (!present(v)) return KVM_MSR_RET_UNSUPPORTED;
      const pins: AndersenPins = v.andersenPins;
      if ((a.data & ~allowed) !== 0n || (a.data & pins[OPPOSITE[field]]) !== 0n) return 1;
      if (!a.hostInitiated && (~a.data & pins[field]) !== 0n) return 1;
      pins[field] = a.data;
      return 0;
    },
  };
}

export const ANDERSEN_MSRS: ReadonlyArray<readonly [number, MsrHandler]> = [
  [MSR_KVM_CR0_PIN_ALLOWED, pinAllowed(KVM_CR0_PIN_ALLOWED)],
  [MSR_KVM_CR4_PIN_ALLOWED, pinAllowed(KVM_CR4_PIN_ALLOWED)],
  [MSR_KVM_CR0_PINNED_LOW, pinned('cr0Low', KVM_CR0_PIN_ALLOWED)],
  [MSR_KVM_CR0_PINNED_HIGH, pinned('cr0High', KVM_CR0_PIN_ALLOWED)],
  [MSR_KVM_CR4_PINNED_LOW, pinned('cr4Low', KVM_CR4_PIN_ALLOWED)],
  [MSR_KVM_CR4_PINNED_HIGH, pinned('cr4High', KVM_CR4_PIN_ALLOWED)],
];
