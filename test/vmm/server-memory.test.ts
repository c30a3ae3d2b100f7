/**
 * The memory-protection control ops against a real server (PROTOCOL.md §6; docs/memory-protection.md
 * §7.3): setMemoryAttributes and getMemoryAttributes through ControlClient, raw frames the
 * server refuses, and `pinbox ctl`.
 */
import test from 'ava';
import { connect } from '../../guest-sdk/index.js';
import * as abi from '../../protocol/abi.js';
import { connect as openConnection } from '../../protocol/index.js';
import { RawPeer } from '../protocol/raw-peer.js';
import { ControlClient } from '../../control/index.js';
import { pinbox } from './cli-support.js';
import { withServer, type TestServer } from './server-support.js';

const NW = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW;
const NX = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX;
const PAGE = 0x50_0000n;
const STORE = Uint8Array.of(0x48, 0x89, 0x03); // mov [rbx], rax
const ctl = (s: TestServer, ...args: string[]) => pinbox(['ctl', '--host', s.controlUrl, ...args]);

test('a control client locks a page; the guest\'s store then faults; getMemoryAttributes shows what holds', async (t) => {
  await withServer({ profile: 'v3' }, async (s) => {
    const guest = await connect(s.guestUrl);
    const client = await ControlClient.connect(s.controlUrl, { token: s.server.token! });
    t.is((await guest.exec(STORE, { regs: { rbx: PAGE, rax: 1n } })).stop, 'end', 'not locked yet');
    await client.setMemoryAttributes('default', { address: PAGE, size: 0x2000n, attributes: NW | NX });
    const r = await guest.exec(STORE, { regs: { rbx: PAGE + 0x1008n, rax: 1n } });
    t.is(r.stop, 'fault');
    t.deepEqual(r.fault, { vector: abi.PF_VECTOR, errorCode: 3 });
    t.like(r.exits[0], { reason: 'KVM_EXIT_MEMORY_FAULT', memory: { gpa: PAGE + 0x1000n, gva: PAGE + 0x1008n, access: 'write' } });
    const m = await client.getMemoryAttributes('default');
    t.deepEqual(m.attributes, [{ address: PAGE, size: 0x2000n, attributes: NW | NX }]);
    t.is(m.mbec, false);
    t.is(m.delivery, 'exit');
    // Without MBEC, NX takes execute from both modes.
    t.deepEqual(m.permissions, [
      { address: 0n, size: PAGE, read: true, write: true, exec: true, userExec: true },
      { address: PAGE, size: 0x2000n, read: true, write: false, exec: false, userExec: false },
      { address: PAGE + 0x2000n, size: 16n * 1024n * 1024n - PAGE - 0x2000n, read: true, write: true, exec: true, userExec: true },
    ]);
    await client.setMemoryAttributes('default', { address: PAGE, size: 0x2000n, attributes: 0n });
    t.deepEqual((await client.getMemoryAttributes('default')).attributes, []);
    t.is((await guest.exec(STORE, { regs: { rbx: PAGE + 0x1008n, rax: 1n } })).stop, 'end', 'cleared');
    client.close();
    guest.close();
  });
});

