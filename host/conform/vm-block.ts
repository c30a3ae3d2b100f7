/**
 * A scenario's `vm` block: a subset of the policy format (host/vmm/policy), with the host model
 * written flat as the issue's examples do (`hostCr0` for the policy's `hostModel.cr0`, and so
 * on). Each field means what the policy field means and takes its default, because the block
 * is checked and compiled *by the policy compiler*: it becomes a policy document
 * (`scenarioPolicy`), and the VM options are that policy's `vmOptions`.
 *
 * The policy's other fields are left out on purpose. A scenario starts from KVM's initial
 * state — no capability enabled, no MSR filter — and sets up the rest in its own host steps,
 * so that every setting the expected results depend on is written in the scenario. The policy
 * document of a scenario therefore turns the policy's defaults off (userSpaceMsr [], no Heki
 * exits): a VM made from it (both targets make each scenario's VM so; over the protocol with
 * `createVm`) has each capability enabled with 0, which is KVM's initial value.
 */
import { HV_CR_INTERCEPT_BIT_NAMES, type HekiMemoryAbi } from '../../protocol/abi.js';
import {
  compilePolicy, PolicyError, type CrFilterMasks, type PolicyDocument, type PolicyVmOptions, type RegisterIntercepts,
} from '../vmm/policy/index.js';
import type { CrFilterText, RegisterInterceptsText } from '../vmm/policy/document.js';
import type { RegisterText } from '../vmm/policy/control-register-names.js';
import type { GuestCpuidSettings } from '../vmm/policy/guest-cpuid.js';
import type { IssueCollector } from './errors.js';
import { type IntegerText } from './integers.js';
import { hex } from '../../protocol/notation.js';

/**
 * The VM a scenario runs on: exactly the policy compiler's VM options, and — for the scenarios of
 * docs/transitions.md, which need what a VM reset puts back — the CR filter and the register
 * intercepts its policy installs.
 */
export type ScenarioVm = PolicyVmOptions & { readonly crFilter?: CrFilterMasks; readonly registerIntercepts?: RegisterIntercepts };

/** The block as written (after the schema). */
export interface VmBlockText {
  profile?: 'v2' | 'v3';
  vcpus?: number;
  memory?: IntegerText;
  hostCr0?: RegisterText;
  hostCr4?: RegisterText;
  cr4PinnableMask?: RegisterText;
  guestCpuid?: GuestCpuidSettings;
  ignoreMsrs?: boolean;
  andersen?: boolean;
  hekiMemory?: HekiMemoryAbi;
  crFilter?: CrFilterText;
  registerIntercepts?: RegisterInterceptsText;
}

/** Where each policy path comes from in the block. */
const POLICY_TO_BLOCK: Readonly<Record<string, string>> = {
  '/hostModel/cr0': '/hostCr0',
  '/hostModel/cr4': '/hostCr4',
  '/hostModel/cr4PinnableMask': '/cr4PinnableMask',
};

function policyOfBlock(block: VmBlockText): PolicyDocument {
  const hostModel = {
    ...(block.hostCr0 !== undefined && { cr0: block.hostCr0 }),
    ...(block.hostCr4 !== undefined && { cr4: block.hostCr4 }),
    ...(block.cr4PinnableMask !== undefined && { cr4PinnableMask: block.cr4PinnableMask }),
  };
  return {
    ...(block.profile !== undefined && { profile: block.profile }),
    ...(block.vcpus !== undefined && { vcpus: block.vcpus }),
    ...(block.memory !== undefined && { memory: block.memory }),
    ...(Object.keys(hostModel).length > 0 && { hostModel }),
    ...(block.guestCpuid !== undefined && { guestCpuid: { ...block.guestCpuid } }),
    ...(block.ignoreMsrs !== undefined && { ignoreMsrs: block.ignoreMsrs }),
    ...(block.andersen !== undefined && { andersen: block.andersen }),
    ...(block.hekiMemory !== undefined && { hekiMemory: block.hekiMemory }),
    ...(block.crFilter !== undefined && { crFilter: block.crFilter }),
    ...(block.registerIntercepts !== undefined && { registerIntercepts: block.registerIntercepts }),
    userSpaceMsr: [],
    heki: { configureExits: [], denialExits: [] },
  };
}

/**
 * The block's VM options, by the policy compiler — or its complaints, at the block's paths
 * under `at` (e.g. "/vm"), added to `issues`.
 */
export function compileVmBlock(block: VmBlockText, at: string, issues: IssueCollector): ScenarioVm | undefined {
  try {
    const policy = compilePolicy(policyOfBlock(block));
    return {
      ...policy.vmOptions,
      ...(policy.crFilter !== undefined && { crFilter: policy.crFilter }),
      ...(policy.registerIntercepts !== undefined && { registerIntercepts: policy.registerIntercepts }),
    };
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    for (const issue of e.issues) {
      const path = Object.keys(POLICY_TO_BLOCK).find((p) => issue.path === p || issue.path.startsWith(p + '/'));
      issues.add(at + (path === undefined ? issue.path : POLICY_TO_BLOCK[path] + issue.path.slice(path.length)), issue.message);
    }
    return undefined;
  }
}

/**
 * A policy document for the scenario's VM: what the in-process target and a pinbox server
 * (`createVm`) make it from. Compiling it gives back `vm` exactly (tested).
 */
export function scenarioPolicy(vm: ScenarioVm): PolicyDocument {
  return policyOfBlock({
    profile: vm.profile,
    vcpus: vm.vcpus,
    memory: vm.memorySize,
    ...(vm.hostCr0 !== undefined && { hostCr0: hex(vm.hostCr0) }),
    ...(vm.hostCr4 !== undefined && { hostCr4: hex(vm.hostCr4) }),
    ...(vm.cr4PinnableMask !== undefined && { cr4PinnableMask: hex(vm.cr4PinnableMask) }),
    guestCpuid: vm.guestCpuid,
    ignoreMsrs: vm.ignoreMsrs,
    ...(vm.andersen === true && { andersen: true }),
    ...(vm.hekiMemory !== undefined && { hekiMemory: vm.hekiMemory }),
    ...(vm.crFilter !== undefined && { crFilter: { cr0: hex(vm.crFilter.cr0Mask), cr4: hex(vm.crFilter.cr4Mask) } }),
    ...(vm.registerIntercepts !== undefined && { registerIntercepts: interceptsText(vm.registerIntercepts) }),
  });
}

/** Intercepts as a policy writes them: the TLFS names of the control's bits, the masks in hex. */
function interceptsText(r: RegisterIntercepts): RegisterInterceptsText {
  return {
    intercept: HV_CR_INTERCEPT_BIT_NAMES.filter((_, bit) => (r.control >> BigInt(bit)) & 1n),
    cr0Mask: hex(r.cr0Mask),
    cr4Mask: hex(r.cr4Mask),
    miscEnableMask: hex(r.miscEnableMask),
  };
}
