/**
 * The servers: the guest endpoint (VMs made by name, vCPUs attached, requests run), the
 * control endpoint (token, every control op), roles kept apart, and each limit answered with
 * a clear error.
 */
import test from 'ava';
import { statSync, readFileSync } from 'node:fs';
import { GP_VECTOR, KVM_CAP_X86_USER_SPACE_MSR, X86_CR4_SMEP } from '../../protocol/abi.js';
import { connect as openConnection, type Event } from '../../protocol/index.js';
import { connect } from '../../guest-sdk/index.js';
import { RawPeer } from '../protocol/raw-peer.js';
import { until, withServer } from './server-support.js';
import { eventFromWire, eventProblems } from '../../protocol/events/index.js';

test('a guest attaches to a VM made from the policy on first use, with the VM\'s vCPU count and profile', async (t) => {
  await withServer({ vcpus: 2, profile: 'v3' }, async (s) => {
  const guest = await connect(s.guestUrl, { vm: 'alpha', vcpu: 1 });
  t.like(guest, { vm: 'alpha', vcpu: 1, vcpus: 2, profile: 'v3', server: 'pinbox' });
  t.is(await guest.rdmsr(0xc0000080), 0xd01n);
  t.deepEqual(s.vmm.vmNames, ['alpha']);
  const other = await connect(s.guestUrl, { vm: 'alpha', vcpu: 0 });
  t.is(await other.readCr(0), await guest.readCr(0));
  t.deepEqual(s.vmm.vmNames, ['alpha'], 'the second guest shares the VM');
  await t.throwsAsync(connect(s.guestUrl, { vm: 'alpha', vcpu: 2 }), { message: /no vCPU 2/ });
  guest.close();
  other.close();
  });
});

test('the control token is random, written 0600 next to the socket, and checked: none, wrong, right', async (t) => {
  await withServer({}, async (s) => {
  t.regex(s.server.token!, /^[0-9a-f]{64}$/);
  t.is(s.server.tokenFile, `${s.controlUrl.slice(5)}.token`);
  t.is(statSync(s.server.tokenFile!).mode & 0o777, 0o600);
  t.is(readFileSync(s.server.tokenFile!, 'utf8').trim(), s.server.token!);
  const none = await s.raw('control');
  await t.throwsAsync(none.hello({ role: 'control' }), { code: 'invalid_message', message: /token/ });
  const wrong = await s.raw('control');
  await t.throwsAsync(wrong.hello({ role: 'control', token: s.server.token!.replace(/^./, (c) => (c === '0' ? '1' : '0')) }), { code: 'bad_token' });
  await t.throwsAsync(wrong.request('stats', {}), { code: 'hello_required' }, 'a failed hello leaves the connection un-greeted');
  const right = await s.control();
  t.like(await right.request('stats', {}), { vms: 0 });
  });
});

test('an explicit token is used as given; no token file is written unless asked', async (t) => {
  await withServer({}, async (s) => {
  t.is(s.server.tokenFile, undefined);
  const c = await s.raw('control');
  t.like(await c.hello({ role: 'control', token: 'sesame' }), { role: 'control', server: 'pinbox' });
  }, { token: 'sesame', tokenFile: false });
});

test('a guest-role connection can never perform a control op; each endpoint refuses the other role', async (t) => {
  await withServer({}, async (s) => {
  const g = await s.raw('guest');
  await g.hello({ role: 'guest' });
  for (const [op, params] of [['stats', {}], ['resetVm', { vm: 'default' }], ['getRegs', { vm: 'default', vcpu: 0 }], ['setMsrExitReply', { vm: 'default', msr: null }]] as const) {
    await t.throwsAsync(g.request(op as 'stats', params as never), { code: 'forbidden' }, op);
  }
  const controlOnGuest = await s.raw('guest');
  await t.throwsAsync(controlOnGuest.hello({ role: 'control', token: s.server.token! }), { code: 'forbidden', message: /guest endpoint/ });
  const guestOnControl = await s.raw('control');
  await t.throwsAsync(guestOnControl.hello({ role: 'guest' }), { code: 'forbidden', message: /control endpoint/ });
  const c = await s.control();
  await t.throwsAsync(c.request('rdmsr', { index: 0x10 }), { code: 'forbidden' });
  });
});

