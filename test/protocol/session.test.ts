/**
 * Client and server sessions over an in-memory pair: the handshake, role rules, every malformed
 * input of the issue (each followed by a valid request that must still be answered), handler
 * failures, pipelining with out-of-order responses, batches and pushes.
 */
import test from 'ava';
import { ClientSession } from '../../protocol/client-session.js';
import { ProtocolError, RemoteError } from '../../protocol/errors.js';
import type { HelloParams } from '../../protocol/messages/index.js';
import { type HandlerRequest, ServerSession, type ServerSessionOptions, type SessionHandler } from '../../protocol/server-session.js';
import { encodeMsgpack } from '../../protocol/codec.js';
import { requestToWire } from '../../protocol/envelope.js';
import { frameBody } from '../../protocol/framing.js';
import { createMemoryPair } from '../../protocol/transports/memory.js';
import { CONTROL_TOKEN, EchoHandler, sampleHelloReply } from './echo-handler.js';
import { RawPeer } from './raw-peer.js';
import { roundTripEveryOp } from './round-trip.js';
import { SAMPLES, SAMPLE_EVENT, U64_MAX } from './samples.js';

const GUEST_HELLO = { id: 0, op: 'hello', ...SAMPLES.hello.params };
const CONTROL_HELLO = { id: 0, op: 'hello', version: 1, role: 'control', token: CONTROL_TOKEN };

function pair<H extends SessionHandler>(handler: H, options?: ServerSessionOptions) {
  const [clientEnd, serverEnd] = createMemoryPair();
  const session = new ServerSession(serverEnd, handler, options);
  return { clientEnd, session, handler };
}

function serve<H extends SessionHandler>(handler: H, options?: ServerSessionOptions) {
  const p = pair(handler, options);
  return { ...p, raw: new RawPeer(p.clientEnd) };
}

async function greeted<H extends SessionHandler>(hello: Record<string, unknown>, handler: H, options?: ServerSessionOptions) {
  const s = serve(handler, options);
  s.raw.send(hello);
  const reply = await s.raw.next();
  if (reply.ok !== true) throw new Error(`hello failed: ${JSON.stringify(reply.error)}`);
  return s;
}

/** The session still answers a valid request after whatever came before. */
async function stillServes(t: import('ava').ExecutionContext, raw: RawPeer, id = 77): Promise<void> {
  raw.send({ id, op: 'lmsw', value: 0xffff });
  t.deepEqual(await raw.next(), { id, ok: true, result: { exits: [] } });
}

function errorOf(reply: any): { id: unknown; code: string; message: string; path?: string; errno?: string } {
  if (reply.ok !== false) throw new Error(`expected an error, got ${JSON.stringify(reply, (_k, v) => (typeof v === 'bigint' ? `${v}` : v))}`);
  return { id: reply.id, ...reply.error };
}

test('every op round-trips through client and server sessions on a memory pair', async (t) => {
  const handler = new EchoHandler();
  const [g1, g2] = createMemoryPair();
  const [c1, c2] = createMemoryPair();
  new ServerSession(g2, handler);
  new ServerSession(c2, handler);
  await roundTripEveryOp(t, g1, c1);
  // batch is expanded by the session: the handler saw its three items, never "batch".
  t.false(handler.received.some((r) => (r.op as string) === 'batch' || (r.op as string) === 'hello'));
});

test('a guest hello gets the defaults vm "default" and vcpu 0; the session records them', async (t) => {
  let seen: HelloParams | undefined;
  const { raw, session } = serve({ hello: (_s, h) => ((seen = h), { server: 'x' }), request: () => ({}) });
  raw.send({ id: 9, op: 'hello', version: 1, role: 'guest' });
  t.deepEqual(await raw.next(), { id: 9, ok: true, result: { version: 1, role: 'guest', server: 'x', vm: 'default', vcpu: 0 } });
  t.deepEqual(seen, { version: 1, role: 'guest', vm: 'default', vcpu: 0 });
  t.is(session.role, 'guest');
  t.is(session.vm, 'default');
  t.is(session.vcpu, 0);
});

test('a request before hello gets hello_required, is not run, and hello still works after', async (t) => {
  const { raw, handler } = serve(new EchoHandler());
  raw.send({ id: 1, op: 'lmsw', value: 0xffff });
  const e = errorOf(await raw.next());
  t.is(e.code, 'hello_required');
  t.is(e.id, 1);
  t.is(handler.received.length, 0);
  raw.send(GUEST_HELLO);
  t.is((await raw.next()).ok, true);
  await stillServes(t, raw);
});

