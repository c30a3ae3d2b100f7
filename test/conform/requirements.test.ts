/**
 * What a scenario needs beyond plain KVM (host/conform/requirements.ts), read from the scenario,
 * and the reason a host that lacks it gives — decided before the scenario runs.
 */
import test from 'ava';
import type { BackendHost, KvmBackend } from '../../host/kvm/api/backend.js';
import { parseScenario, scenarioNeeds, unsupportedReason, type Need } from '../../host/conform/index.js';
import { HostSupport, type Finding, type GuestCpuidFeature } from '../../host/vmm/index.js';
import { scenarioWith } from './samples.js';

const needsOf = (steps: unknown[], vm?: Record<string, unknown>): string[] =>
  scenarioNeeds(parseScenario(scenarioWith(steps, vm), 'x.json')).map((n) => n.kind);

test('Heki: a Heki capability named by a host step, a lock call at CPL0, or an expected Heki exit', (t) => {
  t.deepEqual(needsOf([{ host: { enableCap: { cap: 'KVM_CAP_HEKI_CONFIGURE', args: [1] } }, expect: { ok: true } }]), ['heki', 'ignore-msrs']);
  t.deepEqual(needsOf([{ host: { checkExtension: { cap: 'KVM_CAP_HEKI_DENIAL' } }, expect: { value: 3 } }], { profile: 'v3' }), ['heki', 'ignore-msrs']);
  t.deepEqual(needsOf([{ guest: { op: 'hypercall', nr: 13, args: [0, 0, 1] }, expect: { ret: 1 } }]), ['cpl0-hypercalls', 'heki', 'ignore-msrs']);
  t.deepEqual(needsOf([{ guest: { op: 'writeCr', cr: 4, value: 0 }, expect: { exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL' }] } }]), ['heki', 'ignore-msrs']);
});

test('a hypercall at CPL3 needs neither Heki nor CPL0 hypercalls (KVM answers -KVM_EPERM before it looks at the number)', (t) => {
  t.deepEqual(needsOf([{ guest: { op: 'hypercall', cpl: 3, nr: 13 }, expect: { ret: '-0x1' } }]), ['ignore-msrs']);
});

test('CPL0 code with VMCALL or VMMCALL in it needs CPL0 hypercalls (and Heki when RAX is KVM_HC_LOCK_CR_UPDATE)', (t) => {
  const exec = (code: string, rax: number) => ({ guest: { op: 'exec', code, regs: { rax } }, expect: { stop: 'end' } });
  t.deepEqual(needsOf([exec('0f 01 d9', 0)]), ['cpl0-hypercalls', 'ignore-msrs']);
  t.deepEqual(needsOf([exec('90 0f 01 c1', 13)]), ['cpl0-hypercalls', 'heki', 'ignore-msrs']);
  t.deepEqual(needsOf([exec('0f 01 c8', 0)]), ['ignore-msrs'], 'MONITOR is not a hypercall');
});

test('an x2APIC register access expected to succeed needs an in-kernel local APIC; one expected to fault does not', (t) => {
  t.deepEqual(needsOf([{ guest: { op: 'rdmsr', index: '0x802' }, expect: { value: 0 } }]), ['in-kernel-lapic', 'ignore-msrs']);
  t.deepEqual(needsOf([{ guest: { op: 'rdmsr', index: '0x802' }, expect: { fault: { vector: 13, errorCode: 0 } } }]), ['ignore-msrs']);
});

test('a guest CPUID without a feature, snapshots, kvm.ignore_msrs; the host CPU only with Heki', (t) => {
  const clts = { guest: { op: 'clts' }, expect: { fault: null } };
  const needs = scenarioNeeds(parseScenario(scenarioWith([clts, { host: { snapshot: { name: 's' } }, expect: { ok: true } }], { guestCpuid: { smep: false, umip: true }, ignoreMsrs: true, hostCr0: '0x80050033' }), 'x.json'));
  t.deepEqual(needs, [{ kind: 'snapshots', where: 'host snapshot at /steps/1' }, { kind: 'cpuid-cleared', feature: 'smep' }, { kind: 'ignore-msrs', value: true }]);
  const heki = scenarioNeeds(parseScenario(scenarioWith([{ guest: { op: 'hypercall', nr: 13 }, expect: { ret: 0 } }], { hostCr0: '0x80050033', hostCr4: ['smep'] }), 'x.json'));
  t.like(heki.find((n) => n.kind === 'host-cpu'), { profile: 'v2', cr0: 0x80050033n, cr4: 1n << 20n });
});

/** A surveyed host without a real KVM behind it: the findings a test gives. */
class FakeSupport extends HostSupport {
  constructor(host: BackendHost, hypercalls: boolean, heki: boolean, private readonly cpuid: Partial<Record<GuestCpuidFeature, Finding>> = {}) {
    const backend: KvmBackend = { name: host.backend, open: () => { throw new Error('not opened'); }, describe: () => host };
    const h: Finding = { present: heki, detail: heki ? 'verified' : 'the version query returned -1000' };
    super(backend, { complete: hypercalls, detail: hypercalls ? 'completed' : 'never completed' }, { v2: h, v3: h });
  }
  override clearsCpuid(feature: GuestCpuidFeature): Promise<Finding> {
    return Promise.resolve(this.cpuid[feature] ?? { present: true, detail: 'cleared' });
  }
  override inKernelLapic(): Promise<Finding> {
    return Promise.resolve({ present: false, detail: 'no irqchip' });
  }
}

const HOST: BackendHost = { backend: 'kvm', summary: 'Linux test', vendorModules: ['kvm_intel'], ignoreMsrs: false, cr4Flags: ['smep', 'smap', 'umip', 'fsgsbase'] };

test('the reason names the first need the host lacks, with how the survey found it', async (t) => {
  const bare = new FakeSupport(HOST, false, false, { smep: { present: false, detail: 'the guest still sees it' } });
  const why = (needs: Need[]) => unsupportedReason(needs, bare);
  t.regex((await why([{ kind: 'heki', profile: 'v2', where: 'host enableCap at /steps/0' }]))!, /^it needs Heki \(v2: host enableCap at \/steps\/0\), and this host has none: the version query returned -1000$/);
  t.regex((await why([{ kind: 'cpl0-hypercalls', where: 'x' }]))!, /cannot complete them: never completed/);
  t.regex((await why([{ kind: 'cpuid-cleared', feature: 'smep' }]))!, /without smep, which this host cannot take away: the guest still sees it/);
  t.regex((await why([{ kind: 'in-kernel-lapic', where: 'x' }]))!, /in-kernel local APIC \(x\): no irqchip/);
  t.regex((await why([{ kind: 'snapshots', where: 'x' }]))!, /only the KVM model can/);
  t.regex((await why([{ kind: 'ignore-msrs', value: true }]))!, /assumes kvm\.ignore_msrs=Y, and this host has kvm\.ignore_msrs=N/);
  t.is(await why([{ kind: 'ignore-msrs', value: false }, { kind: 'cpuid-cleared', feature: 'umip' }]), undefined);
});

test('with Heki, the host CPU a scenario describes must be this host\'s as far as user space can tell', async (t) => {
  const heki = new FakeSupport(HOST, true, true);
  const cpu = (over: Partial<Extract<Need, { kind: 'host-cpu' }>>) => unsupportedReason([{ kind: 'host-cpu', profile: 'v2', ...over }], heki);
  const pinnable = (1n << 20n) | (1n << 21n) | (1n << 11n) | (1n << 16n);
  t.is(await cpu({ cr0: 0x80050033n, cr4: pinnable | 0x6a0n }), undefined, 'CR4 bits outside the pinnable mask do not matter');
  t.regex((await cpu({ cr0: 0x80040033n }))!, /host CR0 of 0x80040033, and a Linux host's is 0x80050033/);
  t.regex((await cpu({ cr4: 1n << 20n }))!, /pinnable bits are 0x100000, and this host's are 0x310800 \(\/proc\/cpuinfo: smep smap umip fsgsbase\)/);
  t.regex((await cpu({ cr4PinnableMask: 0x100000n }))!, /cr4_pinned_mask of 0x100000, and a Heki v2 kernel's is 0xb10800/);
});

test('the model lacks nothing a scenario can name', async (t) => {
  const model = new FakeSupport({ backend: 'model', summary: 'the model' }, true, true);
  t.is(await unsupportedReason([{ kind: 'snapshots', where: 'x' }, { kind: 'ignore-msrs', value: true }, { kind: 'host-cpu', profile: 'v2', cr0: 1n }], model), undefined);
});

test('pinbox\'s own extensions and Andersen\'s pins, which only the model has: a host step, an expected exit, the vm block', async (t) => {
  const filter = { host: { setCrFilter: { cr4: ['smep'] } }, expect: { ok: true } };
  const intercepted = { guest: { op: 'writeCr', cr: 4, value: 0 }, expect: { exits: [{ reason: 'KVM_EXIT_PINBOX_REG_INTERCEPT' }] } };
  t.deepEqual(needsOf([filter]), ['pinbox-extension', 'ignore-msrs']);
  t.deepEqual(needsOf([intercepted]), ['pinbox-extension', 'ignore-msrs']);
  t.deepEqual(needsOf([{ host: { checkExtension: { cap: 'KVM_CAP_PINBOX_CR_FILTER' } }, expect: { value: 17 } }]), ['pinbox-extension', 'ignore-msrs']);
  t.deepEqual(needsOf([{ guest: { op: 'clts' }, expect: {} }], { andersen: true }), ['pinbox-extension', 'ignore-msrs']);
  t.deepEqual(needsOf([{ guest: { op: 'clts' }, expect: {} }]), ['ignore-msrs']);
  const needs = scenarioNeeds(parseScenario(scenarioWith([filter]), 'x.json'));
  const real = { host: { backend: 'kvm', ignoreMsrs: false } } as unknown as HostSupport;
  t.regex((await unsupportedReason(needs, real))!, /^it needs pinbox's CR filter \(host setCrFilter at \/steps\/0\), which only the KVM model has/);
  t.is(await unsupportedReason(needs, { host: { backend: 'model' } } as unknown as HostSupport), undefined);
});
