/**
 * Hostile clients against `pinbox serve` in this process (issue 9): a peer that never reads its
 * answers (finding 3), connections that never say hello and a full guest endpoint (finding 6),
 * a slow-loris frame and guessed tokens (finding 8), and what guests may do to VMs (finding 7).
 */
import test from 'ava';
import { connect as openConnection } from '../../protocol/index.js';
import { encodeMsgpack } from '../../protocol/codec.js';
import { frameBody } from '../../protocol/framing.js';
import { connect } from '../../guest-sdk/index.js';
import { RawPeer } from '../protocol/raw-peer.js';
import { until, withServer, type TestServer } from './server-support.js';

const frame = (value: unknown): Uint8Array => frameBody(encodeMsgpack(value), 1 << 20);

/** A raw guest connection that has said hello on VM `vm`. */
async function greetedRaw(s: TestServer, vm: string): Promise<RawPeer> {
  const raw = new RawPeer(await openConnection(s.guestUrl));
  raw.send({ id: 0, op: 'hello', version: 1, role: 'guest', vm });
  const reply = await raw.next();
  if (reply.ok !== true) throw new Error(JSON.stringify(reply));
  return raw;
}

// ---------------------------------------------------------------------------------------------
// Finding 3: answers a client never reads
// ---------------------------------------------------------------------------------------------

// These two keep this worker's event loop busy with batches for seconds; they run on their own
// (serial tests run before the others) so that the timing of the deadline and token tests is
// their own servers'.

