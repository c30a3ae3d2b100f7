/**
 * What a scenario needs beyond plain KVM, read from the scenario itself, and whether a host has
 * it (host/vmm's HostSupport found that by behaviour). A scenario whose needs a host lacks is
 * reported as unsupported on that host, with the reason, before it runs.
 *
 *   - Heki under the scenario's profile: a host step names a Heki capability, a guest step makes
 *     KVM_HC_LOCK_CR_UPDATE (or, under v2, KVM_HC_PROTECT_MEMORY) at CPL0, or an expected exit is
 *     a Heki exit;
 *   - CPL0 hypercalls: a hypercall step at CPL0, or CPL0 code with VMCALL/VMMCALL in it;
 *   - a guest CPUID without a feature (`vm.guestCpuid` sets it false): user space must be able to
 *     take it away;
 *   - an in-kernel local APIC: an x2APIC register access (MSRs 0x800–0x8ff) expected to succeed;
 *   - snapshots: only the model can save Heki's state, which has no ioctl;
 *   - kvm.ignore_msrs as the scenario's `vm` says: a module parameter of a real host;
 *   - pinbox's own KVM extensions (docs/pinbox-abi.md) — the CR filter, the register intercepts,
 *     the memory attributes and their MBEC and fault-delivery capabilities, a memory-fault exit
 *     (which only those attributes cause) — and Andersen's pins: a host step that sets or asks for one, an expected exit of one, a `vm`
 *     that has one. No kernel has them: only the KVM model does;
 *   - for Heki only, the host CPU the scenario describes (hostCr0, hostCr4, cr4PinnableMask): a
 *     real Heki kernel reads its own, so they must match it (CR0 as Linux sets it, CR4's
 *     pinnable bits as /proc/cpuinfo's flags show them). Without Heki nothing reads them.
 */
import {
  KVM_CAP_PINBOX_CR_FILTER, KVM_CAP_PINBOX_MBEC, KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, KVM_CAP_PINBOX_REG_INTERCEPTS,
  KVM_EXIT_PINBOX_CR_FILTER, KVM_EXIT_PINBOX_REG_INTERCEPT, KVM_HC_PROTECT_MEMORY,
  HEKI_CR4_PINNABLE_MASK_V2, HEKI_CR4_PINNABLE_MASK_V3, HEKI_PROFILES, KVM_HC_LOCK_CR_UPDATE, X86_CR4_CET, X86_CR4_FRED,
  X86_CR4_FSGSBASE, X86_CR4_LA57, X86_CR4_PKE, X86_CR4_SMAP, X86_CR4_SMEP, X86_CR4_UMIP, type HekiProfileName,
} from '../../protocol/abi.js';
import { hex } from '../../protocol/notation.js';
import type { BackendHost } from '../kvm/api/backend.js';
import type { Finding, HostSupport } from '../vmm/host-survey.js';
import type { GuestCpuidFeature } from '../vmm/policy/index.js';
import type { Scenario, Step } from './model.js';
import { describeStep } from './run-scenario.js';

export type Need =
  | { readonly kind: 'heki'; readonly profile: HekiProfileName; readonly where: string }
  | { readonly kind: 'cpl0-hypercalls'; readonly where: string }
  | { readonly kind: 'cpuid-cleared'; readonly feature: GuestCpuidFeature }
  | { readonly kind: 'in-kernel-lapic'; readonly where: string }
  | { readonly kind: 'snapshots'; readonly where: string }
  | { readonly kind: 'ignore-msrs'; readonly value: boolean }
  | { readonly kind: 'pinbox-extension'; readonly what: string; readonly where: string }
  | { readonly kind: 'host-cpu'; readonly profile: HekiProfileName; readonly cr0?: bigint; readonly cr4?: bigint; readonly cr4PinnableMask?: bigint };

/** Linux's CR0 on x86-64 (arch/x86/kernel/head_64.S: CR0_STATE): PG|AM|WP|NE|ET|MP|PE. */
export const LINUX_HOST_CR0 = 0x8005_0033n;
/** The cr4_pinned_mask a Heki kernel has, by profile (docs/heki.md; protocol/abi/heki.ts). */
const PINNABLE: Readonly<Record<HekiProfileName, bigint>> = { v2: HEKI_CR4_PINNABLE_MASK_V2, v3: HEKI_CR4_PINNABLE_MASK_V3 };
/** /proc/cpuinfo flags → the CR4 bit Linux sets for them (BackendHost.cr4Flags). */
const CR4_OF_FLAG: Readonly<Record<string, bigint>> = {
  smep: X86_CR4_SMEP, smap: X86_CR4_SMAP, umip: X86_CR4_UMIP, fsgsbase: X86_CR4_FSGSBASE, pku: X86_CR4_PKE, la57: X86_CR4_LA57,
  ibt: X86_CR4_CET, user_shstk: X86_CR4_CET, fred: X86_CR4_FRED,
};
const X2APIC_FIRST = 0x800;
const X2APIC_LAST = 0x8ff;
const VMCALL = [0x0f, 0x01, 0xc1];
const VMMCALL = [0x0f, 0x01, 0xd9];

