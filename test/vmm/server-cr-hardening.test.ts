/**
 * The CR filter's control ops and the monitor role over the protocol (PROTOCOL.md §6;
 * docs/cr-filter.md, docs/register-intercepts.md), through pinbox/control's ControlClient and MonitorClient.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { ClientSession, connect as openConnection, RemoteError } from '../../protocol/index.js';
import { ControlClient, MonitorClient } from '../../control/index.js';
import { withServer } from './server-support.js';

const SMEP = abi.X86_CR4_SMEP;
const BOOT_CR4 = 0x310ea0n;

async function guest(url: string, vm = 'default'): Promise<ClientSession> {
  const g = new ClientSession(await openConnection(url));
  await g.hello({ role: 'guest', vm });
  return g;
}

test('setCrFilter and setCrExitReply: the filter a control client installs, the answer it gives; KVM refusals carry their errno', async (t) => {
  await withServer({}, async (s) => {
    const g = await guest(s.guestUrl);
    const ctl = await ControlClient.connect(s.controlUrl, { token: s.server.token! });
    await ctl.setCrFilter('default', { cr4: SMEP });
    t.like(await g.request('writeCr', { cr: 4, value: BOOT_CR4 & ~SMEP }), {
      fault: { vector: 13, errorCode: 0 }, exits: [{ reason: 'KVM_EXIT_PINBOX_CR_FILTER', cr: { cr: 4, action: 'deny' } }],
    });
    await ctl.setCrExitReply('default', { action: 'allow' });
    t.like(await g.request('writeCr', { cr: 4, value: BOOT_CR4 & ~SMEP }), { exits: [{ cr: { action: 'allow' } }] });
    const raw = await s.control();
    const refused = await t.throwsAsync(raw.request('setCrFilter', { vm: 'default', cr0Mask: 0n, cr4Mask: 0n, xcr0Mask: 1n }), { instanceOf: RemoteError });
    t.like(refused, { code: 'kvm_error', errno: 'EINVAL' });
    ctl.close();
    g.close();
  });
});

test('a monitor: hello with the token names its VM; it arms intercepts and decides each one; a second monitor is refused', async (t) => {
  await withServer({}, async (s) => {
    const g = await guest(s.guestUrl);
    const monitor = await MonitorClient.connect(s.controlUrl, { vm: 'default', token: s.server.token! });
    await monitor.setRegisterIntercepts({ control: abi.hvCrInterceptBit('Cr4Write'), cr4Mask: SMEP });
    t.is((await monitor.getRegisterIntercepts(0)).cr4Mask, SMEP);
    const decided: string[] = [];
    await monitor.decide((i) => {
      decided.push(`${i.intercept} ${i.oldValue.toString(16)}->${i.newValue.toString(16)}`);
      return i.newValue & SMEP ? { action: 'allow' } : { action: 'deny' };
    });
    t.like(await g.request('writeCr', { cr: 4, value: BOOT_CR4 & ~SMEP }), {
      fault: { vector: 13, errorCode: 0 }, exits: [{ reason: 'KVM_EXIT_PINBOX_REG_INTERCEPT', intercept: { name: 'Cr4Write', action: 'deny' } }],
    });
    t.deepEqual(decided, ['Cr4Write 310ea0->210ea0']);
    await t.throwsAsync(MonitorClient.connect(s.controlUrl, { vm: 'default', token: s.server.token! }), { code: 'already_exists' } as never);
    await t.throwsAsync(MonitorClient.connect(s.controlUrl, { vm: 'other', token: 'wrong' }), { code: 'bad_token' } as never);
    // A monitor can do nothing but its own ops.
    const raw = new ClientSession(await openConnection(s.controlUrl));
    await raw.hello({ role: 'monitor', vm: 'third', token: s.server.token! });
    await t.throwsAsync(raw.request('resetVm', { vm: 'default' }), { code: 'forbidden' } as never);
    raw.close();
    monitor.close();
    g.close();
  });
});

test('a monitor that goes away leaves its intercepts, answered by the policy (deny) until another comes', async (t) => {
  await withServer({}, async (s) => {
    const g = await guest(s.guestUrl);
    const monitor = await MonitorClient.connect(s.controlUrl, { token: s.server.token! });
    await monitor.setRegisterIntercepts({ control: abi.hvCrInterceptBit('Cr4Write'), cr4Mask: SMEP });
    await monitor.setInterceptReply({ action: 'allow' });
    t.like(await g.request('writeCr', { cr: 4, value: BOOT_CR4 & ~SMEP }), { exits: [{ intercept: { action: 'allow' } }] });
    monitor.close();
    await new Promise((r) => setTimeout(r, 50));
    t.like(await g.request('writeCr', { cr: 4, value: BOOT_CR4 }), { fault: { vector: 13, errorCode: 0 }, exits: [{ intercept: { action: 'deny' } }] });
    g.close();
  });
});