test('requests pipelined behind a hello wait for it instead of failing', async (t) => {
  const { raw } = serve(new EchoHandler());
  raw.send(GUEST_HELLO);
  raw.send({ id: 1, op: 'lmsw', value: 0xffff });
  t.is((await raw.next()).id, 0);
  t.deepEqual(await raw.next(), { id: 1, ok: true, result: { exits: [] } });
});

test('a version mismatch names both versions, and the session goes on', async (t) => {
  const { raw } = serve(new EchoHandler());
  raw.send({ id: 3, op: 'hello', version: 2, role: 'guest', someV2Field: true });
  const e = errorOf(await raw.next());
  t.deepEqual(e, {
    id: 3, code: 'version_mismatch', path: 'version',
    message: 'client speaks protocol version 2, this server speaks version 1',
  });
  raw.send(GUEST_HELLO);
  t.is((await raw.next()).ok, true);
  await stillServes(t, raw);
});

test('the client checks the version the server answers with', async (t) => {
  const [clientEnd, serverEnd] = createMemoryPair();
  const fakeServer = new RawPeer(serverEnd);
  const client = new ClientSession(clientEnd);
  const hello = client.hello({ role: 'guest' });
  const request = await fakeServer.next();
  t.deepEqual(request, { id: request.id, op: 'hello', version: 1, role: 'guest' });
  fakeServer.send({ id: request.id, ok: true, result: { version: 2, role: 'guest', server: 'future' } });
  const e = await t.throwsAsync(hello, { instanceOf: ProtocolError });
  t.is(e.code, 'version_mismatch');
  t.is(e.message, 'the server speaks protocol version 2, this client speaks version 1');
});

test('a second hello gets already_greeted', async (t) => {
  const { raw } = await greeted(GUEST_HELLO, new EchoHandler());
  raw.send({ ...GUEST_HELLO, id: 5 });
  t.is(errorOf(await raw.next()).code, 'already_greeted');
  await stillServes(t, raw);
});

test('a guest sending a control op gets forbidden and nothing happens', async (t) => {
  const { raw, handler } = await greeted(GUEST_HELLO, new EchoHandler());
  for (const op of ['setMsrFilter', 'resetVm', 'getRegs', 'subscribe', 'stats'] as const) {
    raw.send({ id: 11, op, ...SAMPLES[op].params });
    const e = errorOf(await raw.next());
    t.is(e.code, 'forbidden');
    t.is(e.message, `${op} is a control op; this connection's role is guest`);
  }
  // Even invalid params are not looked at: the role check comes first.
  raw.send({ id: 12, op: 'setMsrFilter', vm: 5 });
  t.is(errorOf(await raw.next()).code, 'forbidden');
  t.is(handler.received.length, 0);
  await stillServes(t, raw);
});

test('a control connection sending a guest op gets forbidden', async (t) => {
  const { raw, handler } = await greeted(CONTROL_HELLO, new EchoHandler());
  raw.send({ id: 1, op: 'rdmsr', index: 16 });
  t.is(errorOf(await raw.next()).code, 'forbidden');
  raw.send({ id: 2, op: 'batch', ops: [{ op: 'clts' }] });
  t.is(errorOf(await raw.next()).code, 'forbidden');
  t.is(handler.received.length, 0);
  raw.send({ id: 3, op: 'resetVm', vm: 'default' });
  t.deepEqual(await raw.next(), { id: 3, ok: true, result: {} });
});

test('control hellos need a token and take no vm; a refused hello can be retried', async (t) => {
  const { raw } = serve(new EchoHandler());
  raw.send({ id: 1, op: 'hello', version: 1, role: 'control' });
  t.deepEqual(errorOf(await raw.next()), { id: 1, code: 'invalid_message', path: 'token', message: 'token: required for role control' });
  raw.send({ ...CONTROL_HELLO, id: 2, vm: 'default' });
  t.is(errorOf(await raw.next()).path, 'vm');
  raw.send({ ...CONTROL_HELLO, id: 3, token: 'wrong' });
  t.deepEqual(errorOf(await raw.next()), { id: 3, code: 'bad_token', message: 'the control token is wrong' });
  raw.send({ id: 4, op: 'stats' });
  t.is(errorOf(await raw.next()).code, 'hello_required');
  raw.send({ ...CONTROL_HELLO, id: 5 });
  t.deepEqual(await raw.next(), { id: 5, ok: true, result: { version: 1, role: 'control', server: 'pinbox' } });
});

