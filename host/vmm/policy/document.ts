/**
 * A policy file as written, once it has passed the schema (host/vmm/schema/policy.schema.json,
 * which documents every field and its default). compile.ts turns it into what the VMM applies.
 */
import type { HekiMemoryAbi } from '../../../protocol/abi.js';
import type { RegisterText } from './control-register-names.js';
import type { GuestCpuidSettings } from './guest-cpuid.js';
import type { IntegerText } from './numbers.js';

export type MsrAccessName = 'read' | 'write';
export type MsrListAccess = 'read' | 'write' | 'rw';
export type MsrExitReasonName = 'inval' | 'unknown' | 'filter';
export type HekiCrName = 'cr0' | 'cr4';
export type OnDenial = 'log' | 'pause' | 'kill';
export type OnShutdown = 'reboot' | 'reset' | 'kill';
/** How the VMM answers a CR-filter exit, or a register intercept no monitor decides. */
export type CrAnswer = 'deny' | 'allow';

/** pinbox's CR filter (docs/cr-filter.md): the bits whose change exits, and the VMM's answer. */
export interface CrFilterText {
  cr0?: RegisterText;
  cr4?: RegisterText;
  answer?: CrAnswer;
}

/** The secure register intercepts every vCPU boots with (docs/register-intercepts.md). */
export interface RegisterInterceptsText {
  /** HV_REGISTER_CR_INTERCEPT_CONTROL's bits by their TLFS names: "Cr0Write", "IdtrWrite"… */
  intercept: string[];
  cr0Mask?: RegisterText;
  cr4Mask?: RegisterText;
  miscEnableMask?: IntegerText;
  /** The answer while no monitor decides (default "deny": the protection holds without one). */
  answer?: CrAnswer;
}

export interface RawRangeText {
  access: MsrAccessName[];
  base: IntegerText;
  nmsrs: IntegerText;
  bitmap: string;
}

/** "0x10", "0xc0000080-0xc0000084", 16, or the object form. */
export type MsrListItemText =
  | IntegerText
  | { msr?: IntegerText; range?: string; access?: MsrListAccess };

export interface MsrFilterText {
  default: 'allow' | 'deny';
  ranges?: RawRangeText[];
  allow?: MsrListItemText[];
  deny?: MsrListItemText[];
}

export interface MsrHandlerText {
  read?: IntegerText;
  write?: 'accept' | 'deny' | 'store';
}

/** What a protected range denies: read → NR, write → NW, exec → NX, userExec → NUX. */
export type MemoryDenyName = 'read' | 'write' | 'exec' | 'userExec';

/** One range of the memory section (one KVM_SET_MEMORY_ATTRIBUTES). */
export interface MemoryRangeText {
  gpa: IntegerText;
  size: IntegerText;
  deny: MemoryDenyName[];
  name?: string;
}

/** The memory section in its object form (docs/memory-protection.md §7). */
export interface MemoryText {
  size?: IntegerText;
  mbec?: boolean;
  delivery?: 'exit' | 'inject';
  onViolation?: OnDenial;
  protect?: MemoryRangeText[];
}

export interface PolicyDocument {
  $schema?: string;
  name?: string;
  vcpus?: number;
  /** The size alone, or the size with the protections. */
  memory?: IntegerText | MemoryText;
  profile?: 'v2' | 'v3';
  hostModel?: { cr0?: RegisterText; cr4?: RegisterText; cr4PinnableMask?: RegisterText };
  guestCpuid?: GuestCpuidSettings;
  msrFilter?: MsrFilterText;
  userSpaceMsr?: MsrExitReasonName[];
  msrHandlers?: Record<string, MsrHandlerText>;
  heki?: { configureExits?: HekiCrName[]; denialExits?: HekiCrName[]; onDenial?: OnDenial };
  onShutdown?: OnShutdown;
  ignoreMsrs?: boolean;
  crFilter?: CrFilterText;
  registerIntercepts?: RegisterInterceptsText;
  andersen?: boolean;
  hekiMemory?: HekiMemoryAbi;
}
