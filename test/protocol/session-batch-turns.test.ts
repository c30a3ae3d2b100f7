/**
 * A long batch gives other clients their turn between its ops (issue 9, finding 2), and its ops
 * share the scope the handler made for the request (the VMM's allowance).
 */
import test from 'ava';
import { ClientSession } from '../../protocol/client-session.js';
import { ServerSession, type Pacing, type SessionHandler } from '../../protocol/server-session.js';
import { createMemoryPair } from '../../protocol/transports/memory.js';
import { sampleHelloReply } from './echo-handler.js';

const OP_MS = 3;

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end);
}

/** A pacer as the VMM's: due after `slice` ms since the start or the last turn. */
function pacing(slice: number): Pacing & { rests: number } {
  let sliceStart = 0;
  const p = {
    rests: 0,
    due: (start: number) => performance.now() - Math.max(start, sliceStart) >= slice,
    rest: () => new Promise<void>((resolve) => setImmediate(() => {
      p.rests++;
      sliceStart = performance.now();
      resolve();
    })),
  };
  return p;
}

async function client(handler: SessionHandler, pace?: Pacing): Promise<ClientSession> {
  const [a, b] = createMemoryPair();
  new ServerSession(b, handler, pace === undefined ? {} : { pace });
  const c = new ClientSession(a);
  await c.hello({ role: 'guest' });
  return c;
}

// Serial: each test keeps the event loop busy on purpose, which would skew the other's order.
test.serial('between the ops of a long batch, another connection is answered; the batch\'s ops share one scope', async (t) => {
  const scopes: unknown[] = [];
  const made: boolean[] = [];
  const handler: SessionHandler = {
    hello: () => sampleHelloReply(),
    scope: (_s, batch) => {
      made.push(batch);
      return { batch };
    },
    request: (_s, r, scope) => {
      scopes.push(scope);
      if (r.op === 'clts') busy(OP_MS);
      return { exits: [] };
    },
  };
  const pace = pacing(10);
  const hostile = await client(handler, pace);
  const bystander = await client(handler, pace);
  const ops = Array.from({ length: 100 }, () => ({ op: 'clts' as const }));
  let batchDone = 0;
  const batch = hostile.request('batch', { ops }).then((r) => {
    batchDone = performance.now();
    return r;
  });
  await new Promise((resolve) => setTimeout(resolve, 15));
  const asked = performance.now();
  await bystander.request('lmsw', { value: 1 });
  const answered = performance.now();
  const result = await batch;
  t.is(result.results.length, 100);
  t.true(answered < batchDone, 'the bystander was answered before the batch ended');
  t.log(`answered in ${(answered - asked).toFixed(1)} ms while a ${100 * OP_MS} ms batch ran`);
  t.true(pace.rests >= 2);
  const batchScopes = scopes.filter((s) => (s as { batch: boolean }).batch);
  t.is(batchScopes.length, 100);
  t.true(batchScopes.every((s) => s === batchScopes[0]), 'one scope for the whole batch');
  t.deepEqual(made.sort(), [false, true]);
});

test.serial('without pacing, the session runs a batch in one go (the VMM always paces; this is the contrast)', async (t) => {
  const handler: SessionHandler = { hello: () => sampleHelloReply(), request: () => (busy(OP_MS), { exits: [] }) };
  const hostile = await client(handler);
  const bystander = await client(handler);
  let batchDone = 0;
  const batch = hostile.request('batch', { ops: Array.from({ length: 40 }, () => ({ op: 'clts' as const })) }).then(() => (batchDone = performance.now()));
  await new Promise((resolve) => setImmediate(resolve));
  await new Promise((resolve) => setImmediate(resolve));
  await bystander.request('lmsw', { value: 1 });
  const answered = performance.now();
  await batch;
  t.true(answered >= batchDone);
});