function contains(code: Uint8Array, insn: readonly number[]): boolean {
  for (let i = 0; i + insn.length <= code.length; i++) if (insn.every((b, j) => code[i + j] === b)) return true;
  return false;
}

function stepsOf(steps: readonly Step[]): Step[] {
  return steps.flatMap((s) => (s.kind === 'guest' ? [s, ...stepsOf(s.duringExit)] : [s]));
}

/** Everything `scenario` needs beyond plain KVM, each once, in the order first met. */
export function scenarioNeeds(scenario: Scenario): Need[] {
  const profile = HEKI_PROFILES[scenario.vm.profile];
  const hekiCaps = [profile.KVM_CAP_HEKI_CONFIGURE, profile.KVM_CAP_HEKI_DENIAL];
  const hekiExits = [profile.KVM_EXIT_HEKI_CONFIGURE, profile.KVM_EXIT_HEKI_DENIAL];
  const hekiCalls = [BigInt(KVM_HC_LOCK_CR_UPDATE), ...(profile.memory === 'v2' ? [BigInt(KVM_HC_PROTECT_MEMORY)] : [])];
  const memoryCaps = [KVM_CAP_PINBOX_MBEC, KVM_CAP_PINBOX_MEMORY_FAULT_POLICY];
  const needs: Need[] = [];
  const add = (need: Need): void => {
    if (!needs.some((n) => n.kind === need.kind)) needs.push(need);
  };
  const heki = (where: string): void => add({ kind: 'heki', profile: profile.name, where });
  const extension = (what: string, where: string): void => add({ kind: 'pinbox-extension', what, where });
  if (scenario.vm.andersen === true) extension('Andersen\'s CR pinning', 'vm.andersen');
  if (scenario.vm.crFilter !== undefined) extension('CR filter', 'vm.crFilter');
  if (scenario.vm.registerIntercepts !== undefined) extension('register intercepts', 'vm.registerIntercepts');
  if (scenario.vm.hekiMemory === 'v1') extension('Heki RFC v1 memory hypercall', 'vm.hekiMemory');
  for (const step of stepsOf(scenario.steps)) {
    const where = `${describeStep(step)} at ${step.path}`;
    if (step.kind === 'host') {
      const a = step.action;
      if ((a.op === 'enableCap' || a.op === 'checkExtension') && hekiCaps.includes(a.cap)) heki(where);
      if (a.op === 'snapshot' || a.op === 'restore') add({ kind: 'snapshots', where });
      if (a.op === 'setCrFilter' || (a.op === 'checkExtension' && a.cap === KVM_CAP_PINBOX_CR_FILTER)) extension('CR filter', where);
      if (a.op === 'setRegisterIntercepts' || (a.op === 'checkExtension' && a.cap === KVM_CAP_PINBOX_REG_INTERCEPTS)) extension('register intercepts', where);
      if (a.op === 'setMemoryAttributes' || ((a.op === 'enableCap' || a.op === 'checkExtension') && memoryCaps.includes(a.cap))) {
        extension('memory attributes', where);
      }
      continue;
    }
    const a = step.action;
    if (step.expect.exits?.some((e) => hekiExits.includes(e.reason))) heki(where);
    if (step.expect.exits?.some((e) => e.reason === KVM_EXIT_PINBOX_CR_FILTER)) extension('CR filter', where);
    if (step.expect.exits?.some((e) => e.reason === KVM_EXIT_PINBOX_REG_INTERCEPT)) extension('register intercepts', where);
    if (step.expect.exits?.some((e) => e.memory !== undefined || e.reason === profile.KVM_EXIT_MEMORY_FAULT)) extension('memory attributes', where);
    if (step.cpl === 0 && a.op === 'hypercall') {
      add({ kind: 'cpl0-hypercalls', where });
      if (hekiCalls.includes(a.nr)) heki(where);
    }
    if (step.cpl === 0 && a.op === 'exec' && (contains(a.code, VMCALL) || contains(a.code, VMMCALL))) {
      add({ kind: 'cpl0-hypercalls', where });
      if (a.regs.rax !== undefined && hekiCalls.includes(a.regs.rax)) heki(where);
    }
    const succeeds = step.expect.fault === null || step.expect.value !== undefined;
    if ((a.op === 'rdmsr' || a.op === 'wrmsr') && a.index >= X2APIC_FIRST && a.index <= X2APIC_LAST && succeeds) add({ kind: 'in-kernel-lapic', where });
  }
  const vm = scenario.vm;
  for (const [feature, on] of Object.entries(vm.guestCpuid)) {
    if (on === false) needs.push({ kind: 'cpuid-cleared', feature: feature as GuestCpuidFeature });
  }
  needs.push({ kind: 'ignore-msrs', value: vm.ignoreMsrs });
  if (needs.some((n) => n.kind === 'heki') && (vm.hostCr0 !== undefined || vm.hostCr4 !== undefined || vm.cr4PinnableMask !== undefined)) {
    needs.push({
      kind: 'host-cpu', profile: profile.name,
      ...(vm.hostCr0 !== undefined && { cr0: vm.hostCr0 }),
      ...(vm.hostCr4 !== undefined && { cr4: vm.hostCr4 }),
      ...(vm.cr4PinnableMask !== undefined && { cr4PinnableMask: vm.cr4PinnableMask }),
    });
  }
  return needs;
}

