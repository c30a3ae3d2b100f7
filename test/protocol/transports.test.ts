/**
 * The real transports: every op over a Unix socket, TCP and a stdio child; URL parsing; stale
 * and foreign files at a socket path; and a server that outlives a connection it had to close.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientSession } from '../../protocol/client-session.js';
import { ProtocolError } from '../../protocol/errors.js';
import { serve } from '../../protocol/serve.js';
import { connect, listen, parseEndpoint, spawnStdio } from '../../protocol/transports/index.js';
import { CONTROL_TOKEN, EchoHandler } from './echo-handler.js';
import { RawPeer } from './raw-peer.js';
import { roundTripEveryOp } from './round-trip.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-protocol-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let sockets = 0;
const socketPath = (): string => join(dir, `s${sockets++}.sock`);

/** After a connection that had to be closed, the server still takes new ones. */
async function serverSurvivesOversizedFrame(t: import('ava').ExecutionContext, url: string): Promise<void> {
  const bad = new RawPeer(await connect(url));
  bad.sendBytes(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  const reply = await bad.next();
  t.is(reply.error.code, 'frame_too_large');
  await bad.whenClosed();
  const good = new ClientSession(await connect(url));
  t.is((await good.hello({ role: 'control', token: CONTROL_TOKEN })).role, 'control');
  t.deepEqual(await good.request('resetVm', { vm: 'default' }), {});
  good.close();
}

test('URLs: unix, tcp (loopback unless a host is given), stdio; anything else is bad_url', (t) => {
  t.deepEqual(parseEndpoint('unix:/run/p.sock'), { kind: 'unix', path: '/run/p.sock' });
  t.deepEqual(parseEndpoint('unix:rel.sock'), { kind: 'unix', path: 'rel.sock' });
  t.deepEqual(parseEndpoint('tcp:7000'), { kind: 'tcp', host: '127.0.0.1', port: 7000 });
  t.deepEqual(parseEndpoint('tcp:0.0.0.0:7000'), { kind: 'tcp', host: '0.0.0.0', port: 7000 });
  t.deepEqual(parseEndpoint('tcp:[::1]:7000'), { kind: 'tcp', host: '::1', port: 7000 });
  t.deepEqual(parseEndpoint('tcp:vmm.local:0'), { kind: 'tcp', host: 'vmm.local', port: 0 });
  t.deepEqual(parseEndpoint('stdio:'), { kind: 'stdio' });
  for (const url of ['http://x:1', 'tcp:', 'tcp:host', 'tcp:1.2.3.4', 'tcp:h:65536', 'tcp:h:-1', 'unix:', 'unix:a\0b', 'stdio', '']) {
    const e = t.throws(() => parseEndpoint(url), { instanceOf: ProtocolError }, url);
    t.is(e.code, 'bad_url');
    t.true(e.message.includes(JSON.stringify(url)), e.message);
  }
});

test('unix socket: every op round-trips; the server survives a connection it closed; close removes the socket', async (t) => {
  const url = `unix:${socketPath()}`;
  const listener = await serve(url, new EchoHandler());
  t.is(listener.address, url);
  await roundTripEveryOp(t, await connect(url), await connect(url));
  await serverSurvivesOversizedFrame(t, url);
  await listener.close();
  t.false(existsSync(url.slice(5)));
});

test('unix socket: a stale socket file is replaced', async (t) => {
  const path = socketPath();
  // A server that dies without cleaning up leaves its socket file behind.
  const child = spawn(process.execPath, ['-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => process.kill(process.pid, 'SIGKILL'))`]);
  await new Promise((resolve) => child.once('exit', resolve));
  t.true(existsSync(path));
  const listener = await serve(`unix:${path}`, new EchoHandler());
  const client = new ClientSession(await connect(`unix:${path}`));
  t.is((await client.hello({ role: 'control', token: CONTROL_TOKEN })).version, 1);
  client.close();
  await listener.close();
});

test('unix socket: a file that is not a socket, or a live socket, is refused and left alone', async (t) => {
  const path = socketPath();
  writeFileSync(path, 'precious');
  const e = await t.throwsAsync(listen(`unix:${path}`, () => {}), { instanceOf: ProtocolError });
  t.is(e.code, 'bad_url');
  t.regex(e.message, /exists and is not a socket/);
  t.is(readFileSync(path, 'utf8'), 'precious');

  const livePath = socketPath();
  const first = await serve(`unix:${livePath}`, new EchoHandler());
  const busy = await t.throwsAsync(listen(`unix:${livePath}`, () => {}), { instanceOf: ProtocolError });
  t.regex(busy.message, /in use by a running server/);
  const client = new ClientSession(await connect(`unix:${livePath}`));
  t.is((await client.hello({ role: 'control', token: CONTROL_TOKEN })).role, 'control');
  client.close();
  await first.close();
});

test('tcp: binds to loopback by default; every op round-trips; the server survives a connection it closed', async (t) => {
  const listener = await serve('tcp:0', new EchoHandler());
  t.regex(listener.address, /^tcp:127\.0\.0\.1:\d+$/);
  t.not(listener.address, 'tcp:127.0.0.1:0');
  await roundTripEveryOp(t, await connect(listener.address), await connect(listener.address));
  await serverSurvivesOversizedFrame(t, listener.address);
  await listener.close();
  await t.throwsAsync(connect(listener.address));
});

test('tcp: a bad frame on a TCP connection is answered and the connection goes on', async (t) => {
  const listener = await serve('tcp:127.0.0.1:0', new EchoHandler());
  const raw = new RawPeer(await connect(listener.address));
  raw.sendBody('c1');
  t.is((await raw.next()).error.code, 'bad_frame');
  raw.send({ id: 1, op: 'hello', version: 1, role: 'control', token: CONTROL_TOKEN });
  t.is((await raw.next()).ok, true);
  raw.connection.close();
  await listener.close();
});

test('stdio: every op round-trips with a child process serving on its stdin/stdout', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/stdio-server.js', import.meta.url));
  const guest = spawnStdio(process.execPath, [fixture]);
  const control = spawnStdio(process.execPath, [fixture]);
  const exits = [guest, control].map(({ child }) => new Promise((resolve) => child.once('exit', (code) => resolve(code))));
  await roundTripEveryOp(t, guest.connection, control.connection);
  // Closing our end closes the child's stdin; its session ends and the child exits cleanly.
  t.deepEqual(await Promise.all(exits), [0, 0]);
});