test('limits: connections past --max-connections are refused by name and closed; too many VMs; frames; the budget', async (t) => {
  await withServer({}, async (s) => {
  const a = await connect(s.guestUrl, { vm: 'one' });
  await t.throwsAsync(connect(s.guestUrl, { vm: 'two' }), { code: 'limit', message: /at most 1 VMs/ });
  await until(() => s.server.connections.count === 1, 'the refused connection to close');
  const b = await s.raw('control');
  const third = await s.raw('guest');
  await t.throwsAsync(third.hello({ role: 'guest', vm: 'one' }), { code: 'limit', message: /at most 2 connections.*--max-connections/ });
  await new Promise<void>((resolve) => third.onClose(() => resolve()));
  t.true(third.closed);
  b.close();
  await until(() => s.server.connections.count === 1, 'the closed control connection to be counted out');
  const big = new RawPeer(await openConnection(s.guestUrl));
  const header = Buffer.alloc(4);
  header.writeUInt32BE(8193);
  big.sendBytes(header);
  t.like(await big.next(), { ok: false, error: { code: 'frame_too_large' } });
  await big.whenClosed();
  const loop = await a.exec(Uint8Array.of(0xeb, 0xfe));
  t.is(loop.stop, 'budget');
  a.close();
  }, { maxConnections: 2, maxFrame: 8192 }, { maxVms: 1, budget: 2000 });
});

test('control ops drive the KVM model of a named VM; KVM refusals carry their errno', async (t) => {
  await withServer({}, async (s) => {
  const guest = await connect(s.guestUrl);
  const c = await s.control();
  await t.throwsAsync(c.request('getRegs', { vm: 'nope', vcpu: 0 }), { code: 'not_found', message: /no VM "nope"/ });
  t.like(await c.request('checkExtension', { cap: KVM_CAP_X86_USER_SPACE_MSR }), { value: 1 });
  const refused = await t.throwsAsync(c.request('enableCap', { vm: 'default', cap: KVM_CAP_X86_USER_SPACE_MSR, args: [8n] }), { code: 'kvm_error' });
  t.is((refused as { errno?: string }).errno, 'EINVAL');
  await c.request('setRegs', { vm: 'default', vcpu: 0, regs: { r12: 0x1234n } });
  t.is((await c.request('getRegs', { vm: 'default', vcpu: 0 })).regs.r12, 0x1234n);
  await c.request('setSregs', { vm: 'default', vcpu: 0, sregs: { cr4: 0x6a0n } });
  t.is(await guest.readCr(4), 0x6a0n, 'the guest sees the host\'s CR4');
  // Deny RDMSR of MSR 0x10 and answer its exits with error 1: #GP.
  await c.request('setMsrFilter', { vm: 'default', flags: 0, ranges: [{ flags: 1, base: 0x10, nmsrs: 1, bitmap: Uint8Array.of(0) }] });
  const r = await guest.rdmsrSafe(0x10);
  t.like(r, { ok: false, fault: { vector: GP_VECTOR, errorCode: 0 } });
  await c.request('setMsrExitReply', { vm: 'default', msr: { error: 0, data: 0x55n } });
  t.is(await guest.rdmsr(0x10), 0x55n);
  t.like(await c.request('getMsrs', { vm: 'default', vcpu: 0, indices: [0xc0000080] }), { nmsrs: 1, entries: [{ index: 0xc0000080, value: 0xd01n }] });
  t.like(await c.request('setMsrs', { vm: 'default', vcpu: 0, entries: [{ index: 0xc0000102, value: 7n }] }), { nmsrs: 1 });
  t.is(await guest.rdmsr(0xc0000102), 7n);
  guest.close();
  });
});