test('unknown ops, unknown fields, wrong types, out-of-range values: clear errors, the session goes on', async (t) => {
  const { raw, handler } = await greeted(GUEST_HELLO, new EchoHandler());
  const cases: [Record<string, unknown>, string, string | undefined][] = [
    [{ id: 1, op: 'reboot' }, 'unknown_op', 'op'],
    [{ id: 2, op: 'rdmsr', index: 16, colour: 'red' }, 'invalid_message', 'colour'],
    [{ id: 3, op: 'rdmsr', index: '16' }, 'invalid_message', 'index'],
    [{ id: 4, op: 'rdmsr', index: 0x1_0000_0000n }, 'invalid_message', 'index'],
    [{ id: 5, op: 'wrmsr', index: 16, value: -1n }, 'invalid_message', 'value'],
    [{ id: 6, op: 'hypercall', nr: 13n, args: [1n, 2n, 3n, 4n, 5n] }, 'invalid_message', 'args'],
    [{ id: 7, op: 'exec', code: new Uint8Array(65537) }, 'invalid_message', 'code'],
    [{ id: 8, op: 'batch', ops: [{ op: 'clts' }, { op: 'rdmsr', index: -1 }] }, 'invalid_message', 'ops[1].index'],
    [{ id: 9, op: 'hello' }, 'already_greeted', undefined],
  ];
  for (const [request, code, path] of cases) {
    raw.send(request);
    const e = errorOf(await raw.next());
    t.is(e.id, request.id);
    t.is(e.code, code, e.message);
    t.is(e.path, path);
  }
  t.is(handler.received.length, 0, 'no invalid request reached the handler');
  await stillServes(t, raw);
});

test('u64 values arrive whole: -1 as int64 is an error, 2^64-1 as uint64 is 2^64-1', async (t) => {
  const values: bigint[] = [];
  const { raw } = await greeted(GUEST_HELLO, {
    hello: () => sampleHelloReply(),
    request: (_s, r) => (values.push((r as { value: bigint }).value), { exits: [] }),
  });
  // Hand-made wrmsr bodies; msgpack has no encoding for 2^64 at all, so -1 is the way to overflow.
  raw.sendBody('84 a2 6964 01 a2 6f70 a5 77726d7372 a5 696e646578 10 a5 76616c7565 d3 ffffffffffffffff');
  const e = errorOf(await raw.next());
  t.deepEqual([e.code, e.path], ['invalid_message', 'value']);
  raw.sendBody('84 a2 6964 02 a2 6f70 a5 77726d7372 a5 696e646578 10 a5 76616c7565 cf ffffffffffffffff');
  t.deepEqual(await raw.next(), { id: 2, ok: true, result: { exits: [] } });
  raw.sendBody('84 a2 6964 03 a2 6f70 a5 77726d7372 a5 696e646578 10 a5 76616c7565 cf 8000000000000000');
  t.is((await raw.next()).ok, true);
  t.deepEqual(values, [U64_MAX, 1n << 63n]);
});

test('bad frames are answered with id nil and the session goes on', async (t) => {
  const { raw } = await greeted(GUEST_HELLO, new EchoHandler());
  const deep = new Uint8Array(100_001).fill(0x91);
  deep[100_000] = 0xc0;
  const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
  const garbage = Uint8Array.from({ length: 300 }, (_, i) => (i * 37 + 11) & 0xff);
  const cases: [Uint8Array, string, RegExp][] = [
    [hex('c1'), 'bad_frame', /reserved byte 0xc1/],
    [hex('84 a2 6964 01 a2 6f70 a5 72646d7372 a5 696e646578'), 'bad_frame', /truncated/],
    [hex('83 a2 6964 01 a2 6f70 a5 72646d7372 a5 696e646578 10 c0'), 'bad_frame', /1 trailing bytes/],
    [deep, 'too_deep', /deeper than 64/],
    [hex('81 a2 6964 d6 ff 00000000'), 'bad_frame', /ext/],
    [hex('82 a2 6964 01 a2 6964 02'), 'bad_frame', /twice/],
    [hex('81 a2 6964 cb 3ff0000000000000'), 'bad_frame', /float/],
    [garbage, 'bad_frame', /./],
  ];
  for (const [body, code, message] of cases) {
    raw.sendBytes(frameBody(body));
    const e = errorOf(await raw.next());
    t.is(e.id, null);
    t.is(e.code, code);
    t.regex(e.message, message);
  }
  raw.sendBytes(Uint8Array.from([0, 0, 0, 0]));
  t.is(errorOf(await raw.next()).code, 'bad_frame');
  t.is(raw.closed, false);
  await stillServes(t, raw);
});

