/**
 * Policy files: what a VM is and how the VMM answers its exits. The format is the JSON Schema
 * in host/vmm/schema/policy.schema.json (shipped as `pinbox/schema/policy.json`).
 *
 *   const policy = loadPolicyFile('policy.json');   // throws PolicyError with every problem
 *   policy.vmOptions / policy.caps / policy.msrFilter / policy.msrHandlers / policy.onDenial
 *
 * See compiled.ts for the order in which the VMM applies them.
 */
export { compilePolicy, DEFAULT_HEKI_EXITS, DEFAULT_MEMORY, DEFAULT_USER_SPACE_MSR, DEFAULT_VM_NAME } from './compile.js';
export type {
  CapabilityToEnable, CompiledPolicy, CrFilterMasks, MemoryPolicy, MemoryRegion, MsrFilter, RegisterIntercepts, MsrFilterRange, MsrHandler, MsrReadAnswer,
  MsrWriteAnswer, PolicyVmOptions,
} from './compiled.js';
export { CR0_BIT_NAMES, CR4_BIT_NAMES } from './control-register-names.js';
export type { CrAnswer, MemoryDenyName, OnDenial, OnShutdown, PolicyDocument } from './document.js';
export { denyNames, DENY_ATTRIBUTES, NO_MEMORY_POLICY, regionName } from './memory-protection.js';
export { EmulatedMsrs, type MsrAnswer, type MsrAnswerSource } from './emulated-msrs.js';
export { PolicyError, type PolicyIssue } from './errors.js';
export { GUEST_CPUID_FEATURES, type GuestCpuidFeature, type GuestCpuidSettings } from './guest-cpuid.js';
export { loadPolicyFile, parsePolicy, parsePolicyText } from './load.js';
export { POLICY_SCHEMA } from './schema-check.js';