test('refusals: KVM\'s EINVAL with its reason and nothing changed; bad frames name the field; an unknown VM is not_found', async (t) => {
  await withServer({}, async (s) => {
    s.vmm.vm(); // the policy's VM, made as a guest naming it would
    const raw = new RawPeer(await openConnection(s.controlUrl));
    raw.send({ id: 0, op: 'hello', version: 1, role: 'control', token: s.server.token! });
    t.true((await raw.next()).ok);
    let id = 1;
    const refused = async (op: string, params: Record<string, unknown>, code: string, re: RegExp): Promise<void> => {
      raw.send({ id, op, ...params });
      const reply = (await raw.next()) as { id: number; ok: boolean; error?: { code: string; message: string; errno?: string } };
      const what = `${op} ${JSON.stringify(params, (_, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v))}`;
      t.is(reply.id, id++, what);
      t.false(reply.ok, what);
      t.is(reply.error?.code, code, what);
      t.regex(reply.error?.message ?? '', re, what);
    };
    const set = (fields: Record<string, unknown>) => ({ vm: 'default', address: 0x1000n, size: 0x1000n, attributes: NW, ...fields });
    await refused('setMemoryAttributes', set({ attributes: 1n }), 'kvm_error', /attributes 0x1 outside the supported mask/);
    await refused('setMemoryAttributes', set({ address: 0x1800n }), 'kvm_error', /page-aligned/);
    await refused('setMemoryAttributes', set({ size: 0x2000000n }), 'kvm_error', /beyond guest memory/);
    await refused('setMemoryAttributes', set({ attributes: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR }), 'kvm_error', /NR needs NW and NX/);
    await refused('setMemoryAttributes', set({ attributes: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX }), 'kvm_error', /outside the supported mask/);
    await refused('setMemoryAttributes', { vm: 'default', address: 0x1000n, attributes: NW }, 'invalid_message', /size/);
    await refused('setMemoryAttributes', set({ address: -1 }), 'invalid_message', /address/);
    await refused('setMemoryAttributes', set({ attributes: 'write' }), 'invalid_message', /attributes/);
    await refused('setMemoryAttributes', set({ vm: 'nope' }), 'not_found', /no VM "nope"/);
    await refused('getMemoryAttributes', { vm: 'nope' }, 'not_found', /no VM "nope"/);
    await refused('getMemoryAttributes', {}, 'invalid_message', /vm/);
    t.deepEqual(s.vmm.memoryAttributes('default').attributes, [], 'nothing was set by any refusal');
    raw.connection.close();
  });
});

test('pinbox ctl setMemoryAttributes and getMemoryAttributes; mistakes on the command line send nothing', async (t) => {
  await withServer({ profile: 'v3', memory: { mbec: true } }, async (s) => {
    s.vmm.vm();
    const set = await ctl(s, 'setMemoryAttributes', 'default', '--gpa', '0x500000', '--size', '0x1000', '--deny', 'write,userExec');
    t.is(set.out, 'VM "default": [0x500000, 0x501000) now deny write,userExec (attributes 0xa000000)\n');
    const get = await ctl(s, 'getMemoryAttributes', 'default');
    t.is(get.code, 0);
    t.regex(get.out, /^VM "default": MBEC on, refused accesses delivered by KVM_EXIT_MEMORY_FAULT \(exit\)\n/);
    t.regex(get.out, /\n {2}0x500000-0x500fff {2}deny write,userExec\n/);
    t.regex(get.out, /\n {2}0x500000-0x500fff {2}r-x-\n/);
    const json = JSON.parse((await ctl(s, '--json', 'getMemoryAttributes', 'default')).out) as { attributes: unknown[] };
    t.deepEqual(json.attributes, [{ address: '0x500000', size: '0x1000', attributes: '0xa000000', deny: ['write', 'userExec'] }]);

    const refused = await ctl(s, 'setMemoryAttributes', 'default', '--gpa', '0x500800', '--size', '0x1000', '--deny', 'write');
    t.is(refused.code, 1);
    t.regex(refused.err, /^pinbox ctl setMemoryAttributes: .*page-aligned.*\[kvm_error EINVAL\]\n$/);
    const usage = await ctl(s, 'setMemoryAttributes', 'default', '--gpa', '0x500000', '--size', '0x1000', '--deny', 'wirte');
    t.is(usage.code, 2);
    t.regex(usage.err, /'wirte' is none of them \(did you mean 'write'\?\)/);
    t.is((await ctl(s, 'setMemoryAttributes', 'default', '--gpa', '0x500000', '--deny', 'write')).code, 2, '--size is required');
    t.deepEqual(s.vmm.memoryAttributes('default').attributes, [{ address: 0x500000n, size: 0x1000n, attributes: NW | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX }]);
    t.is((await ctl(s, 'setMemoryAttributes', 'default', '--gpa', '0x500000', '--size', '0x1000', '--deny', 'none')).code, 0);
    t.deepEqual(s.vmm.memoryAttributes('default').attributes, []);
  });
});
