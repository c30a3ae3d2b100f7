/**
 * Secure register intercepts, pinbox's extension of KVM in the manner of Hyper-V's VSM
 * (docs/register-intercepts.md; protocol/abi/hyperv-vsm.ts): per vCPU, as the TLFS has
 * HV_REGISTER_CR_INTERCEPT_CONTROL per virtual processor, a higher trust level — pinbox's
 * monitor, through user space — chooses which of the guest's register accesses it decides:
 * CR0/CR4 writes (under their masks), reads and writes of LSTAR, STAR, CSTAR, APIC_BASE, EFER
 * and IA32_MISC_ENABLE, writes of the SYSENTER MSRs, SFMASK and TSC_AUX, and loads of GDTR,
 * IDTR, LDTR and TR. Each such access exits to user space (KVM_EXIT_PINBOX_REG_INTERCEPT) before
 * KVM does anything else with it; the answer — allow, deny with #GP(0), or a value to emulate
 * with — is completed by the next KVM_RUN. "A secure intercept is queued to the higher VTL …
 * The higher VTL can handle the intercept in a number of ways, including: injecting an
 * exception, emulating the access, or providing a proxy to the access" (TLFS, vsm.md).
 *
 * MODEL DECISIONS (docs/register-intercepts.md):
 *   - XCr0Write (bit 2) and MsrSgxLaunchControlWrite (bit 24) are refused (EINVAL): the core
 *     has no XSETBV and no SGX, so they could never fire;
 *   - a mask restricts its intercept to writes that change a masked bit, as VMX's CR
 *     guest/host masks decide CR exits; masks start all ones (every write that changes the
 *     register), and the IA32_MISC_ENABLE mask applies to writes only;
 *   - the intercepts survive INIT: the TLFS drops INIT and SIPI aimed at a lower VTL once a
 *     higher one is enabled, so nothing the guest's INIT does reaches the higher VTL's settings.
 */
import {
  HV_CR_INTERCEPT_BIT_NAMES, HV_CR_INTERCEPT_RESERVED, MSR_CSTAR, MSR_EFER, MSR_IA32_APICBASE, MSR_IA32_MISC_ENABLE,
  MSR_IA32_SYSENTER_CS, MSR_IA32_SYSENTER_EIP, MSR_IA32_SYSENTER_ESP, MSR_LSTAR, MSR_STAR, MSR_SYSCALL_MASK, MSR_TSC_AUX,
  hvCrInterceptBit, type HvCrInterceptName,
} from '../../protocol/abi.js';
import { hex } from '../../protocol/notation.js';
import { KvmError } from './api/errors.js';
import type { RegInterceptSpec } from './api/cr-hardening.js';
import { toU64, U64_MAX } from './u64.js';

const IOCTL = 'PINBOX_SET_REG_INTERCEPTS';

/** The bits the model cannot implement, with why. */
const UNSUPPORTED: ReadonlyMap<HvCrInterceptName, string> = new Map([
  ['XCr0Write', 'the modelled CPU has no XSETBV'],
  ['MsrSgxLaunchControlWrite', 'the modelled CPU has no SGX'],
]);

/** Every bit KVM_CAP_PINBOX_REG_INTERCEPTS answers: all the TLFS defines but those above. */
export const SUPPORTED_REG_INTERCEPTS: bigint = HV_CR_INTERCEPT_BIT_NAMES
  .filter((n) => !UNSUPPORTED.has(n))
  .reduce((m, n) => m | hvCrInterceptBit(n), 0n);

/** The intercepted MSRs: their read and write bits (none for a direction the TLFS does not list). */
const MSR_BITS: ReadonlyMap<number, { readonly read?: HvCrInterceptName; readonly write: HvCrInterceptName }> = new Map([
  [MSR_IA32_MISC_ENABLE, { read: 'IA32MiscEnableRead', write: 'IA32MiscEnableWrite' }],
  [MSR_LSTAR, { read: 'MsrLstarRead', write: 'MsrLstarWrite' }],
  [MSR_STAR, { read: 'MsrStarRead', write: 'MsrStarWrite' }],
  [MSR_CSTAR, { read: 'MsrCstarRead', write: 'MsrCstarWrite' }],
  [MSR_IA32_APICBASE, { read: 'ApicBaseMsrRead', write: 'ApicBaseMsrWrite' }],
  [MSR_EFER, { read: 'MsrEferRead', write: 'MsrEferWrite' }],
  [MSR_IA32_SYSENTER_CS, { write: 'MsrSysenterCsWrite' }],
  [MSR_IA32_SYSENTER_EIP, { write: 'MsrSysenterEipWrite' }],
  [MSR_IA32_SYSENTER_ESP, { write: 'MsrSysenterEspWrite' }],
  [MSR_SYSCALL_MASK, { write: 'MsrSfmaskWrite' }],
  [MSR_TSC_AUX, { write: 'MsrTscAuxWrite' }],
]);