test('subscriptions push matching events after the subscribe answer; events() pages the ring', async (t) => {
  await withServer({}, async (s) => {
  const guest = await connect(s.guestUrl);
  const c = await s.control();
  const pushed: Event[] = [];
  const { sub } = await c.request('subscribe', { vm: 'default', events: ['heki_denial', 'heki_configure'] });
  c.onEvent(sub, (e) => pushed.push(e));
  await guest.heki.lockCr(4, X86_CR4_SMEP);
  const cr4 = await guest.readCr(4);
  await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(pushed.map((e) => e.name), ['heki_configure', 'heki_denial']);
  t.like(pushed[1], { vm: 'default', vcpu: 0, fields: { cr: 4n, cr_value: cr4 & ~X86_CR4_SMEP, path: 'exit' } });
  const page = await c.request('events', { vm: 'default', limit: 10000 });
  t.true(page.events.some((e) => e.name === 'heki_denial'));
  t.false(page.events.some((e) => e.name === 'kvm_exit'), 'the ring keeps the VMM\'s own events');
  await c.request('unsubscribe', { sub });
  await t.throwsAsync(c.request('unsubscribe', { sub }), { code: 'not_found' });
  await t.throwsAsync(c.request('subscribe', { events: ['no_such_event'] }), { code: 'invalid_message' });
  guest.close();
  });
});

test('a subscription may name a VM before a guest makes it; without completions it gets no operation-ending HLT', async (t) => {
  await withServer({}, async (s) => {
  const c = await s.control();
  const plain: Event[] = [];
  const all: Event[] = [];
  const quiet = await c.request('subscribe', { vm: 'later', events: ['kvm_exit', 'kvm_msr', 'vm_created'] });
  c.onEvent(quiet.sub, (e) => plain.push(e));
  const loud = await c.request('subscribe', { vm: 'later', events: ['kvm_exit', 'kvm_msr', 'vm_created'], completions: true });
  c.onEvent(loud.sub, (e) => all.push(e));
  const guest = await connect(s.guestUrl, { vm: 'later' });
  await guest.rdmsr(0xc0000080);
  await until(() => all.length >= 4, 'the pushes');
  t.deepEqual(plain.map((e) => e.name), ['vm_created', 'kvm_exit', 'kvm_msr']);
  t.deepEqual(all.map((e) => [e.name, e.fields.exit_reason]), [['vm_created', undefined], ['kvm_exit', 'MSR_READ'], ['kvm_msr', undefined], ['kvm_exit', 'HLT']]);
  guest.close();
  });
});

test('pauseVm makes guest operations wait until resumeVm', async (t) => {
  await withServer({}, async (s) => {
  const guest = await connect(s.guestUrl);
  const c = await s.control();
  await c.request('pauseVm', { vm: 'default' });
  t.is(s.vmm.get('default')!.runState, 'paused');
  let answered = false;
  const read = guest.rdmsr(0xc0000080).then((v) => ((answered = true), v));
  await new Promise((r) => setTimeout(r, 50));
  t.false(answered, 'a paused VM runs no guest code');
  await c.request('resumeVm', { vm: 'default' });
  t.is(await read, 0xd01n);
  const page = await c.request('events', { vm: 'default', limit: 10000 });
  t.deepEqual(page.events.filter((e) => e.name === 'vm_paused' || e.name === 'vm_resumed').map((e) => [e.name, e.fields.cause]), [['vm_paused', 'control'], ['vm_resumed', 'control']]);
  guest.close();
  });
});

