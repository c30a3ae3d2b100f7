/**
 * What a KVM can do, found by behaviour: small guests run on VMs of the backend, through the VMM
 * as every guest operation runs, and what they did is the answer. Numbers alone do not tell —
 * Heki's capability numbers are other capabilities on a mainline kernel (235 is
 * KVM_CAP_VM_TYPES, and may well answer 3), a CPUID bit user space clears may still reach the
 * guest, a hypercall may never complete — so each fact is a guest's experience:
 *
 *   - hypercalls: a VMCALL at CPL0 (Heki's version query, in writable memory) retires within
 *     SURVEY_RUN_MS; on a PVM host it never does (KVM's emulator rewrites it and runs it again);
 *   - Heki under a profile: the version query answers ≥ 1 (-KVM_ENOSYS without Heki), and with
 *     the profile's KVM_CAP_HEKI_CONFIGURE enabled, pinning CR0.WP exits to user space with the
 *     profile's KVM_EXIT_HEKI_CONFIGURE number;
 *   - whether a CPUID feature can be taken away: KVM_SET_CPUID2 clears it, and the guest's
 *     CPUID no longer shows it (a PVM host shows leaf 7 as the host's whatever user space says);
 *   - an in-kernel local APIC: with x2APIC mode on, RDMSR of the x2APIC ID is handled in KVM.
 *
 * The hypercall and Heki facts are found once (openBackend); the others when first asked.
 */
import { HEKI_PROFILES, KVM_HC_LOCK_CR_UPDATE, KVM_LOCK_CR_UPDATE_VERSION, X86_CR0_WP, type HekiProfileName } from '../../protocol/abi.js';
import { describeFault } from '../../protocol/notation.js';
import { loadBackend, modelBackend, type BackendName, type KvmBackend, type RealBackendOptions } from '../kvm/api/backend.js';
import { GUEST_CPUID_BITS } from '../kvm/api/cpuid.js';
import type { HostFacts } from './host-facts.js';
import type { Machine } from './machine.js';
import { parsePolicy, type GuestCpuidFeature, type PolicyDocument } from './policy/index.js';
import type { GuestResultOf } from './run/result.js';
import { Vmm } from './vmm.js';

/** How long a survey guest may run: its code is a few instructions. */
export const SURVEY_RUN_MS = 250;

/** A finding and how it was found, in words for a report. */
export interface Finding {
  readonly present: boolean;
  readonly detail: string;
}

/** A VM of only what the survey asks for: no capability, no filter. */
const PLAIN: PolicyDocument = { memory: '4MiB', userSpaceMsr: [], heki: { configureExits: [], denialExits: [] } };

/** vmcall */
const VMCALL = Uint8Array.of(0x0f, 0x01, 0xc1);
/**
 * mov ecx, 0x1b ; rdmsr ; or eax, 0x800 ; wrmsr ; or eax, 0x400 ; wrmsr   (APIC_BASE: EN, then EXTD)
 * mov ecx, 0x802 ; rdmsr                                                  (the x2APIC ID)
 */
const X2APIC_ID = Uint8Array.of(
  0xb9, 0x1b, 0x00, 0x00, 0x00, 0x0f, 0x32, 0x0d, 0x00, 0x08, 0x00, 0x00, 0x0f, 0x30, 0x0d, 0x00, 0x04, 0x00, 0x00, 0x0f, 0x30,
  0xb9, 0x02, 0x08, 0x00, 0x00, 0x0f, 0x32,
);

async function onVm<T>(backend: KvmBackend, policy: PolicyDocument, body: (m: Machine) => Promise<T>): Promise<T> {
  const vmm = new Vmm({ policy: parsePolicy(policy), backend });
  try {
    return await body(vmm.vm());
  } finally {
    vmm.close();
  }
}

type ExecResult = GuestResultOf<'exec'>;

