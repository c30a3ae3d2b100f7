/**
 * A schema-valid policy document to the data the VMM applies (compiled.ts), after the checks a
 * schema cannot express. Pure: it reads the document and returns new data, so a rejected
 * policy has changed nothing anywhere.
 *
 * Defaults decided here (the schema's descriptions say the same):
 *   name "default", vcpus 1, memory 16 MiB, profile v2, ignoreMsrs false;
 *   userSpaceMsr ["filter"] — as QEMU: denied accesses reach the VMM, which answers them from
 *     msrHandlers (no handler → #GP, what the guest would get without the exit); accesses KVM
 *     itself rejects keep KVM's #GP;
 *   heki.configureExits and heki.denialExits ["cr0", "cr4"] — the guest sees the same results
 *     with or without these exits (RAX = 0; #GP), and the VMM gets to record every pin and
 *     denial; onDenial "log"; onShutdown "reboot" (a triple fault boots that vCPU again, pins kept);
 *   memory: no protections, no MBEC, KVM's own delivery for the profile, onViolation "log".
 * Host and guest CPU fields the policy leaves out stay undefined: the KVM model's defaults
 * apply, so they are defined in one place.
 */
import {
  HEKI_PROFILES, KVM_CAP_X86_USER_SPACE_MSR, KVM_HEKI_EXIT_REASON_CR0, KVM_HEKI_EXIT_REASON_CR4,
  KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_EXIT_REASON_INVAL, KVM_MSR_EXIT_REASON_UNKNOWN,
} from '../../../protocol/abi.js';
import { MAX_MEMORY, MAX_VCPUS, MIB, MIN_MEMORY } from '../boot/layout.js';
import type { CompiledPolicy, CapabilityToEnable } from './compiled.js';
import { CR0_BIT_NAMES, CR4_BIT_NAMES, registerValue } from './control-register-names.js';
import type { HekiCrName, MsrExitReasonName, PolicyDocument } from './document.js';
import { IssueList } from './errors.js';
import { compileCrFilter, compileRegisterIntercepts } from './cr-hardening.js';
import { compileMsrFilter } from './msr-filter.js';
import { compileMsrHandlers } from './msr-handlers.js';
import { compileMemoryPolicy, NO_MEMORY_POLICY } from './memory-protection.js';
import { formatSize, parseMemorySize, type IntegerText } from './numbers.js';

export const DEFAULT_VM_NAME = 'default';
export const DEFAULT_MEMORY = 16 * MIB;
export const DEFAULT_USER_SPACE_MSR: readonly MsrExitReasonName[] = ['filter'];
export const DEFAULT_HEKI_EXITS: readonly HekiCrName[] = ['cr0', 'cr4'];

const MSR_EXIT_REASON_BITS: Readonly<Record<MsrExitReasonName, number>> = {
  inval: KVM_MSR_EXIT_REASON_INVAL,
  unknown: KVM_MSR_EXIT_REASON_UNKNOWN,
  filter: KVM_MSR_EXIT_REASON_FILTER,
};
const HEKI_EXIT_REASON_BITS: Readonly<Record<HekiCrName, number>> = {
  cr0: KVM_HEKI_EXIT_REASON_CR0,
  cr4: KVM_HEKI_EXIT_REASON_CR4,
};

function mask<K extends string>(names: readonly K[], bits: Readonly<Record<K, number>>): bigint {
  let m = 0;
  for (const n of names) m |= bits[n];
  return BigInt(m);
}

function checkMemory(bytes: number, issues: IssueList, path: string): void {
  const TWO_MIB = 2 * MIB;
  if (bytes < MIN_MEMORY || bytes > MAX_MEMORY || bytes % TWO_MIB !== 0) {
    issues.add(
      path,
      `must be a multiple of 2 MiB from ${formatSize(MIN_MEMORY)} to ${formatSize(MAX_MEMORY)}; got ${formatSize(bytes)}` +
        (bytes < MIN_MEMORY ? ' (the boot image needs the first 4 MiB)' : ''),
    );
  }
}

