/**
 * Hostile clients against the memory control ops (issue 15 review): ranges that wrap or are
 * empty, a guest connection asking for a control op, and a VM whose every page is its own run
 * (a guest can make that with KVM_HC_PROTECT_MEMORY page lists): it is read in pieces of bounded
 * size, so that no answer grows with guest memory.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { connect as openConnection } from '../../protocol/index.js';
import { MAX_MEMORY_RUNS } from '../../protocol/messages/index.js';
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

test('a fragmented VM is read in pieces of at most MAX_MEMORY_RUNS runs; the client puts them together', async (t) => {
  await withServer({ profile: 'v3', memory: '256MiB' }, async (s) => {
    const vm = s.vmm.vm();
    // Every other page denies write: 32768 attribute runs, 65536 permission runs — an answer of
    // several MiB were it sent whole.
    for (let a = 0n; a < 256n << 20n; a += 0x2000n) vm.setMemoryAttributes({ address: a, size: 0x1000n, attributes: NW });
    const raw = new RawPeer(await openConnection(s.controlUrl));
    raw.send({ id: 0, op: 'hello', version: 1, role: 'control', token: s.server.token! });
    t.true(((await raw.next()) as Reply).ok);
    raw.send({ id: 1, op: 'getMemoryAttributes', vm: 'default' });
    const first = (await raw.next()) as Reply & { result: { attributes: unknown[]; permissions: unknown[]; next: number | bigint } };
    t.true(first.ok, first.error?.message);
    t.is(first.result.permissions.length, MAX_MEMORY_RUNS, 'one run per page: cut at the limit');
    t.is(first.result.attributes.length, MAX_MEMORY_RUNS / 2, 'the attributes of the same pages');
    t.is(BigInt(first.result.next), BigInt(MAX_MEMORY_RUNS) * 4096n, "a raw peer reads the u64 as msgpack sent it");
    raw.send({ id: 2, op: 'getMemoryAttributes', vm: 'default', address: 0x1001n });
    const unaligned = (await raw.next()) as Reply;
    t.false(unaligned.ok);
    t.regex(unaligned.error!.message, /page-aligned/);
    raw.connection.close();
    const client = await ControlClient.connect(s.controlUrl, { token: s.server.token! });
    const m = await client.getMemoryAttributes('default');
    t.is(m.attributes.length, 32768);
    t.true(m.attributes.every((a, k) => a.address === BigInt(k) * 0x2000n && a.size === 0x1000n && a.attributes === NW));
    t.is(m.permissions.length, 65536);
    t.true(m.permissions.every((p, k) => p.address === BigInt(k) * 0x1000n && p.size === 0x1000n && p.write === (k % 2 === 1)));
    t.is(m.next, undefined);
    client.close();
  });
});