test('a message that is not a request map, or has no usable id, is answered with id nil', async (t) => {
  const { raw } = await greeted(GUEST_HELLO, new EchoHandler());
  for (const value of [[1, 2], 'hello', null, { op: 'clts' }, { id: -5, op: 'clts' }, { id: 'x', op: 'clts' }]) {
    raw.send(value);
    const e = errorOf(await raw.next());
    t.is(e.id, null);
    t.is(e.code, 'invalid_message');
  }
  // With a usable id, the error carries it even if the op is missing.
  raw.send({ id: 8 });
  t.deepEqual(errorOf(await raw.next()), { id: 8, code: 'invalid_message', path: 'op', message: 'op: expected an op name, got nothing' });
  await stillServes(t, raw);
});

test('an announced length over the maximum is answered, then the connection closes', async (t) => {
  const { raw, handler, session } = await greeted(GUEST_HELLO, new EchoHandler());
  raw.sendBytes(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x81]));
  const e = errorOf(await raw.next());
  t.deepEqual(e, {
    id: null, code: 'frame_too_large',
    message: "the frame announces 4294967295 bytes, more than this endpoint's maximum of 1048576 bytes",
  });
  await raw.whenClosed();
  t.true(session.closed);
  await new Promise<void>((resolve) => session.onClose(resolve));
  t.deepEqual(handler.closedSessions, [session]);
});

test('the frame maximum is configurable per session', async (t) => {
  const { raw } = await greeted(GUEST_HELLO, new EchoHandler(), { maxFrame: 8192 });
  raw.send({ id: 1, op: 'exec', code: new Uint8Array(8192) });
  t.is(errorOf(await raw.next()).code, 'frame_too_large');
  await raw.whenClosed();
});

test('handler failures become error responses: internal, kvm_error with errno, the handler\'s own code', async (t) => {
  const handler: SessionHandler = {
    hello: () => sampleHelloReply(),
    request: (_s, r) => {
      if (r.op === 'rdmsr') throw new Error('boom');
      if (r.op === 'wrmsr') throw Object.assign(new Error('filter install failed'), { errno: 'E2BIG' });
      if (r.op === 'readCr') throw new ProtocolError('not_found', 'no vCPU 1');
      if (r.op === 'writeCr') return Promise.reject(new TypeError('async boom'));
      if (r.op === 'cpuid') throw 'a string'; // eslint-disable-line no-throw-literal
      if (r.op === 'lmsw') throw new ProtocolError('Not Snake', 'typo', { errno: 'einval' });
      if (r.op === 'hypercall') throw new Error('half a pair: \ud800');
      return { exits: [] };
    },
  };
  const { raw } = await greeted(GUEST_HELLO, handler);
  raw.send({ id: 1, op: 'rdmsr', index: 1 });
  t.deepEqual(errorOf(await raw.next()), { id: 1, code: 'internal', message: 'internal error: boom' });
  raw.send({ id: 2, op: 'wrmsr', index: 1, value: 0n });
  t.deepEqual(errorOf(await raw.next()), { id: 2, code: 'kvm_error', message: 'filter install failed', errno: 'E2BIG' });
  raw.send({ id: 3, op: 'readCr', cr: 0 });
  t.deepEqual(errorOf(await raw.next()), { id: 3, code: 'not_found', message: 'no vCPU 1' });
  raw.send({ id: 4, op: 'writeCr', cr: 0, value: 0n });
  t.deepEqual(errorOf(await raw.next()), { id: 4, code: 'internal', message: 'internal error: async boom' });
  raw.send({ id: 5, op: 'cpuid', leaf: 0 });
  t.deepEqual(errorOf(await raw.next()), { id: 5, code: 'internal', message: 'internal error: a string' });
  // A code or errno that cannot travel still gets the client an answer.
  raw.send({ id: 6, op: 'lmsw', value: 1 });
  t.deepEqual(errorOf(await raw.next()), { id: 6, code: 'internal', message: 'internal error: "Not Snake" is not an error code (typo)' });
  raw.send({ id: 7, op: 'hypercall', nr: 1n });
  t.deepEqual(errorOf(await raw.next()), { id: 7, code: 'internal', message: 'internal error: half a pair: \ufffd' });
  raw.send({ id: 8, op: 'clts' });
  t.deepEqual(await raw.next(), { id: 8, ok: true, result: { exits: [] } });
});