/** The descriptor-table registers and their write bits. */
export type DescriptorTableRegister = 'gdtr' | 'idtr' | 'ldtr' | 'tr';
const TABLE_BITS: Readonly<Record<DescriptorTableRegister, HvCrInterceptName>> = {
  gdtr: 'GdtrWrite', idtr: 'IdtrWrite', ldtr: 'LdtrWrite', tr: 'TrWrite',
};
const ANY_TABLE = Object.values(TABLE_BITS).reduce((m, n) => m | hvCrInterceptBit(n), 0n);

const bitNumber = (name: HvCrInterceptName): number => HV_CR_INTERCEPT_BIT_NAMES.indexOf(name);

/** One vCPU's intercepts: the control register and its three masks. */
export class RegIntercepts {
  control = 0n;
  cr0Mask = U64_MAX;
  cr4Mask = U64_MAX;
  miscEnableMask = U64_MAX;

  /** Whether any intercept is set: the exit handlers look at nothing else while none is. */
  get armed(): boolean {
    return this.control !== 0n;
  }

  /** Whether LGDT/LIDT/LLDT/LTR must stop the core: any descriptor-table intercept is set. */
  get descriptorTables(): boolean {
    return (this.control & ANY_TABLE) !== 0n;
  }

  /** PINBOX_SET_REG_INTERCEPTS: every field checked before any changes. */
  set(spec: RegInterceptSpec): void {
    if (typeof spec !== 'object' || spec === null) throw new KvmError('EINVAL', IOCTL, 'the intercepts must be an object');
    const control = u64(spec.control, 'control');
    const cr0 = u64(spec.cr0Mask, 'cr0Mask');
    const cr4 = u64(spec.cr4Mask, 'cr4Mask');
    const misc = u64(spec.miscEnableMask, 'miscEnableMask');
    if ((control & HV_CR_INTERCEPT_RESERVED) !== 0n) {
      throw new KvmError('EINVAL', IOCTL, `control ${hex(control)} has RsvdZ bits (63:${HV_CR_INTERCEPT_BIT_NAMES.length}) set`);
    }
    for (const [name, why] of UNSUPPORTED) {
      if ((control & hvCrInterceptBit(name)) !== 0n) throw new KvmError('EINVAL', IOCTL, `${name} (bit ${bitNumber(name)}) cannot be intercepted: ${why}`);
    }
    this.control = control;
    this.cr0Mask = cr0;
    this.cr4Mask = cr4;
    this.miscEnableMask = misc;
  }

  get(): RegInterceptSpec {
    return { control: this.control, cr0Mask: this.cr0Mask, cr4Mask: this.cr4Mask, miscEnableMask: this.miscEnableMask };
  }

  /** The intercept a CR0/CR4 write from `current` to `next` hits, or -1. */
  crWrite(cr: 0 | 4, current: bigint, next: bigint): number {
    const name: HvCrInterceptName = cr === 0 ? 'Cr0Write' : 'Cr4Write';
    if ((this.control & hvCrInterceptBit(name)) === 0n) return -1;
    const m = cr === 0 ? this.cr0Mask : this.cr4Mask;
    return ((current ^ next) & m) !== 0n ? bitNumber(name) : -1;
  }

  /** The intercept a guest RDMSR/WRMSR of `index` hits, or -1 (a write of IA32_MISC_ENABLE under its mask). */
  msrAccess(index: number, write: boolean, current: bigint, next: bigint): number {
    const bits = MSR_BITS.get(index);
    const name = bits === undefined ? undefined : write ? bits.write : bits.read;
    if (name === undefined || (this.control & hvCrInterceptBit(name)) === 0n) return -1;
    if (write && index === MSR_IA32_MISC_ENABLE && ((current ^ next) & this.miscEnableMask) === 0n) return -1;
    return bitNumber(name);
  }

  /** The intercept a load of `table` hits, or -1. */
  tableLoad(table: DescriptorTableRegister): number {
    const name = TABLE_BITS[table];
    return (this.control & hvCrInterceptBit(name)) !== 0n ? bitNumber(name) : -1;
  }
}

function u64(value: unknown, name: string): bigint {
  const v = toU64(value);
  if (v === undefined || typeof value !== 'bigint') throw new KvmError('EINVAL', IOCTL, `${name} must be a u64 bigint, got ${String(value)}`);
  return v;
}