/** Compiles a document that passed the schema; throws PolicyError listing every problem. */
export function compilePolicy(doc: PolicyDocument, source?: string): CompiledPolicy {
  const issues = new IssueList();
  const warnings: string[] = [];

  const vcpus = doc.vcpus ?? 1;
  if (vcpus > MAX_VCPUS) issues.add('/vcpus', `must be at most ${MAX_VCPUS}; got ${vcpus}`);
  const memoryText = typeof doc.memory === 'object' ? doc.memory : undefined;
  const sizeText = memoryText === undefined ? doc.memory as IntegerText | undefined : memoryText.size;
  const memorySize = sizeText === undefined ? DEFAULT_MEMORY : parseMemorySize(sizeText);
  checkMemory(memorySize, issues, memoryText === undefined ? '/memory' : '/memory/size');
  const profile = HEKI_PROFILES[doc.profile ?? 'v2'];
  const memory = memoryText === undefined ? NO_MEMORY_POLICY : compileMemoryPolicy(memoryText, '/memory', memorySize, profile, issues);

  const host = doc.hostModel ?? {};
  const vmOptions = {
    profile: profile.name,
    ...(host.cr0 !== undefined && { hostCr0: registerValue(host.cr0, CR0_BIT_NAMES) }),
    ...(host.cr4 !== undefined && { hostCr4: registerValue(host.cr4, CR4_BIT_NAMES) }),
    ...(host.cr4PinnableMask !== undefined && { cr4PinnableMask: registerValue(host.cr4PinnableMask, CR4_BIT_NAMES) }),
    guestCpuid: { ...doc.guestCpuid },
    memorySize,
    ignoreMsrs: doc.ignoreMsrs ?? false,
    vcpus,
    ...(doc.andersen === true && { andersen: true }),
    ...(doc.hekiMemory !== undefined && { hekiMemory: doc.hekiMemory }),
  };

  const userSpaceMsr = doc.userSpaceMsr ?? DEFAULT_USER_SPACE_MSR;
  const heki = doc.heki ?? {};
  const configureExits = heki.configureExits ?? DEFAULT_HEKI_EXITS;
  const denialExits = heki.denialExits ?? DEFAULT_HEKI_EXITS;
  const onDenial = heki.onDenial ?? 'log';
  if (onDenial !== 'log' && denialExits.length === 0) {
    issues.add('/heki/onDenial', `"${onDenial}" needs denial exits, but heki.denialExits is empty: the VMM would never see a denial`);
  }
  // KVM_CAP_X86_USER_SPACE_MSR comes before the filter is installed: api.rst §4.97 asks for
  // KVM_MSR_EXIT_REASON_FILTER to be enabled before any filter is active.
  const caps: CapabilityToEnable[] = [
    { cap: KVM_CAP_X86_USER_SPACE_MSR, args: [mask(userSpaceMsr, MSR_EXIT_REASON_BITS)] },
    { cap: profile.KVM_CAP_HEKI_CONFIGURE, args: [mask(configureExits, HEKI_EXIT_REASON_BITS)] },
    { cap: profile.KVM_CAP_HEKI_DENIAL, args: [mask(denialExits, HEKI_EXIT_REASON_BITS)] },
  ];

  const msrFilter = doc.msrFilter === undefined ? undefined : compileMsrFilter(doc.msrFilter, '/msrFilter', issues);
  const msrHandlers = compileMsrHandlers(doc.msrHandlers, '/msrHandlers', issues);
  if (msrHandlers.size > 0 && userSpaceMsr.length === 0) {
    warnings.push('msrHandlers are never used: userSpaceMsr is empty, so no MSR access exits to user space');
  }
  if (doc.msrFilter !== undefined && !userSpaceMsr.includes('filter')) {
    warnings.push('userSpaceMsr lacks "filter": accesses the MSR filter denies get #GP from KVM without reaching msrHandlers');
  }

  const crFilter = doc.crFilter === undefined ? undefined : compileCrFilter(doc.crFilter, '/crFilter', issues);
  const registerIntercepts = doc.registerIntercepts === undefined ? undefined : compileRegisterIntercepts(doc.registerIntercepts, '/registerIntercepts', issues);

  issues.throwIfAny(source);
  return {
    name: doc.name ?? DEFAULT_VM_NAME,
    vcpus,
    memorySize,
    vmOptions,
    caps,
    msrFilter,
    msrHandlers,
    onDenial,
    onShutdown: doc.onShutdown ?? 'reboot',
    crFilter,
    crFilterAnswer: doc.crFilter?.answer ?? 'deny',
    registerIntercepts,
    interceptAnswer: doc.registerIntercepts?.answer ?? 'deny',
    memory,
    warnings,
  };
}