test('an invalid result from the handler is an internal error naming the op and field', async (t) => {
  const handler: SessionHandler = {
    hello: () => sampleHelloReply(),
    request: (_s, r) => (r.op === 'rdmsr' ? { value: -1n, exits: [] } : { exits: [] }),
  };
  const { raw } = await greeted(GUEST_HELLO, handler);
  raw.send({ id: 1, op: 'rdmsr', index: 1 });
  const e = errorOf(await raw.next());
  t.is(e.code, 'internal');
  t.is(e.message, 'the server produced an invalid rdmsr result: value: expected u64 (an integer 0..2^64-1), got -1');
  await stillServes(t, raw);
});

test('a result too large for a frame becomes a limit error for that id', async (t) => {
  const handler: SessionHandler = {
    hello: () => ({ server: 'x' }),
    request: () => ({ snapshot: new Uint8Array(2 << 20) }),
  };
  const { raw } = await greeted(CONTROL_HELLO, handler);
  raw.send({ id: 6, op: 'snapshot', vm: 'default' });
  const e = errorOf(await raw.next());
  t.is(e.id, 6);
  t.is(e.code, 'limit');
  t.regex(e.message, /exceeds the frame maximum of 1048576 bytes/);
});

test('an invalid hello reply leaves the session un-greeted', async (t) => {
  let reply: object = { server: 'x'.repeat(200) };
  const { raw, session } = serve({ hello: () => reply as never, request: () => ({ exits: [] }) });
  raw.send({ id: 1, op: 'hello', version: 1, role: 'guest' });
  t.is(errorOf(await raw.next()).code, 'internal');
  t.is(session.role, undefined);
  reply = { server: 'x' };
  raw.send({ id: 2, op: 'hello', version: 1, role: 'guest' });
  t.is((await raw.next()).ok, true);
});

test('pipelined requests: responses come out of order and each matches its request', async (t) => {
  const gates: (() => void)[] = [];
  const handler: SessionHandler = {
    hello: () => sampleHelloReply(),
    request: (_s, r) =>
      new Promise((resolve) => {
        const index = (r as HandlerRequest & { op: 'rdmsr' }).index;
        gates[index] = () => resolve({ value: BigInt(index) * 0x1_0000_0001n, exits: [] });
      }),
  };
  const [clientEnd, serverEnd] = createMemoryPair();
  new ServerSession(serverEnd, handler);
  const client = new ClientSession(clientEnd);
  await client.hello({ role: 'guest' });
  const N = 64;
  const order: number[] = [];
  const requests = Array.from({ length: N }, (_, i) =>
    client.request('rdmsr', { index: i }).then((r) => (order.push(i), r)));
  t.is(client.outstanding, N);
  while (gates.filter(Boolean).length < N) await new Promise((r) => setImmediate(r));
  for (let i = N - 1; i >= 0; i--) gates[i]!(); // answer in reverse
  const results = await Promise.all(requests);
  results.forEach((r, i) => t.deepEqual(r, { value: BigInt(i) * 0x1_0000_0001n, exits: [] }));
  t.deepEqual(order, Array.from({ length: N }, (_, i) => N - 1 - i));
  t.is(client.outstanding, 0);
});

test('requests reach the handler in the order they were sent', async (t) => {
  const seen: number[] = [];
  const { raw } = await greeted(GUEST_HELLO, {
    hello: () => sampleHelloReply(),
    request: (_s, r) => (seen.push((r as { index: number }).index), { value: 0n, exits: [] }),
  });
  for (let i = 0; i < 100; i++) raw.send({ id: i + 1, op: 'rdmsr', index: i });
  for (let i = 0; i < 100; i++) await raw.next();
  t.deepEqual(seen, Array.from({ length: 100 }, (_, i) => i));
});