/** The host CPU a scenario describes against this host's, as far as user space can tell. */
function hostCpuMismatch(need: Extract<Need, { kind: 'host-cpu' }>, host: BackendHost): string | undefined {
  if (need.cr0 !== undefined && need.cr0 !== LINUX_HOST_CR0) {
    return `it describes a host CR0 of ${hex(need.cr0)}, and a Linux host's is ${hex(LINUX_HOST_CR0)}`;
  }
  const mask = PINNABLE[need.profile];
  if (need.cr4PinnableMask !== undefined && need.cr4PinnableMask !== mask) {
    return `it describes a cr4_pinned_mask of ${hex(need.cr4PinnableMask)}, and a Heki ${need.profile} kernel's is ${hex(mask)}`;
  }
  if (need.cr4 !== undefined) {
    if (host.cr4Flags === undefined) return 'it describes the host\'s CR4, which /proc/cpuinfo does not show here';
    const hostCr4 = host.cr4Flags.reduce((cr4, f) => cr4 | (CR4_OF_FLAG[f] ?? 0n), 0n);
    if ((need.cr4 & mask) !== (hostCr4 & mask)) {
      return `it describes a host CR4 whose pinnable bits are ${hex(need.cr4 & mask)}, and this host's are ${hex(hostCr4 & mask)} (/proc/cpuinfo: ${host.cr4Flags.join(' ')})`;
    }
  }
  return undefined;
}

function lacking(what: string, finding: Finding): string | undefined {
  return finding.present ? undefined : `${what}: ${finding.detail}`;
}

/** Why `support`'s host cannot run a scenario with these needs, or undefined when it can. */
export async function unsupportedReason(needs: readonly Need[], support: HostSupport): Promise<string | undefined> {
  const host = support.host;
  for (const need of needs) {
    let why: string | undefined;
    switch (need.kind) {
      case 'heki':
        why = lacking(`it needs Heki (${need.profile}: ${need.where}), and this host has none`, support.heki[need.profile]);
        break;
      case 'cpl0-hypercalls':
        why = support.hypercalls.complete ? undefined : `it needs CPL0 hypercalls (${need.where}), and this host cannot complete them: ${support.hypercalls.detail}`;
        break;
      case 'cpuid-cleared':
        why = lacking(`it needs a guest CPUID without ${need.feature}, which this host cannot take away`, await support.clearsCpuid(need.feature));
        break;
      case 'in-kernel-lapic':
        why = lacking(`it needs KVM's in-kernel local APIC (${need.where})`, await support.inKernelLapic());
        break;
      case 'snapshots':
        why = host.backend === 'model' ? undefined : `it takes snapshots (${need.where}), which only the KVM model can (Heki's state has no ioctl)`;
        break;
      case 'ignore-msrs':
        if (host.backend !== 'model' && host.ignoreMsrs !== need.value) {
          const has = host.ignoreMsrs === undefined ? 'this host does not show kvm.ignore_msrs' : `this host has kvm.ignore_msrs=${host.ignoreMsrs ? 'Y' : 'N'}`;
          why = `it assumes kvm.ignore_msrs=${need.value ? 'Y' : 'N'}, and ${has} (a module parameter: /sys/module/kvm/parameters/ignore_msrs)`;
        }
        break;
      case 'host-cpu':
        why = host.backend === 'model' ? undefined : hostCpuMismatch(need, host);
        break;
      case 'pinbox-extension':
        why = host.backend === 'model' ? undefined : `it needs pinbox's ${need.what} (${need.where}), which only the KVM model has (docs/pinbox-abi.md)`;
        break;
    }
    if (why !== undefined) return why;
  }
  return undefined;
}
