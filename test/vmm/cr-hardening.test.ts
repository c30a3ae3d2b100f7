/**
 * The VMM's side of the CR-hardening mechanisms (docs/cr-filter.md, docs/register-intercepts.md,
 * docs/andersen.md): the policy sections, who answers each exit and what is recorded, and what a
 * VM reset, a triple-fault reboot, INIT and a snapshot do to each mechanism.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { PolicyError, parsePolicy, restoreSnapshot, takeSnapshot } from '../../host/vmm/index.js';
import { testVmm } from './vmm-support.js';

const SMEP = abi.X86_CR4_SMEP;
const SMAP = abi.X86_CR4_SMAP;
const WP = abi.X86_CR0_WP;
const BOOT_CR0 = 0x80050033n;
const BOOT_CR4 = 0x310ea0n;
const GP0 = { vector: 13, errorCode: 0 };

test('policy crFilter: a guest write clearing a filtered bit exits, the VMM denies it, the guest takes #GP(0); the exit is reported and recorded', async (t) => {
  const { vm, named } = testVmm({ crFilter: { cr4: ['smep'] } });
  const r = await vm.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMEP });
  t.deepEqual(r, {
    fault: GP0,
    exits: [{ reason: 'KVM_EXIT_PINBOX_CR_FILTER', cr: { cr: 4, access: 'mov', old: BOOT_CR4, new: BOOT_CR4 & ~SMEP, action: 'deny' } }],
  });
  t.is(vm.getSregs(0).cr4, BOOT_CR4);
  const [e] = named('cr_filter_exit');
  t.like(e?.fields, { cr: 4, access: 'mov', old_value: BOOT_CR4, new_value: BOOT_CR4 & ~SMEP, action: 'deny', value: 0n, source: 'policy' });
  t.is(named('cr_filter_changed')[0]?.fields.origin, 'policy');
});

test('answer "allow" lets the write through after the exit; a control client\'s reply overrides the policy until cleared', async (t) => {
  const { vm } = testVmm({ crFilter: { cr4: ['smep', 'smap'], answer: 'allow' } });
  t.like(await vm.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMAP }), { exits: [{ cr: { action: 'allow' } }] });
  t.is(vm.getSregs(0).cr4, BOOT_CR4 & ~SMAP);
  vm.setCrExitReply({ action: 'value', value: BOOT_CR4 });
  t.like(await vm.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMAP & ~SMEP }), { exits: [{ cr: { action: 'value', value: BOOT_CR4 } }] });
  t.is(vm.getSregs(0).cr4, BOOT_CR4, 'the reply\'s value was loaded');
  vm.setCrExitReply(null);
  await vm.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMEP });
  t.is(vm.getSregs(0).cr4, BOOT_CR4 & ~SMEP, 'the policy again');
});

test('the in-process caller\'s hook answers first; LMSW and CLTS are filtered too', async (t) => {
  const { vm } = testVmm({ crFilter: { cr0: ['ts', 'mp'] } });
  await vm.perform(0, { op: 'writeCr', cr: 0, value: BOOT_CR0 | abi.X86_CR0_TS }, { onExit: () => ({ action: 'allow' }) });
  t.is(vm.getSregs(0).cr0, BOOT_CR0 | abi.X86_CR0_TS);
  t.like(await vm.perform(0, { op: 'clts' }), { fault: GP0, exits: [{ cr: { cr: 0, access: 'clts', new: BOOT_CR0 } }] });
  t.like(await vm.perform(0, { op: 'lmsw', value: 0x1 }), { fault: GP0, exits: [{ cr: { access: 'lmsw' } }] });
});

test('a VM reset puts the policy\'s CR filter back in place of a control client\'s', async (t) => {
  const { vm } = testVmm({ crFilter: { cr4: ['smep'] } });
  vm.setCrFilter({ cr0Mask: 0n, cr4Mask: 0n });
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMEP }), { exits: [] });
  vm.reset('control');
  t.like(await vm.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMEP }), { fault: GP0 });
});

test('policy registerIntercepts: without a monitor the policy answers (deny); a monitor decides each one', async (t) => {
  const { vmm, vm, named } = testVmm({ registerIntercepts: { intercept: ['Cr0Write', 'IdtrWrite'], cr0Mask: ['wp'] } });
  t.like(await vm.perform(0, { op: 'writeCr', cr: 0, value: BOOT_CR0 & ~WP }), {
    fault: GP0, exits: [{ reason: 'KVM_EXIT_PINBOX_REG_INTERCEPT', intercept: { name: 'Cr0Write', old: BOOT_CR0, new: BOOT_CR0 & ~WP, action: 'deny' } }],
  });
  t.is(named('register_intercept')[0]?.fields.source, 'policy');
  const seen: string[] = [];
  const detach = vmm.attachMonitor(vm.name, async (i) => {
    seen.push(i.intercept.name);
    return { action: 'allow' };
  });
  await vm.perform(0, { op: 'writeCr', cr: 0, value: BOOT_CR0 & ~WP });
  t.deepEqual(seen, ['Cr0Write']);
  t.is(vm.getSregs(0).cr0, BOOT_CR0 & ~WP);
  t.is(named('register_intercept')[1]?.fields.source, 'monitor');
  t.throws(() => vmm.attachMonitor(vm.name, () => ({ action: 'deny' })), { code: 'already_exists' } as never);
  detach();
  t.like(named('monitor_detached')[0], { vm: vm.name });
});

test('a policy asking for an intercept the CPU cannot give, or a CR filter of nothing, is refused naming the field', (t) => {
  const e = t.throws(() => parsePolicy({ crFilter: { answer: 'deny' }, registerIntercepts: { intercept: ['XCr0Write'] } }), { instanceOf: PolicyError });
  t.deepEqual(e?.issues.map((i) => i.path), ['/crFilter', '/registerIntercepts/intercept/0']);
});

test('Andersen: a triple-fault reboot keeps the vCPU\'s pins (the VMM\'s reboot), INIT clears them (kvm_vcpu_reset), a VM reset clears them', async (t) => {
  const { vm } = testVmm({ andersen: true });
  t.like(await vm.perform(0, { op: 'wrmsr', index: abi.MSR_KVM_CR0_PINNED_HIGH, value: WP }), { exits: [] });
  // A triple fault: an IDT of limit 0, then #UD.
  const shutdown = await vm.perform(0, { op: 'exec', code: Uint8Array.from([0x0f, 0x01, 0x18, 0x0f, 0x0b]), regs: { rax: 0x9_0000n } });
  t.like(shutdown, { stop: 'shutdown' });
  t.like(await vm.perform(0, { op: 'rdmsr', index: abi.MSR_KVM_CR0_PINNED_HIGH }), { value: WP });
  t.like(await vm.perform(0, { op: 'writeCr', cr: 0, value: BOOT_CR0 & ~WP }), { fault: GP0 });
  vm.initVcpu(0);
  t.like(await vm.perform(0, { op: 'rdmsr', index: abi.MSR_KVM_CR0_PINNED_HIGH }), { value: 0n });
  await vm.perform(0, { op: 'wrmsr', index: abi.MSR_KVM_CR4_PINNED_HIGH, value: SMEP });
  vm.reset('control');
  t.like(await vm.perform(0, { op: 'rdmsr', index: abi.MSR_KVM_CR4_PINNED_HIGH }), { value: 0n });
});

test('a snapshot restored into a new VM of the same policy brings the CR filter, the intercepts, Andersen\'s and Heki\'s pins', async (t) => {
  const policy = { andersen: true, crFilter: { cr0: ['mp'] }, registerIntercepts: { intercept: ['Cr4Write'], cr4Mask: ['smap'] } };
  const { vmm, vm } = testVmm(policy);
  vm.setCrFilter({ cr0Mask: WP, cr4Mask: 0n });
  vm.setRegisterIntercepts(undefined, { control: abi.hvCrInterceptBit('IdtrWrite'), cr0Mask: 0n, cr4Mask: 0n, miscEnableMask: 0n });
  await vm.perform(0, { op: 'wrmsr', index: abi.MSR_KVM_CR4_PINNED_HIGH, value: SMEP });
  t.like(await vm.perform(0, { op: 'hypercall', nr: BigInt(abi.KVM_HC_LOCK_CR_UPDATE), args: [4n, SMAP] }), { ret: 0n });
  const snap = takeSnapshot(vm);
  const copy = vmm.createVm('copy', parsePolicy(policy));
  restoreSnapshot(copy, snap);
  t.deepEqual(copy.crHardening.filter, { cr0Mask: WP, cr4Mask: 0n });
  t.is(copy.getRegisterIntercepts(0).control, abi.hvCrInterceptBit('IdtrWrite'));
  t.like(await copy.perform(0, { op: 'rdmsr', index: abi.MSR_KVM_CR4_PINNED_HIGH }), { value: SMEP });
  t.deepEqual(copy.hekiPins, { cr0: 0n, cr4: SMAP });
  t.like(await copy.perform(0, { op: 'writeCr', cr: 4, value: BOOT_CR4 & ~SMEP }), { fault: GP0 });
});