test('an id reused while outstanding is answered with duplicate_id and id nil; the first still gets its answer', async (t) => {
  let release!: () => void;
  const { raw } = await greeted(GUEST_HELLO, {
    hello: () => sampleHelloReply(),
    request: () => new Promise((resolve) => (release = () => resolve({ exits: [] }))),
  });
  raw.send({ id: 5, op: 'clts' });
  raw.send({ id: 5, op: 'clts' });
  t.deepEqual(errorOf(await raw.next()), { id: null, code: 'duplicate_id', path: 'id', message: 'id 5 is already used by an outstanding request' });
  release();
  t.deepEqual(await raw.next(), { id: 5, ok: true, result: { exits: [] } });
  // Once answered, the id is free again.
  raw.send({ id: 5, op: 'clts' });
  await new Promise((r) => setImmediate(r));
  release();
  t.is((await raw.next()).id, 5);
});

test('more requests in flight than allowed are answered with limit and not run', async (t) => {
  let calls = 0;
  const releases: (() => void)[] = [];
  const { raw } = await greeted(GUEST_HELLO, {
    hello: () => sampleHelloReply(),
    request: () => (calls++, new Promise((resolve) => releases.push(() => resolve({ exits: [] })))),
  }, { maxInFlight: 2 });
  for (const id of [1, 2, 3]) raw.send({ id, op: 'clts' });
  const e = errorOf(await raw.next());
  t.deepEqual([e.id, e.code], [3, 'limit']);
  t.is(calls, 2);
  releases.forEach((r) => r());
  t.deepEqual([(await raw.next()).id, (await raw.next()).id].sort(), [1, 2]);
});

test('a batch runs its ops in order; a failing op does not stop the rest', async (t) => {
  const ran: string[] = [];
  const { raw } = await greeted(GUEST_HELLO, {
    hello: () => sampleHelloReply(),
    request: async (_s, r) => {
      ran.push(r.op);
      await new Promise((resolve) => setTimeout(resolve, r.op === 'rdmsr' ? 5 : 0));
      if (r.op === 'wrmsr') throw new ProtocolError('kvm_error', 'no', { errno: 'EPERM' });
      if (r.op === 'cpuid') return { eax: 1, exits: [] }; // invalid: the item fails, not the batch
      return r.op === 'rdmsr' ? { value: U64_MAX, exits: [] } : { exits: [] };
    },
  });
  raw.send({ id: 1, op: 'batch', ops: [{ op: 'rdmsr', index: 1 }, { op: 'wrmsr', index: 1, value: 0n }, { op: 'cpuid', leaf: 0 }, { op: 'clts' }] });
  const reply = await raw.next();
  t.deepEqual(ran, ['rdmsr', 'wrmsr', 'cpuid', 'clts']);
  t.is(reply.ok, true);
  const results = reply.result.results;
  t.deepEqual(results[0], { ok: true, result: { value: U64_MAX, exits: [] } });
  t.deepEqual(results[1], { ok: false, error: { code: 'kvm_error', message: 'no', errno: 'EPERM' } });
  t.is(results[2].error.code, 'internal');
  t.regex(results[2].error.message, /invalid cpuid result: ebx: required/);
  t.deepEqual(results[3], { ok: true, result: { exits: [] } });
});