/** exec at CPL0 with the survey's deadline. */
function exec(m: Machine, code: Uint8Array, regs: Record<string, bigint> = {}): Promise<ExecResult> {
  return m.perform(0, { op: 'exec', code, regs }, { runTimeoutMs: SURVEY_RUN_MS }) as Promise<ExecResult>;
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Heki's version query as a CPL0 VMCALL in writable memory: whether it completes, and what it returned. */
async function versionQuery(backend: KvmBackend): Promise<{ hypercalls: Finding; version?: bigint }> {
  const regs = { rax: BigInt(KVM_HC_LOCK_CR_UPDATE), rbx: 0n, rcx: 0n, rdx: BigInt(KVM_LOCK_CR_UPDATE_VERSION) };
  const r = await onVm(backend, PLAIN, (m) => exec(m, VMCALL, regs));
  if (r.stop === 'end') return { hypercalls: { present: true, detail: 'a CPL0 VMCALL completed' }, version: BigInt.asIntN(64, r.regs.rax) };
  if (r.stop === 'budget') {
    return { hypercalls: { present: false, detail: `a CPL0 VMCALL had not retired after ${SURVEY_RUN_MS} ms in KVM_RUN (RIP still on it)` } };
  }
  const why = r.fault !== undefined ? `took ${describeFault(r.fault)}` : `stopped (${r.stop})`;
  return { hypercalls: { present: false, detail: `a CPL0 VMCALL ${why}` } };
}

/** Pins CR0.WP with the profile's configure exit on: Heki answers 0 and exits with the profile's number. */
async function hekiUnder(profile: HekiProfileName, options: RealBackendOptions): Promise<Finding> {
  const exitName = 'KVM_EXIT_HEKI_CONFIGURE';
  try {
    const backend = await loadBackend('kvm', { ...options, hostHeki: profile });
    const policy: PolicyDocument = { ...PLAIN, profile, heki: { configureExits: ['cr0'], denialExits: [] } };
    const r = await onVm(backend, policy, (m) =>
      m.perform(0, { op: 'hypercall', nr: BigInt(KVM_HC_LOCK_CR_UPDATE), args: [0n, X86_CR0_WP, 0n] }, { runTimeoutMs: SURVEY_RUN_MS }));
    const exited = r.exits.some((e) => e.reason === exitName && e.heki?.reason === 'CR0');
    if ('ret' in r && r.ret === 0n && exited) return { present: true, detail: `a CR0.WP pin returned 0 and exited as ${exitName} (${HEKI_PROFILES[profile].KVM_EXIT_HEKI_CONFIGURE})` };
    return { present: false, detail: `with KVM_CAP_HEKI_CONFIGURE (${HEKI_PROFILES[profile].KVM_CAP_HEKI_CONFIGURE}) a CR0.WP pin did not exit as Heki ${profile}'s` };
  } catch (e) {
    return { present: false, detail: `Heki ${profile}'s capabilities could not be used: ${messageOf(e)}` };
  }
}

/** What a backend's KVM can do (see the top of this file). */
export class HostSupport implements HostFacts {
  private readonly cpuidCleared = new Map<GuestCpuidFeature, Promise<Finding>>();
  private lapic: Promise<Finding> | undefined;

  constructor(
    /** The backend the survey's plain VMs run on (Heki caps hidden unless verified). */
    readonly backend: KvmBackend,
    readonly hypercalls: { readonly complete: boolean; readonly detail: string },
    /** Heki under each profile. */
    readonly heki: Readonly<Record<HekiProfileName, Finding>>,
  ) {}

  get host() {
    return this.backend.describe();
  }

  /** Whether user space can take `feature` away from the guest: KVM_SET_CPUID2 without it, and the guest's CPUID agrees. */
  clearsCpuid(feature: GuestCpuidFeature): Promise<Finding> {
    let found = this.cpuidCleared.get(feature);
    if (found === undefined) {
      found = this.model ? Promise.resolve({ present: true, detail: 'the model\'s CPUID is what KVM_SET_CPUID2 says' }) : this.probeCpuid(feature);
      this.cpuidCleared.set(feature, found);
    }
    return found;
  }

  /** Whether x2APIC registers are handled in KVM (an in-kernel local APIC). */
  inKernelLapic(): Promise<Finding> {
    return (this.lapic ??= this.model ? Promise.resolve({ present: true, detail: 'the model has an in-kernel local APIC' }) : this.probeLapic());
  }

  private get model(): boolean {
    return this.backend.name === 'model';
  }

  private async probeCpuid(feature: GuestCpuidFeature): Promise<Finding> {
    const bits = GUEST_CPUID_BITS[feature];
    const [leaf] = bits[0]!;
    try {
      const r = await onVm(this.backend, { ...PLAIN, guestCpuid: { [feature]: false } }, (m) =>
        m.perform(0, { op: 'cpuid', leaf, subleaf: 0 }, { runTimeoutMs: SURVEY_RUN_MS }));
      if (!('eax' in r)) return { present: false, detail: `CPUID leaf 0x${leaf.toString(16)} faulted` };
      const got = { eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx };
      const left = bits.filter(([, reg, mask]) => (Number(got[reg] ?? 0) & mask) !== 0);
      return left.length === 0
        ? { present: true, detail: `KVM_SET_CPUID2 without ${feature}: the guest's CPUID no longer has it` }
        : { present: false, detail: `KVM_SET_CPUID2 without ${feature}, yet the guest's CPUID leaf 0x${leaf.toString(16)} ${left[0]![1].toUpperCase()} still has it` };
    } catch (e) {
      return { present: false, detail: `a guest without ${feature} could not run: ${messageOf(e)}` };
    }
  }

  private async probeLapic(): Promise<Finding> {
    try {
      const r = await onVm(this.backend, { ...PLAIN, guestCpuid: { x2apic: true } }, (m) => exec(m, X2APIC_ID));
      if (r.stop === 'end') return { present: true, detail: 'in x2APIC mode, RDMSR of the x2APIC ID was handled in KVM' };
      const why = r.fault !== undefined ? describeFault(r.fault) : r.stop;
      return { present: false, detail: `in x2APIC mode, RDMSR of the x2APIC ID (0x802) got ${why}: no in-kernel local APIC (the VMM creates no irqchip on real KVM)` };
    } catch (e) {
      return { present: false, detail: `x2APIC mode could not be turned on: ${messageOf(e)}` };
    }
  }
}

const MODEL_HEKI: Finding = { present: true, detail: 'the model implements Heki under both profiles' };

/** The model's support: everything a scenario can ask for. */
export function modelSupport(backend: KvmBackend = modelBackend()): HostSupport {
  return new HostSupport(backend, { complete: true, detail: 'the model completes every hypercall' }, { v2: MODEL_HEKI, v3: MODEL_HEKI });
}

/**
 * Surveys the machine's KVM (real backend): hypercalls, then Heki under each profile by
 * behaviour. The backend it hands back shows the Heki capabilities of a profile only where the
 * survey verified that the kernel has Heki under it.
 */
export async function surveyRealHost(options: RealBackendOptions = {}): Promise<HostSupport> {
  const { hostHeki: _ignored, ...rest } = options;
  const plain = await loadBackend('kvm', { ...rest, hostHeki: false });
  const { hypercalls, version } = await versionQuery(plain);
  const absent = (detail: string): Finding => ({ present: false, detail });
  let heki: Record<HekiProfileName, Finding>;
  if (!hypercalls.present) {
    heki = { v2: absent(`the Heki version query never completed (${hypercalls.detail})`), v3: absent(`the Heki version query never completed (${hypercalls.detail})`) };
  } else if (version === undefined || version < 1n) {
    const why = absent(`the Heki version query (KVM_HC_LOCK_CR_UPDATE ${KVM_HC_LOCK_CR_UPDATE}) returned ${String(version)}${version === -1000n ? ' (-KVM_ENOSYS: no such hypercall)' : ''}`);
    heki = { v2: why, v3: why };
  } else {
    heki = { v2: await hekiUnder('v2', rest), v3: await hekiUnder('v3', rest) };
  }
  const verified = (Object.keys(heki) as HekiProfileName[]).filter((p) => heki[p].present);
  const backend = verified.length === 0 ? plain : await loadBackend('kvm', { ...rest, hostHeki: verified.length === 2 ? true : verified[0]! });
  return new HostSupport(backend, { complete: hypercalls.present, detail: hypercalls.detail }, heki);
}

/**
 * A backend by name, with what it can do: the model as it is; the machine's KVM surveyed
 * (surveyRealHost). Rejects as loadBackend() does when the machine cannot have real KVM.
 */
export async function openBackend(name: BackendName, options: RealBackendOptions = {}): Promise<HostSupport> {
  if (name === 'model') return modelSupport();
  if (name !== 'kvm') throw new RangeError(`unknown KVM backend ${String(name)} (known: model, kvm)`);
  return surveyRealHost(options);
}
