/**
 * pinbox/control's ControlClient against a server in this process: the token (given, from a file,
 * from the file serve writes beside a unix socket), events in the catalogue's types, and the
 * control ops a user reaches for — subscribe, page the ring, snapshot/reset/restore, pause, hold
 * an exit, the KVM API. Expected values are KVM's and the protocol's (PROTOCOL.md §6), not
 * pinbox's output.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ControlClient, type Event } from '../../control/index.js';
import { connect } from '../../guest-sdk/index.js';
import { GP_VECTOR, KVM_CAP_X86_USER_SPACE_MSR, KVM_MSR_EXIT_REASON_FILTER, X86_CR4_SMEP } from '../../protocol/abi.js';
import { until, withServer } from '../vmm/server-support.js';

test('the token: given, read from a file, or from PATH.token beside a unix control socket; a bad one is named', async (t) => {
  await withServer({}, async (s) => {
    const viaDefault = await ControlClient.connect(s.controlUrl, { client: 'test' });
    t.is(viaDefault.server, 'pinbox');
    t.deepEqual(viaDefault.guestEndpoints, [s.guestUrl]);
    viaDefault.close();
    const file = join(s.dir, 'my.token');
    writeFileSync(file, `${s.server.token}\n`);
    (await ControlClient.connect(s.controlUrl, { tokenFile: file })).close();
    (await ControlClient.connect(s.controlUrl, { token: s.server.token! })).close();
    await t.throwsAsync(ControlClient.connect(s.controlUrl, { token: 'wrong' }), { code: 'bad_token', message: /the control token is wrong/ });
    await t.throwsAsync(ControlClient.connect(s.controlUrl, { tokenFile: join(s.dir, 'none') }), { code: 'bad_token', message: /cannot read the control token file .*none: no such file/ });
    await t.throwsAsync(ControlClient.connect('tcp:127.0.0.1:1'), { code: 'bad_token', message: /needs the server's token/ });
  });
});

test('subscribe hands events in the catalogue\'s types (u32 as number, u64 as bigint), until closed; events() pages the ring', async (t) => {
  await withServer({}, async (s) => {
    const ctl = await ControlClient.connect(s.controlUrl);
    const got: Event[] = [];
    const sub = await ctl.subscribe({ vm: 'default', events: ['heki_configure', 'heki_denial'] }, (e) => got.push(e));
    const guest = await connect(s.guestUrl);
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const cr4 = await guest.readCr(4);
    const denied = await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP);
    t.like(denied, { ok: false, fault: { vector: GP_VECTOR } });
    await until(() => got.length === 2, 'the two pushes');
    t.deepEqual(got.map((e) => e.name), ['heki_configure', 'heki_denial']);
    // heki_denial: reason 2 (KVM_HEKI_EXIT_REASON_CR4), cr 4, cr_value the value the guest tried.
    t.deepEqual(got[1]!.fields, { reason: 2, cr: 4, cr_value: cr4 & ~X86_CR4_SMEP, path: 'exit', action: 'log' });
    await sub.close();
    await guest.heki.lockCr(0, 0x10000n);
    const page = await ctl.events({ vm: 'default' });
    t.deepEqual(page.events.filter((e) => e.name.startsWith('heki_')).map((e) => [e.name, e.fields.cr]), [['heki_configure', 4], ['heki_denial', 4], ['heki_configure', 0]]);
    t.is(got.length, 2, 'a closed subscription gets nothing more');
    const all: Event[] = [];
    for await (const e of ctl.eventsSince({ vm: 'default' })) all.push(e);
    t.deepEqual(all.map((e) => e.seq), page.events.map((e) => e.seq));
    t.true(page.next > page.events.at(-1)!.seq);
    guest.close();
    ctl.close();
  });
});

test('snapshot, reset and restore: the pins go with the reset and come back with the snapshot', async (t) => {
  await withServer({}, async (s) => {
    const ctl = await ControlClient.connect(s.controlUrl);
    const guest = await connect(s.guestUrl);
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const snap = await ctl.snapshot('default');
    await ctl.resetVm('default');
    const cr4 = await guest.readCr(4);
    t.true((await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP)).ok, 'a reset VM has no pins (docs/heki.md §5.4)');
    await ctl.restore('default', snap);
    const again = await guest.readCr(4);
    t.like(await guest.writeCrSafe(4, again & ~X86_CR4_SMEP), { ok: false, fault: { vector: GP_VECTOR } });
    guest.close();
    ctl.close();
  });
});

test('pauseVm holds guest operations until resumeVm; holdExit keeps a vCPU in its exit until released', async (t) => {
  await withServer({}, async (s) => {
    const ctl = await ControlClient.connect(s.controlUrl);
    const guest = await connect(s.guestUrl);
    await ctl.enableCap('default', KVM_CAP_X86_USER_SPACE_MSR, [BigInt(KVM_MSR_EXIT_REASON_FILTER)]);
    // Deny reads of MSR 0x10 (the TSC): a FILTER exit to user space, answered with data 7.
    await ctl.setMsrFilter('default', { flags: 0, ranges: [{ flags: 1, base: 0x10, nmsrs: 1, bitmap: Uint8Array.of(0) }] });
    await ctl.setMsrExitReply('default', { error: 0, data: 7n });
    const hold = await ctl.holdExit('default', 0);
    let answered = false;
    const read = guest.rdmsr(0x10).then((v) => ((answered = true), v));
    const held = await hold.held;
    t.like(held, { name: 'exit_held', vm: 'default', vcpu: 0, fields: { reason: 'KVM_EXIT_X86_RDMSR' } });
    t.false(answered);
    t.true(await hold.release());
    t.is(await read, 7n);
    await ctl.pauseVm('default');
    answered = false;
    const later = guest.rdmsr(0xc0000080).then((v) => ((answered = true), v));
    await new Promise((r) => setTimeout(r, 30));
    t.false(answered, 'a paused VM runs no guest code');
    await ctl.resumeVm('default');
    t.is(await later, 0xd01n);
    guest.close();
    ctl.close();
  });
});

test('the KVM API and VMs of their own: registers, MSRs, capabilities, createVm/destroyVm; refusals carry KVM\'s errno', async (t) => {
  await withServer({}, async (s) => {
    const ctl = await ControlClient.connect(s.controlUrl);
    t.like(await ctl.createVm('mine', { policy: { vcpus: 2, profile: 'v3' } }), { vcpus: 2, profile: 'v3' });
    await t.throwsAsync(ctl.createVm('mine'), { code: 'already_exists' });
    // KVM_CAP_X86_USER_SPACE_MSR: KVM_CHECK_EXTENSION answers 1 (docs/msr-filter.md §1.1).
    t.is(await ctl.checkExtension(KVM_CAP_X86_USER_SPACE_MSR, 'mine'), 1);
    await ctl.setRegs('mine', 1, { r13: 13n });
    t.is((await ctl.getRegs('mine', 1)).r13, 13n);
    t.is((await ctl.getSregs('mine', 0)).efer, 0xd01n);
    t.is(await ctl.setMsrs('mine', 0, [{ index: 0xc0000102, value: 0xabcn }]), 1);
    t.deepEqual(await ctl.getMsrs('mine', 0, [0xc0000102]), [{ index: 0xc0000102, value: 0xabcn }]);
    // A mask bit KVM does not know: EINVAL (docs/msr-filter.md §7 #25).
    const refused = await t.throwsAsync(ctl.enableCap('mine', KVM_CAP_X86_USER_SPACE_MSR, [8n]), { code: 'kvm_error' });
    t.is((refused as { errno?: string }).errno, 'EINVAL');
    t.like(await ctl.stats(), { vms: 1 });
    await ctl.destroyVm('mine');
    await t.throwsAsync(ctl.resetVm('mine'), { code: 'not_found' });
    ctl.close();
    t.true(ctl.closed);
  });
});