test('a batch whose handler answers some ops at once and others later keeps order and gives each op its outcome', async (t) => {
  const ran: string[] = [];
  let releaseWrmsr!: () => void;
  let wrmsrStarted!: () => void;
  const started = new Promise<void>((resolve) => (wrmsrStarted = resolve));
  const { raw } = await greeted(GUEST_HELLO, {
    hello: () => sampleHelloReply(),
    request: (_s, r) => {
      ran.push(`${r.op}:start`);
      if (r.op === 'wrmsr') {
        wrmsrStarted();
        return new Promise((resolve) => (releaseWrmsr = () => resolve({ exits: [] })));
      }
      if (r.op === 'lmsw') throw new ProtocolError('kvm_error', 'no', { errno: 'EPERM' });
      if (r.op === 'cpuid') return { eax: 1, exits: [] }; // invalid (ebx..edx missing): that op fails, not the batch
      return r.op === 'rdmsr' ? { value: 5n, exits: [] } : { exits: [] };
    },
  });
  raw.send({ id: 1, op: 'batch', ops: [
    { op: 'rdmsr', index: 1 }, { op: 'cpuid', leaf: 0 }, { op: 'wrmsr', index: 1, value: 0n }, { op: 'lmsw', value: 1 }, { op: 'clts' },
  ] });
  await started;
  await new Promise((resolve) => setImmediate(resolve));
  // The ops after the one that is still running wait for it.
  t.deepEqual(ran, ['rdmsr:start', 'cpuid:start', 'wrmsr:start']);
  releaseWrmsr();
  const reply = await raw.next();
  t.deepEqual(ran, ['rdmsr:start', 'cpuid:start', 'wrmsr:start', 'lmsw:start', 'clts:start']);
  const results = reply.result.results;
  t.deepEqual(results[0], { ok: true, result: { value: 5, exits: [] } });
  t.is(results[1].error.code, 'internal');
  t.regex(results[1].error.message, /invalid cpuid result: ebx: required/);
  t.deepEqual(results[2], { ok: true, result: { exits: [] } });
  t.deepEqual(results[3], { ok: false, error: { code: 'kvm_error', message: 'no', errno: 'EPERM' } });
  t.deepEqual(results[4], { ok: true, result: { exits: [] } });
  t.is(results.length, 5);
});

test('pushes reach the listener of their subscription, including ones sent before it listened', async (t) => {
  let serverSession!: ServerSession;
  const handler: SessionHandler = {
    hello: (s) => ((serverSession = s), { server: 'x' }),
    request: (s, r) => {
      if (r.op !== 'subscribe') return {};
      s.push(7, { ...SAMPLE_EVENT, seq: 1n }); // before the subscribe response
      return { sub: 7 };
    },
  };
  const [clientEnd, serverEnd] = createMemoryPair();
  new ServerSession(serverEnd, handler);
  const client = new ClientSession(clientEnd);
  await client.hello({ role: 'control', token: 't' });
  const { sub } = await client.request('subscribe', { events: ['kvm_msr'] });
  t.is(sub, 7);
  const events: bigint[] = [];
  const got3 = new Promise<void>((resolve) => client.onEvent(sub, (e) => (events.push(e.seq), events.length === 3 && resolve())));
  serverSession.push(7, { ...SAMPLE_EVENT, seq: 2n });
  serverSession.push(7, { ...SAMPLE_EVENT, seq: 3n });
  await got3;
  t.deepEqual(events, [1n, 2n, 3n]);
  // An invalid event is the server's bug: push throws and sends nothing.
  t.throws(() => serverSession.push(7, { ...SAMPLE_EVENT, name: 'Bad Name' }), { instanceOf: ProtocolError });
});

test('the client validates results: an invalid one rejects that request with the field path', async (t) => {
  const [clientEnd, serverEnd] = createMemoryPair();
  const fakeServer = new RawPeer(serverEnd);
  const client = new ClientSession(clientEnd);
  const errors: ProtocolError[] = [];
  client.onError((e) => errors.push(e));
  const p = client.request('rdmsr', { index: 16 });
  const q = client.request('clts', {});
  const r1 = await fakeServer.next();
  const r2 = await fakeServer.next();
  fakeServer.send({ id: r1.id, ok: true, result: { value: -1, exits: [] } });
  fakeServer.send({ id: r2.id, ok: false, error: { code: 'kvm_error', message: 'nope', errno: 'EINVAL' } });
  const e = await t.throwsAsync(p, { instanceOf: ProtocolError });
  t.is(e.code, 'invalid_message');
  t.is(e.path, 'result.value');
  t.regex(e.message, /^the server sent an invalid rdmsr response: result\.value: expected u64/);
  const remote = await t.throwsAsync(q, { instanceOf: RemoteError });
  t.deepEqual([remote.code, remote.message, remote.errno], ['kvm_error', 'nope', 'EINVAL']);
  // Garbage from the server, answers to unknown ids and nil-id errors go to onError.
  fakeServer.sendBody('c1');
  fakeServer.send({ id: 999, ok: true, result: {} });
  fakeServer.send({ id: null, ok: false, error: { code: 'bad_frame', message: 'x' } });
  fakeServer.send({ sub: 1, event: { bad: true } });
  const done = client.request('clts', {});
  const r3 = await fakeServer.next();
  fakeServer.send({ id: r3.id, ok: true, result: { exits: [] } });
  t.deepEqual(await done, { exits: [] });
  t.deepEqual(errors.map((x) => x.code), ['bad_frame', 'invalid_message', 'bad_frame', 'invalid_message']);
});