test.serial('a client that pipelines big answers and never reads is read no more past --max-unsent, then closed', async (t) => {
  await withServer({}, async (s) => {
    const conn = await openConnection(s.guestUrl);
    conn.write(frame({ id: 0, op: 'hello', version: 1, role: 'guest', vm: 'flood' }));
    await until(() => s.server.connections.requests >= 1, 'the hello to be handled');
    conn.pauseReading!(); // never read again
    // Each batch answer is about 150 KB; 200 of them would be 30 MB held for this client.
    const ops = Array.from({ length: 4096 }, () => ({ op: 'cpuid', leaf: 0 }));
    for (let id = 1; id <= 200; id++) conn.write(frame({ id, op: 'batch', ops }));
    const bystander = await connect(s.guestUrl, { vm: 'bystander' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const handled = s.server.connections.requests;
    t.is(await bystander.rdmsr(0xc0000080), 0xd01n, 'others are answered meanwhile');
    t.true(handled < 40, `the server read ${handled} requests of 200 before it stopped reading`);
    bystander.close();
    await until(() => s.server.connections.count === 0, 'the flooding connection to be closed');
    t.pass('the flooding connection was closed after the drain deadline');
    t.true(s.server.connections.requests < 40);
  }, { maxUnsent: 256 << 10, drainDeadlineMs: 600 });
});

test.serial('a client that reads slowly but reads is served to the end: backpressure, not a limit', async (t) => {
  await withServer({}, async (s) => {
    const conn = await openConnection(s.guestUrl);
    const raw = new RawPeer(conn);
    raw.send({ id: 0, op: 'hello', version: 1, role: 'guest' });
    t.true((await raw.next()).ok);
    const ops = Array.from({ length: 4096 }, () => ({ op: 'cpuid', leaf: 0 }));
    conn.pauseReading!();
    for (let id = 1; id <= 20; id++) raw.send({ id, op: 'batch', ops });
    await new Promise((resolve) => setTimeout(resolve, 200));
    conn.resumeReading!();
    const ids = new Set<number>();
    for (let i = 0; i < 20; i++) {
      const reply = await raw.next();
      t.true(reply.ok, JSON.stringify(reply.error));
      ids.add(reply.id);
    }
    t.is(ids.size, 20);
  }, { maxUnsent: 256 << 10, drainDeadlineMs: 5000 });
});

// ---------------------------------------------------------------------------------------------
// Finding 6: connections that never say hello
// ---------------------------------------------------------------------------------------------

test('a connection that says no hello is closed after the hello deadline, with a deadline error', async (t) => {
  await withServer({}, async (s) => {
    const raw = new RawPeer(await openConnection(s.guestUrl));
    const started = performance.now();
    const e = await raw.next();
    t.like(e, { id: null, ok: false, error: { code: 'deadline' } });
    t.regex(e.error.message, /no successful hello within 150 ms/);
    await raw.whenClosed();
    t.true(performance.now() - started >= 140);
  }, { helloDeadlineMs: 150 });
});

test('idle connections filling the guest endpoint lock nobody out; the control endpoint has places of its own', async (t) => {
  await withServer({}, async (s) => {
    const idle = await Promise.all(Array.from({ length: 4 }, async () => new RawPeer(await openConnection(s.guestUrl))));
    await until(() => s.server.connections.count === 4, 'the connections to be counted');
    const guest = await connect(s.guestUrl);
    t.is(await guest.rdmsr(0xc0000080), 0xd01n, 'a new guest got in: the oldest idle connection made room');
    await until(() => idle.filter((r) => r.closed).length === 1, 'an idle connection to make room');
    t.true(idle[0]!.closed);
    // Fill the guest endpoint with guests that said hello: the next guest is refused, a control client is not.
    await Promise.all([1, 2, 3].map((i) => greetedRaw(s, `g${i}`)));
    await t.throwsAsync(connect(s.guestUrl), { code: 'limit' });
    const c = await s.control();
    t.like(await c.request('stats', {}), { extra: { maxConnections: 4n, maxControlConnections: 2n } });
    guest.close();
  }, { maxConnections: 4, maxControlConnections: 2 });
});

// ---------------------------------------------------------------------------------------------
// Finding 8: slow loris, guessed tokens
// ---------------------------------------------------------------------------------------------

test('a frame begun and not finished within the frame deadline is answered with deadline and closed', async (t) => {
  await withServer({}, async (s) => {
    const raw = await greetedRaw(s, 'default');
    const whole = frame({ id: 1, op: 'rdmsr', index: 0x10 });
    // A complete frame, then half of one, a byte at a time: the deadline counts from that frame's first byte.
    raw.sendBytes(whole);
    t.like(await raw.next(), { id: 1, ok: true });
    const started = performance.now();
    for (let i = 0; i < 6; i++) {
      raw.sendBytes(whole.subarray(i, i + 1));
      await new Promise((resolve) => setTimeout(resolve, 40));
    }
    const e = await raw.next();
    t.like(e, { id: null, ok: false, error: { code: 'deadline' } });
    t.regex(e.error.message, /a frame was begun 200 ms ago and is not complete/);
    await raw.whenClosed();
    // Well before the default deadline (10 s): the configured one closed it (a loaded shared
    // machine may be slow to get there).
    t.true(performance.now() - started < 5000);
  }, { frameDeadlineMs: 200 });
});

test('frames that arrive in pieces but complete in time are served: the deadline is per frame', async (t) => {
  await withServer({}, async (s) => {
    const raw = await greetedRaw(s, 'default');
    for (let id = 1; id <= 4; id++) {
      const f = frame({ id, op: 'rdmsr', index: 0x10 });
      raw.sendBytes(f.subarray(0, 3));
      await new Promise((resolve) => setTimeout(resolve, 100));
      raw.sendBytes(f.subarray(3));
      t.like(await raw.next(), { id, ok: true });
    }
  }, { frameDeadlineMs: 250 });
});

test('wrong control tokens: each is answered later than the last, the third closes the connection; the right one gets in', async (t) => {
  await withServer({}, async (s) => {
    const raw = new RawPeer(await openConnection(s.controlUrl));
    const times: number[] = [];
    for (let id = 1; id <= 3; id++) {
      const start = performance.now();
      raw.send({ id, op: 'hello', version: 1, role: 'control', token: `guess-${id}` });
      const reply = await raw.next();
      times.push(performance.now() - start);
      t.like(reply, { id, ok: false, error: { code: 'bad_token' } });
    }
    await raw.whenClosed();
    t.true(times[0]! >= 90, `first refusal after ${times[0]!.toFixed(0)} ms`);
    t.true(times[1]! >= 190 && times[2]! >= 390, `later refusals after ${times.map((x) => x.toFixed(0)).join(', ')} ms`);
    const c = await s.control();
    t.like(await c.request('stats', {}), { connections: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// Finding 7: what guests may do to VMs
// ---------------------------------------------------------------------------------------------

test('a VM made with a guest token takes only guests that give it; others get bad_token', async (t) => {
  await withServer({}, async (s) => {
    const c = await s.control();
    await c.request('createVm', { vm: 'locked', guestToken: 'sesame' });
    await t.throwsAsync(connect(s.guestUrl, { vm: 'locked' }), { code: 'bad_token', message: /VM "locked" takes only guests that give its guest token/ });
    const raw = new RawPeer(await openConnection(s.guestUrl));
    raw.send({ id: 1, op: 'hello', version: 1, role: 'guest', vm: 'locked', token: 'wrong' });
    t.like(await raw.next(), { ok: false, error: { code: 'bad_token', message: 'VM "locked" has another guest token' } });
    raw.send({ id: 2, op: 'hello', version: 1, role: 'guest', vm: 'locked', token: 'sesame' });
    t.like(await raw.next(), { id: 2, ok: true, result: { vm: 'locked' } });
    raw.send({ id: 3, op: 'rdmsr', index: 0xc0000080 });
    t.like(await raw.next(), { id: 3, ok: true, result: { value: 0xd01 } });
    const sdk = await connect(s.guestUrl, { vm: 'locked', token: 'sesame' });
    t.is(await sdk.rdmsr(0xc0000080), 0xd01n, 'the guest SDK gives it with connect({ token })');
    sdk.close();
    // An open VM ignores a token.
    const open = new RawPeer(await openConnection(s.guestUrl));
    open.send({ id: 1, op: 'hello', version: 1, role: 'guest', vm: 'open', token: 'anything' });
    t.like(await open.next(), { ok: true });
  });
});

test('guests filling their share of VMs do not keep a control client from making one', async (t) => {
  await withServer({}, async (s) => {
    await greetedRaw(s, 'g1');
    await greetedRaw(s, 'g2');
    await t.throwsAsync(connect(s.guestUrl, { vm: 'g3' }), { code: 'limit', message: /guests may have at most 2 VMs made for them \(pinbox serve --max-vms\)/ });
    const c = await s.control();
    t.like(await c.request('createVm', { vm: 'operator' }), { vcpus: 1 });
    t.like(await c.request('stats', {}), { vms: 3, extra: { guestVms: 2n, maxVms: 2n } });
  }, {}, { maxVms: 2 });
});

test('with --guest-vms existing, guests attach to the policy\'s VM and to VMs control made, and make none', async (t) => {
  await withServer({ name: 'main' }, async (s) => {
    t.deepEqual(s.vmm.vmNames, ['main'], 'the policy\'s VM is made at once');
    await t.throwsAsync(connect(s.guestUrl, { vm: 'mine' }), { code: 'not_found', message: /makes no VMs for guests/ });
    const g = await connect(s.guestUrl, { vm: 'main' });
    t.is(await g.rdmsr(0xc0000080), 0xd01n);
    const c = await s.control();
    await c.request('createVm', { vm: 'made' });
    t.is((await connect(s.guestUrl, { vm: 'made' })).vm, 'made');
    t.deepEqual(s.vmm.vmNames.sort(), ['made', 'main']);
  }, {}, { guestsCreateVms: false });
});

test('a VM a guest made is dropped after --vm-idle-ms with no guest attached; the policy\'s VM and attached ones stay', async (t) => {
  await withServer({}, async (s) => {
    const killed: string[] = [];
    s.vmm.log.subscribe({ names: ['vm_killed'] }, (e) => killed.push(`${e.vm}:${e.fields.cause}`));
    const passing = await connect(s.guestUrl, { vm: 'passing' });
    const staying = await connect(s.guestUrl, { vm: 'staying' });
    const main = await connect(s.guestUrl);
    await passing.rdmsr(0x10);
    passing.close();
    main.close();
    await until(() => killed.length > 0, 'the idle VM to be dropped');
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.deepEqual(killed, ['passing:idle']);
    t.deepEqual(s.vmm.vmNames.sort(), ['default', 'staying']);
    t.is(await staying.rdmsr(0xc0000080), 0xd01n);
    // A guest that comes back within the time keeps its VM: attach cancels the reclaim.
    const again = await connect(s.guestUrl, { vm: 'again' });
    again.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    const back = await connect(s.guestUrl, { vm: 'again' });
    await new Promise((resolve) => setTimeout(resolve, 300));
    t.true(s.vmm.vmNames.includes('again'));
    back.close();
    staying.close();
  }, {}, { vmIdleMs: 150 });
});

// Serial: the other tests of this file keep the event loop busy, which would stretch the wait measured here.
test.serial('requests of a connection that closed stop at once, queued ones too: a guest behind them on the vCPU is not kept waiting', async (t) => {
  await withServer({}, async (s) => {
    const conn = await openConnection(s.guestUrl);
    conn.write(frame({ id: 0, op: 'hello', version: 1, role: 'guest', vm: 'shared' }));
    // Twenty requests that each run until their time is up (400 ms), then the client goes away.
    for (let id = 1; id <= 20; id++) conn.write(frame({ id, op: 'exec', code: Uint8Array.of(0xeb, 0xfe) }));
    await until(() => s.server.connections.requests >= 21, 'the requests to be handled');
    const behind = await connect(s.guestUrl, { vm: 'shared' });
    const asked = performance.now();
    const answer = behind.rdmsr(0xc0000080);
    await new Promise((resolve) => setTimeout(resolve, 100));
    conn.close();
    t.is(await answer, 0xd01n);
    const waited = performance.now() - asked;
    t.true(waited < 4000, `answered after ${waited.toFixed(0)} ms; the twenty requests would have taken 8 s`);
    behind.close();
  }, {}, { maxRequestMs: 400, budget: Number.MAX_SAFE_INTEGER, maxExits: 0x7fffffff });
});
