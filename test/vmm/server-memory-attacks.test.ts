/**
 * Hostile clients against the memory control ops (issue 15 review): ranges that wrap or are
 * empty, a guest connection asking for a control op, and a getMemoryAttributes answer larger
 * than a frame (a guest can make every page its own run with one KVM_HC_PROTECT_MEMORY per
 * page list): each refused with a clear error, nothing changed, the connection still usable.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { connect as openConnection } from '../../protocol/index.js';
import { RawPeer } from '../protocol/raw-peer.js';
import { ControlClient } from '../../control/index.js';
import { withServer } from './server-support.js';

const NW = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW;

type Reply = { id: number; ok: boolean; error?: { code: string; message: string } };

test('ranges that are empty, wrap past 2^64 or run beyond memory are EINVAL, and change nothing', async (t) => {
  await withServer({ profile: 'v3' }, async (s) => {
    s.vmm.vm();
    const client = await ControlClient.connect(s.controlUrl, { token: s.server.token! });
    const bad = [
      { address: 0x500000n, size: 0n },
      { address: 0xffff_ffff_ffff_f000n, size: 0x2000n },
      { address: 0x1000n, size: 0xffff_ffff_ffff_f000n },
      { address: 0xffff_ffff_ffff_f000n, size: 0x1000n },
    ];
    for (const range of bad) {
      const e = await t.throwsAsync(client.setMemoryAttributes('default', { ...range, attributes: NW }));
      t.is((e as { code?: string }).code, 'kvm_error', `${range.address.toString(16)}+${range.size.toString(16)}`);
    }
    t.deepEqual((await client.getMemoryAttributes('default')).attributes, []);
    client.close();
  });
});

test('a guest connection cannot call setMemoryAttributes or getMemoryAttributes', async (t) => {
  await withServer({ profile: 'v3' }, async (s) => {
    const raw = new RawPeer(await openConnection(s.guestUrl));
    raw.send({ id: 0, op: 'hello', version: 1, role: 'guest', vm: 'default' });
    t.true(((await raw.next()) as Reply).ok);
    raw.send({ id: 1, op: 'setMemoryAttributes', vm: 'default', address: 0x500000n, size: 0x1000n, attributes: 0n });
    const set = (await raw.next()) as Reply;
    t.false(set.ok);
    raw.send({ id: 2, op: 'getMemoryAttributes', vm: 'default' });
    t.false(((await raw.next()) as Reply).ok);
    t.deepEqual(s.vmm.memoryAttributes('default').attributes, []);
    raw.connection.close();
  });
});

test('a getMemoryAttributes answer larger than a frame is refused with `limit`; the connection goes on', async (t) => {
  await withServer({ profile: 'v3', memory: '256MiB' }, async (s) => {
    const vm = s.vmm.vm();
    // Every other page denies write: 32768 attribute runs, 65536 permission runs (> 1 MiB of msgpack).
    for (let a = 0n; a < 256n << 20n; a += 0x2000n) vm.setMemoryAttributes({ address: a, size: 0x1000n, attributes: NW });
    const client = await ControlClient.connect(s.controlUrl, { token: s.server.token! });
    const e = await t.throwsAsync(client.getMemoryAttributes('default'));
    t.is((e as { code?: string }).code, 'limit');
    t.regex(e!.message, /frame|bytes/);
    vm.setMemoryAttributes({ address: 0n, size: 256n << 20n, attributes: 0n });
    t.deepEqual((await client.getMemoryAttributes('default')).attributes, [], 'the same connection answers the next request');
    client.close();
  });
});
