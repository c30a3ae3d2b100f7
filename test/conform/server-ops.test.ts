/**
 * The protocol pieces the remote conformance target stands on, served by the VMM over real
 * sockets: createVm / destroyVm, the guest endpoint in the control hello, setMsrExitReply
 * "untouched", nil filter bitmaps, exitData, and holdExit / releaseExit (a vCPU really parked
 * inside its user-space exit while the VM changes). Expected values come from
 * docs/msr-filter.md (§7 cases named in each test) and PROTOCOL.md §6.
 */
import test from 'ava';
import {
  GP_VECTOR, KVM_CAP_X86_USER_SPACE_MSR, KVM_HC_LOCK_CR_UPDATE, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_FILTER_READ,
  X86_CR0_WP,
} from '../../protocol/abi.js';
import type { ClientSession, Event } from '../../protocol/index.js';
import { scenarioPolicy } from '../../host/conform/vm-block.js';
import { parsePolicy } from '../../host/vmm/index.js';
import { testServer, withServer, type TestServer } from '../vmm/server-support.js';

const FILTERED = 0xda0;
const DENY_READ_OF_FILTERED = { flags: 0, ranges: [{ flags: KVM_MSR_FILTER_READ, base: FILTERED, nmsrs: 1, bitmap: Uint8Array.of(0) }] };
/** A scenario's VM (KVM's initial state: every capability 0, no filter), as policy text. */
const SCENARIO_POLICY = JSON.stringify(scenarioPolicy(parsePolicy({ vcpus: 2 }).vmOptions));

async function guestOf(s: TestServer, vm: string, vcpu = 0): Promise<ClientSession> {
  const g = await s.raw('guest');
  await g.hello({ role: 'guest', vm, vcpu });
  return g;
}

/** A control session whose pushes of `exit_held` are collected. */
async function watching(s: TestServer): Promise<{ control: ClientSession; held: Event[] }> {
  const control = await s.control();
  const held: Event[] = [];
  const { sub } = await control.request('subscribe', { events: ['exit_held'] });
  control.onEvent(sub, (e) => held.push(e));
  return { control, held };
}

async function until(condition: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 400 && !condition(); i++) await new Promise((r) => setTimeout(r, 5));
  if (!condition()) throw new Error(`timed out waiting for ${what}`);
}

/** A VM of the scenario policy with user-space FILTER exits and 0xda0's reads denied. */
async function filteredVm(control: ClientSession, vm: string): Promise<void> {
  await control.request('createVm', { vm, policy: SCENARIO_POLICY });
  await control.request('enableCap', { vm, cap: KVM_CAP_X86_USER_SPACE_MSR, args: [BigInt(KVM_MSR_EXIT_REASON_FILTER)] });
  await control.request('setMsrFilter', { vm, ...DENY_READ_OF_FILTERED });
}

test('the control hello names the guest endpoint; a guest hello does not', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.raw('control');
    t.deepEqual((await c.hello({ role: 'control', token: s.server.token! })).guestEndpoints, [s.guestUrl]);
    const g = await s.raw('guest');
    t.is((await g.hello({ role: 'guest' })).guestEndpoints, undefined);
  });
});

test('createVm makes a VM of its own policy, in the state that policy gives: a scenario\'s is KVM\'s initial state', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    t.deepEqual(await c.request('createVm', { vm: 'mine', policy: SCENARIO_POLICY }), { vcpus: 2, profile: 'v2' });
    t.deepEqual(await c.request('createVm', { vm: 'servers' }), { vcpus: 1, profile: 'v2' }, 'without a policy: the server\'s');
    const mine = await guestOf(s, 'mine', 1);
    const servers = await guestOf(s, 'servers');
    // No user-space MSR exits (mask 0): an unknown MSR is #GP in KVM (docs/msr-filter.md §7 #2).
    t.deepEqual(await mine.request('rdmsr', { index: 0xdeadbeef }), { fault: { vector: GP_VECTOR, errorCode: 0 }, exits: [] });
    // No Heki configure exit (mask 0); the server's policy has them by default.
    const pinWp = { nr: BigInt(KVM_HC_LOCK_CR_UPDATE), args: [0n, BigInt(X86_CR0_WP)] };
    t.deepEqual(await mine.request('hypercall', pinWp), { ret: 0n, exits: [] });
    const configure = await servers.request('hypercall', pinWp);
    t.is(configure.exits[0]?.reason, 'KVM_EXIT_HEKI_CONFIGURE');
    // No Heki denial exit (mask 0): the write that clears the pinned WP is #GP from KVM alone.
    const cr0 = (await mine.request('readCr', { cr: 0 })).value!;
    t.deepEqual(await mine.request('writeCr', { cr: 0, value: cr0 & ~BigInt(X86_CR0_WP) }), { fault: { vector: GP_VECTOR, errorCode: 0 }, exits: [] });
    // No MSR filter was ever installed on it.
    const { events } = await c.request('events', { vm: 'mine' });
    t.deepEqual(events.filter((e) => e.name === 'msr_filter_changed'), []);
    t.true(events.some((e) => e.name === 'vm_created'));
  });
});