test('resetVm clears the pins, resumeVm resumes a paused VM, stats counts VMs and connections', async (t) => {
  await withServer({ heki: { onDenial: 'pause' } }, async (s) => {
  const guest = await connect(s.guestUrl);
  const c = await s.control();
  await guest.heki.lockCr(4, X86_CR4_SMEP);
  const cr4 = await guest.readCr(4);
  const denied = guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP);
  await until(() => s.vmm.get('default')!.runState === 'paused', 'the denial to pause the VM');
  await c.request('resumeVm', { vm: 'default' });
  t.like(await denied, { ok: false, fault: { vector: GP_VECTOR } });
  await c.request('resetVm', { vm: 'default' });
  t.deepEqual(s.vmm.get('default')!.hekiPins, { cr0: 0n, cr4: 0n });
  const stats = await c.request('stats', {});
  t.like(stats, { vms: 1, connections: 2 });
  t.like(stats.extra, { guestConnections: 1n, controlConnections: 1n });
  guest.close();
  });
});

test('snapshot and restore bring back memory, registers and pins; a foreign snapshot is refused whole', async (t) => {
  await withServer({}, async (s) => {
  const guest = await connect(s.guestUrl);
  const other = await connect(s.guestUrl, { vm: 'other' });
  const c = await s.control();
  await guest.heki.lockCr(4, X86_CR4_SMEP);
  await guest.wrmsr(0xc0000102, 0xabcn);
  await c.request('setRegs', { vm: 'default', vcpu: 0, regs: { r13: 13n } });
  const { snapshot } = await c.request('snapshot', { vm: 'default' });
  await c.request('resetVm', { vm: 'default' });
  t.deepEqual(s.vmm.get('default')!.hekiPins, { cr0: 0n, cr4: 0n });
  await c.request('restore', { vm: 'default', snapshot });
  t.deepEqual(s.vmm.get('default')!.hekiPins, { cr0: 0n, cr4: X86_CR4_SMEP });
  t.is((await c.request('getRegs', { vm: 'default', vcpu: 0 })).regs.r13, 13n);
  t.is(await guest.rdmsr(0xc0000102), 0xabcn);
  const cr4 = await guest.readCr(4);
  t.like(await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP), { ok: false }, 'the pin is in force again');
  await t.throwsAsync(c.request('restore', { vm: 'default', snapshot: Uint8Array.of(1, 2, 3) }), { code: 'invalid_message', message: /not a snapshot/ });
  await c.request('restore', { vm: 'other', snapshot });
  t.deepEqual(s.vmm.get('other')!.hekiPins, { cr0: 0n, cr4: X86_CR4_SMEP }, 'a snapshot fits any VM of the same shape');
  guest.close();
  other.close();
  });
});

test('every event a server sends is one of the catalogue, with its fields, in its order (PROTOCOL.md §2, §6.2)', async (t) => {
  await withServer({ heki: { onDenial: 'pause' }, msrFilter: { default: 'allow', deny: [{ msr: '0x10', access: 'read' }] } }, async (s) => {
    const c = await s.control();
    const pushed: Event[] = [];
    const { sub } = await c.request('subscribe', { completions: true });
    c.onEvent(sub, (e) => pushed.push(e));
    const guest = await connect(s.guestUrl, { client: 'everything' });
    await guest.rdmsrSafe(0x10);
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const cr4 = await guest.readCr(4);
    const denied = guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP);
    await until(() => s.vmm.get('default')!.runState === 'paused', 'the pause');
    await c.request('resumeVm', { vm: 'default' });
    await denied;
    await guest.exec(Uint8Array.of(0xe4, 0x80, 0xf4)); // in al, 0x80; hlt
    await c.request('initVcpu', { vm: 'default', vcpu: 0 });
    await c.request('setMsrFilter', { vm: 'default', flags: 0, ranges: [] });
    await c.request('resetVm', { vm: 'default' });
    guest.close();
    await until(() => pushed.some((e) => e.name === 'guest_disconnected'), 'the disconnect');
    const names = new Set(pushed.map((e) => e.name));
    t.true(names.size >= 15, [...names].join(' '));
    t.deepEqual(pushed.flatMap((e) => eventProblems(eventFromWire(e))), []);
  });
});
