/**
 * Protocol-layer figures, without a VMM behind them: decoding one request (subset check,
 * unpack, validation), request/response round trips against an answering stub over the
 * in-memory pair and a Unix socket, and batches of 4096 ops over a Unix socket to a stub in the
 * same process (protocol.batch_unix, ops/s: both ends' work per batched op on one core — what a
 * batch costs before any VMM runs). They bound what the VMM's socket figures can reach.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BatchItem, ClientSession, MAX_BATCH_OPS, ServerSession, connect, createMemoryPair, decodeMsgpack, encodeMsgpack,
  parseRequestEnvelope, parseRequestParams, requestToWire, serve, type Connection,
} from '../../protocol/index.js';
import { report, sample } from './report.js';

function perSecond(n: number, body: () => void): number {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) body();
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

const body = encodeMsgpack(requestToWire(7, 'wrmsr', { index: 0xc0000080, value: 0xd01n }));
perSecond(50_000, () => parseRequestParams(parseRequestEnvelope(decodeMsgpack(body))));
report(
  'protocol.decode_request',
  await sample(() => perSecond(200_000, () => parseRequestParams(parseRequestEnvelope(decodeMsgpack(body))))),
  'ops/s',
);

const handler = { hello: () => ({ server: 'bench' }), request: () => ({ value: 0xd01n, exits: [] }) };

async function roundTrips(client: ClientSession, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await client.request('rdmsr', { index: 0x10 });
  return n / (Number(process.hrtime.bigint() - t0) / 1e9);
}

async function greeted(connection: Connection): Promise<ClientSession> {
  const client = new ClientSession(connection);
  await client.hello({ role: 'guest' });
  return client;
}

const [a, b] = createMemoryPair();
new ServerSession(b, handler);
const memoryClient = await greeted(a);
await roundTrips(memoryClient, 2000);
report('protocol.roundtrip_memory', await sample(() => roundTrips(memoryClient, 10_000)), 'req/s');
memoryClient.close();

const dir = mkdtempSync(join(tmpdir(), 'pinbox-bench-'));
const server = await serve(`unix:${join(dir, 'bench.sock')}`, handler);
const unixClient = await greeted(await connect(server.address));
await roundTrips(unixClient, 2000);
report('protocol.roundtrip_unix', await sample(() => roundTrips(unixClient, 10_000)), 'req/s');

const ops: BatchItem[] = Array.from({ length: MAX_BATCH_OPS }, () => ({ op: 'rdmsr', index: 0x10 }));
async function batchedOps(client: ClientSession, batches: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < batches; i++) {
    const { results } = await client.request('batch', { ops });
    if (results.length !== ops.length || !results[0]!.ok) throw new Error('the stub did not answer every op');
  }
  return (batches * ops.length) / (Number(process.hrtime.bigint() - t0) / 1e9);
}
await batchedOps(unixClient, 20);
report('protocol.batch_unix', await sample(() => batchedOps(unixClient, 60)), 'ops/s');
unixClient.close();
await server.close();
rmSync(dir, { recursive: true, force: true });