test('the client refuses to send invalid params or an oversized frame, and sends nothing', async (t) => {
  const [clientEnd, serverEnd] = createMemoryPair();
  const fakeServer = new RawPeer(serverEnd);
  const client = new ClientSession(clientEnd, { maxFrame: 8192 });
  const e = await t.throwsAsync(client.request('wrmsr', { index: 1, value: 1n << 64n }), { instanceOf: ProtocolError });
  t.deepEqual([e.code, e.path], ['invalid_message', 'value']);
  const big = await t.throwsAsync(client.request('exec', { code: new Uint8Array(10000) }), { instanceOf: ProtocolError });
  t.is(big.code, 'limit');
  t.is(client.outstanding, 0);
  void client.request('clts', {});
  t.deepEqual(await fakeServer.next(), { id: 3, op: 'clts' });
});

test('pending requests are rejected with connection_closed when the connection goes, naming what the server said', async (t) => {
  const { clientEnd } = pair({ hello: () => ({ server: 'x' }), request: () => new Promise(() => {}) });
  const client = new ClientSession(clientEnd);
  await client.hello({ role: 'guest' });
  const pending = client.request('clts', {});
  // Make the server close: announce a huge frame behind the client's back.
  clientEnd.write(Uint8Array.from([0x7f, 0xff, 0xff, 0xff]));
  const e = await t.throwsAsync(pending, { instanceOf: ProtocolError });
  t.is(e.code, 'connection_closed');
  t.regex(e.message, /the response to clts \(id \d+\) .* the server said: frame_too_large/);
  const after = await t.throwsAsync(client.request('clts', {}), { instanceOf: ProtocolError });
  t.is(after.code, 'connection_closed');
});

test('a throwing close hook or handler.closed does not escape', async (t) => {
  const { raw, session } = serve({ hello: () => ({ server: 'x' }), request: () => ({}), closed: () => { throw new Error('bad hook'); } });
  let hookRan = false;
  session.onClose(() => { hookRan = true; throw new Error('also bad'); });
  raw.connection.close();
  await raw.whenClosed();
  await new Promise((r) => setImmediate(r));
  t.true(hookRan);
});

test('mutated and random frames: every frame gets exactly one answer and the session lives on', async (t) => {
  // Seeds: every sample request as bytes. Mutations: byte flips, truncation, insertion, random.
  let seed = 0x2545f491;
  const random = (n: number): number => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  const seeds = Object.entries(SAMPLES).map(([op, s], i) => encodeMsgpack(requestToWire(i, op as never, s.params as never)));
  const { raw } = serve({
    hello: () => sampleHelloReply(),
    request: (_s, r) => (r.op === 'clts' ? { exits: [] } : {}),
  });
  const FRAMES = 3000;
  for (let i = 0; i < FRAMES; i++) {
    const base = seeds[random(seeds.length)]!;
    let body: Uint8Array;
    switch (random(4)) {
      case 0: body = base.slice(); for (let k = 0; k <= random(3); k++) body[random(body.length)] = random(256); break;
      case 1: body = base.slice(0, 1 + random(base.length)); break;
      case 2: { const at = random(base.length); body = Buffer.concat([base.subarray(0, at), Uint8Array.of(random(256)), base.subarray(at)]); break; }
      default: body = Uint8Array.from({ length: 1 + random(64) }, () => random(256));
    }
    raw.sendBytes(frameBody(body));
  }
  let answers = 0;
  while (answers < FRAMES) {
    const reply = await raw.next();
    t.true(reply.ok === true || (reply.ok === false && typeof reply.error.code === 'string'));
    answers++;
  }
  t.false(raw.closed);
  raw.send({ id: 4_000_000_000, op: 'hello', version: 1, role: 'guest' });
  const hello = await raw.next();
  t.true(hello.id === 4_000_000_000);
  raw.send({ id: 4_000_000_001, op: 'clts' });
  t.deepEqual(await raw.next(), { id: 4_000_000_001, ok: true, result: { exits: [] } });
});