test('createVm refuses a name in use unless asked to replace it, a bad policy with the path of each problem, and one VM too many', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    await c.request('createVm', { vm: 'a', policy: SCENARIO_POLICY });
    const old = await guestOf(s, 'a');
    await t.throwsAsync(c.request('createVm', { vm: 'a' }), { code: 'already_exists', message: /VM "a" exists already/ });
    t.deepEqual(await c.request('createVm', { vm: 'a', replace: true }), { vcpus: 1, profile: 'v2' });
    await t.throwsAsync(old.request('clts', {}), { code: 'not_found', message: /gone/ }, 'the replaced VM\'s guests are told');
    t.deepEqual(await (await guestOf(s, 'a')).request('clts', {}), { exits: [] });

    const bad = await t.throwsAsync(c.request('createVm', { vm: 'b', policy: '{"vcpus": 0, "profile": "v9"}' }), { code: 'invalid_message' });
    t.is((bad as { path?: string }).path, 'policy');
    t.regex(bad!.message, /\/vcpus: /);
    t.regex(bad!.message, /\/profile: /);
    await t.throwsAsync(c.request('createVm', { vm: 'b', policy: '{"vcpus": ' }), { code: 'invalid_message', message: /not valid JSON at line 1/ });
    await t.throwsAsync(c.request('createVm', { vm: 'a', replace: true, policy: '[]' }), { code: 'invalid_message' });
    t.deepEqual(s.vmm.vmNames, ['a'], 'nothing was made or dropped');

    await c.request('createVm', { vm: 'c' });
    await t.throwsAsync(c.request('createVm', { vm: 'd' }), { code: 'limit', message: /at most 2 VMs/ });
  }, {}, { maxVms: 2 });
});

test('destroyVm drops the VM: its guests and control ops get not_found', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    await c.request('createVm', { vm: 'gone' });
    const g = await guestOf(s, 'gone');
    t.deepEqual(await c.request('destroyVm', { vm: 'gone' }), {});
    await t.throwsAsync(g.request('clts', {}), { code: 'not_found' });
    await t.throwsAsync(c.request('destroyVm', { vm: 'gone' }), { code: 'not_found' });
    t.deepEqual(s.vmm.vmNames, []);
  });
});

test('setMsrExitReply "untouched" re-enters without writing kvm_run.msr: the read returns 0 and retires (docs/msr-filter.md §7 #6)', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    await filteredVm(c, 'v');
    const g = await guestOf(s, 'v');
    await c.request('setMsrExitReply', { vm: 'v', msr: 'untouched' });
    t.deepEqual(await g.request('rdmsr', { index: FILTERED }), {
      value: 0n, exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: FILTERED, data: 0n, error: 0 } }],
    });
    const { events } = await c.request('events', { vm: 'v' });
    t.like(events.find((e) => e.name === 'msr_exit_reply'), { fields: { source: 'untouched', error: 0n, data: 0n } });
    await t.throwsAsync(c.request('setMsrExitReply', { vm: 'v', msr: 'touched' as never }), { code: 'invalid_message', message: /msr: .*"untouched"/ });
  });
});

test('an answered read reports what KVM put in kvm_run.msr.data (0) as exitData; a write\'s data is the value written (§7 #3, #4)', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    await filteredVm(c, 'v');
    await c.request('setMsrFilter', { vm: 'v', flags: 0, ranges: [{ flags: 3, base: FILTERED, nmsrs: 1, bitmap: Uint8Array.of(0) }] });
    const g = await guestOf(s, 'v');
    await c.request('setMsrExitReply', { vm: 'v', msr: { error: 0, data: 0xaabbccdd11223344n } });
    t.deepEqual((await g.request('rdmsr', { index: FILTERED })).exits, [
      { reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: FILTERED, data: 0xaabbccdd11223344n, error: 0, exitData: 0n } },
    ]);
    await c.request('setMsrExitReply', { vm: 'v', msr: { error: 1, data: 0x77n } });
    t.deepEqual(await g.request('wrmsr', { index: FILTERED, value: 0x100000002n }), {
      fault: { vector: GP_VECTOR, errorCode: 0 },
      exits: [{ reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'FILTER', index: FILTERED, data: 0x100000002n, error: 1 } }],
    });
  });
});

