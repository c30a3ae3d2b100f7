/**
 * connect(): over a real Unix socket and over a Connection; the hello's options and refusals;
 * timeouts while connecting and while operations wait.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ProtocolError, ServerSession, createMemoryPair, serve } from '../../protocol/index.js';
import { HostError, InvalidArgumentError, connect } from '../../guest-sdk/index.js';
import { ScriptedHost } from './scripted-host.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-sdk-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

function memoryHost(host = new ScriptedHost()) {
  const [clientEnd, serverEnd] = createMemoryPair();
  new ServerSession(serverEnd, host);
  return { host, clientEnd };
}

test('connect over a Unix socket: hello with vm, vcpu and client, then operations and a batch', async (t) => {
  const host = new ScriptedHost();
  host.msrs.set(0xc0000080, { value: 0xd01n });
  let hello: unknown;
  host.helloReply = (h) => {
    hello = h;
    return { server: 'scripted', vm: h.vm, vcpu: h.vcpu, vcpus: 4, profile: 'v3' };
  };
  const listener = await serve(`unix:${join(dir, 'guest.sock')}`, host);
  const guest = await connect(listener.address, { vm: 'vm-1', vcpu: 3, client: 'sdk test' });
  t.deepEqual(hello, { version: 1, role: 'guest', vm: 'vm-1', vcpu: 3, client: 'sdk test' });
  t.is(guest.vm, 'vm-1');
  t.is(guest.vcpu, 3);
  t.is(guest.vcpus, 4);
  t.is(guest.profile, 'v3');
  t.is(await guest.rdmsr(0xc0000080), 0xd01n);
  const b = guest.batch();
  const a = b.rdmsrSafe(0xc0000080);
  const c = b.readCr(0);
  await b.send();
  t.deepEqual(await a, { ok: true, value: 0xd01n, exits: [], exitsDropped: 0 });
  t.is(await c, 0x80050033n);
  guest.close();
  await listener.close();
});

test('a hello the host refuses rejects with its HostError and closes the connection', async (t) => {
  const { host, clientEnd } = memoryHost();
  host.helloReply = (h) => {
    throw new ProtocolError('not_found', `no VM named ${h.vm}`, { path: 'vm' });
  };
  const e = await t.throwsAsync(connect(clientEnd, { vm: 'nope' }), { instanceOf: HostError });
  t.is(e.code, 'not_found');
  t.is(e.path, 'vm');
  t.true(e.remote);
  t.is(e.message, 'hello: the host refused it: no VM named nope [not_found]');
  t.true(clientEnd.closed);
});

test('an unreachable or malformed URL rejects with a HostError', async (t) => {
  const refused = await t.throwsAsync(connect(`unix:${join(dir, 'nobody.sock')}`), { instanceOf: HostError });
  t.is(refused.code, 'connect_failed');
  t.false(refused.remote);
  const badUrl = await t.throwsAsync(connect('http://localhost'), { instanceOf: HostError });
  t.is(badUrl.code, 'bad_url');
});

test('connect options are checked before connecting', async (t) => {
  const cases: [unknown, unknown, string][] = [
    ['unix:/x', { vm: 'no spaces' }, 'options.vm'],
    ['unix:/x', { vcpu: -1 }, 'options.vcpu'],
    ['unix:/x', { client: 'x'.repeat(129) }, 'options.client'],
    ['unix:/x', { timeoutMs: 0 }, 'options.timeoutMs'],
    ['unix:/x', { maxFrame: 100 }, 'options.maxFrame'],
    ['unix:/x', { vpcu: 1 }, 'options.vpcu'],
    [{ write: 1 }, undefined, 'target'],
  ];
  for (const [target, options, argument] of cases) {
    const e = await t.throwsAsync(connect(target as never, options as never), { instanceOf: InvalidArgumentError });
    t.is(e.argument, argument);
  }
});

test('timeoutMs: a hello that is never answered fails with a HostError timeout', async (t) => {
  const { host, clientEnd } = memoryHost();
  host.helloReply = () => new Promise(() => {});
  const started = Date.now();
  const e = await t.throwsAsync(connect(clientEnd, { timeoutMs: 50 }), { instanceOf: HostError });
  t.is(e.code, 'timeout');
  t.is(e.message, 'hello: no answer within 50 ms [timeout]');
  t.true(Date.now() - started >= 45);
  t.true(clientEnd.closed);
});

test('timeoutMs: a host that stops answering is dropped, and every waiting operation rejects with timeout', async (t) => {
  const { host, clientEnd } = memoryHost();
  host.msrs.set(0x10, { value: 1n });
  // 400 ms: a host answering in 10 ms must never time out, even while other test files load the machine.
  const guest = await connect(clientEnd, { timeoutMs: 400 });
  t.is(await guest.rdmsr(0x10), 1n);
  // Slow but answering: each answer comes within the timeout, so nothing times out.
  host.stall = () => new Promise((resolve) => setTimeout(resolve, 10));
  for (let i = 0; i < 25; i++) t.is(await guest.rdmsr(0x10), 1n);
  host.stall = () => new Promise(() => {});
  const single = guest.rdmsr(0x10);
  const b = guest.batch();
  const batched = b.cpuid(0);
  const settled = b.send();
  const e = await t.throwsAsync(single, { instanceOf: HostError });
  t.is(e.code, 'timeout');
  t.false(e.remote);
  t.is(e.message, 'rdmsr 0x10: the host answered nothing for 400 ms; the connection was closed [timeout]');
  t.is((await t.throwsAsync(batched, { instanceOf: HostError })).code, 'timeout');
  t.deepEqual((await settled).map((s) => s.ok), [false]);
  t.true(guest.closed);
});