test('a nil bitmap is a NULL pointer: EFAULT for a range with MSRs, nothing read for an empty one (§7 #19, #24)', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    await c.request('createVm', { vm: 'v', policy: SCENARIO_POLICY });
    const refused = await t.throwsAsync(c.request('setMsrFilter', { vm: 'v', flags: 0, ranges: [{ flags: 1, base: 0x10, nmsrs: 1, bitmap: null }] }), { code: 'kvm_error' });
    t.is((refused as { errno?: string }).errno, 'EFAULT');
    t.deepEqual(await c.request('setMsrFilter', { vm: 'v', flags: 0, ranges: [{ flags: 0, base: 0, nmsrs: 0, bitmap: null }] }), {});
  });
});

test('holdExit parks the vCPU inside its next exit: the filter changes meanwhile and the reply still completes the read (§7 #32)', async (t) => {
  await withServer({}, async (s) => {
    const { control: c, held } = await watching(s);
    await filteredVm(c, 'v');
    const g = await guestOf(s, 'v');
    await c.request('setMsrExitReply', { vm: 'v', msr: { error: 0, data: 5n } });
    await c.request('holdExit', { vm: 'v', vcpu: 0 });
    let answered = false;
    const read = g.request('rdmsr', { index: FILTERED }).finally(() => (answered = true));
    await until(() => held.length === 1, 'exit_held');
    t.like(held[0], { name: 'exit_held', vm: 'v', vcpu: 0, fields: { reason: 'KVM_EXIT_X86_RDMSR', exit_reason: 29n } });
    await new Promise((r) => setTimeout(r, 20));
    t.false(answered, 'the guest request waits while its exit is held');
    t.is(s.vmm.get('v')!.vcpu(0).vcpu.kvmRun.reason, 'KVM_EXIT_X86_RDMSR', 'KVM_RUN returned the RDMSR exit and was not entered again');
    // While the vCPU sits in KVM_EXIT_X86_RDMSR: clear the filter, and another guest connection
    // of the same VM still runs on the other vCPU.
    await c.request('setMsrFilter', { vm: 'v', flags: 0, ranges: [] });
    t.deepEqual(await (await guestOf(s, 'v', 1)).request('rdmsr', { index: FILTERED }), { fault: { vector: GP_VECTOR, errorCode: 0 }, exits: [] });
    t.deepEqual(await c.request('releaseExit', { vm: 'v', vcpu: 0 }), { held: true });
    t.deepEqual(await read, {
      value: 5n, exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: FILTERED, data: 5n, error: 0, exitData: 0n } }],
    });
    t.deepEqual(await c.request('releaseExit', { vm: 'v', vcpu: 0 }), { held: false });
    t.deepEqual((await g.request('rdmsr', { index: FILTERED })).exits, [], 'the new filter governs the next read (§7 #33)');
    const names = (await c.request('events', { vm: 'v' })).events.map((e) => e.name).filter((n) => n.startsWith('exit_') || n === 'msr_filter_changed');
    t.deepEqual(names, ['msr_filter_changed', 'exit_held', 'msr_filter_changed', 'exit_released']);
  });
});

test('a hold an operation does not spend stays armed for the next exit; releaseExit drops it; a missing vCPU is not_found', async (t) => {
  await withServer({}, async (s) => {
    const { control: c, held } = await watching(s);
    await filteredVm(c, 'v');
    const g = await guestOf(s, 'v');
    await c.request('holdExit', { vm: 'v', vcpu: 0 });
    t.deepEqual(await g.request('clts', {}), { exits: [] }, 'no exit: nothing to hold');
    t.deepEqual(await c.request('releaseExit', { vm: 'v', vcpu: 0 }), { held: false });
    t.like(await g.request('rdmsr', { index: FILTERED }), { fault: { vector: GP_VECTOR } }, 'a dropped hold holds nothing');
    t.deepEqual(held, []);
    await t.throwsAsync(c.request('holdExit', { vm: 'v', vcpu: 2 }), { code: 'not_found', message: /no vCPU 2/ });
    await t.throwsAsync(c.request('releaseExit', { vm: 'nope', vcpu: 0 }), { code: 'not_found' });
  });
});

test('a held exit goes on when the control connection that held it closes, and fails vm_killed when its VM is destroyed', async (t) => {
  const s = await testServer({});
  try {
    const first = await watching(s);
    await filteredVm(first.control, 'v');
    const g = await guestOf(s, 'v');
    await first.control.request('setMsrExitReply', { vm: 'v', msr: { error: 0, data: 9n } });
    await first.control.request('holdExit', { vm: 'v', vcpu: 0 });
    const read = g.request('rdmsr', { index: FILTERED });
    await until(() => first.held.length === 1, 'exit_held');
    first.control.close();
    t.is((await read).value, 9n);

    const second = await watching(s);
    await second.control.request('holdExit', { vm: 'v', vcpu: 0 });
    const again = g.request('rdmsr', { index: FILTERED });
    await until(() => second.held.length === 1, 'exit_held');
    await second.control.request('destroyVm', { vm: 'v' });
    await t.throwsAsync(again, { code: 'vm_killed' });
  } finally {
    await s.close();
  }
});
