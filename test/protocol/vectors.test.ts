import test from 'ava';
import { FrameReader, ProtocolError, frameBody } from '../../protocol/index.js';
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.js';
import {
  errorResponseToWire, parseOutcome, parseRequestEnvelope, parseRequestParams, parseServerMessage, parseUnmatchedError,
  pushToWire, requestToWire, resultResponseToWire,
} from '../../protocol/envelope.js';
import { ERROR_CODES } from '../../protocol/errors.js';
import { OPS, type Op, opSpec } from '../../protocol/messages/index.js';
import { type Vector, readProtocolMd, readVectors } from './vectors.js';

const markdown = readProtocolMd();
const vectors = readVectors(markdown);
const byName = new Map(vectors.map((v) => [v.name, v]));

function splitRequest(v: Record<string, unknown>): { id: number; op: Op; params: Record<string, unknown> } {
  const { id, op, ...params } = v;
  return { id: id as number, op: op as Op, params };
}

function paramsOf(name: string | undefined): { op: Op; params: Record<string, unknown> } {
  const request = byName.get(name ?? '');
  if (!request) throw new Error(`vector ${name} not found`);
  return splitRequest(request.value);
}

/** Frame bytes → the one body inside, through the same reader a session uses. */
function unframe(bytes: Uint8Array): Uint8Array {
  const bodies: Uint8Array[] = [];
  const reader = new FrameReader({ frame: (b) => bodies.push(b.slice()), error: (e) => { throw e; } });
  reader.push(bytes);
  if (bodies.length !== 1 || reader.bufferedBytes !== 0) throw new Error(`expected exactly one frame, got ${bodies.length}`);
  return bodies[0]!;
}

function decodeVector(v: Vector): Record<string, unknown> {
  const value = decodeMsgpack(unframe(v.bytes));
  if (v.kind === 'request') {
    const envelope = parseRequestEnvelope(value);
    return { id: envelope.id, op: envelope.op, ...(parseRequestParams(envelope) as object) };
  }
  const message = parseServerMessage(value);
  if (message.kind === 'push') return { sub: message.sub, event: message.event };
  if (message.id === null) return { id: null, ok: false, error: parseUnmatchedError(message.body) };
  const request = v.answers ? paramsOf(v.answers) : { op: 'hello' as Op, params: {} };
  return { id: message.id, ...parseOutcome(OPS[request.op], request.params as never, message.body) };
}

function encodeVector(v: Vector): Uint8Array {
  const value = v.value;
  let wire: unknown;
  if (v.kind === 'request') {
    const { id, op, params } = splitRequest(value);
    wire = requestToWire(id, op, params as never);
  } else if (v.kind === 'push') {
    wire = pushToWire(value.sub as number, value.event as never);
  } else if (value.ok === false) {
    const e = value.error as { code: string; message: string; path?: string; errno?: string };
    wire = errorResponseToWire(value.id as number | null, new ProtocolError(e.code, e.message, e));
  } else {
    const request = paramsOf(v.answers);
    wire = resultResponseToWire(value.id as number, opSpec(request.op)!.resultFor(request.params).wire(value.result));
  }
  return frameBody(encodeMsgpack(wire));
}

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex').replace(/(..)/g, '$1 ').trim();

test('PROTOCOL.md carries the test vectors (every kind, both directions)', (t) => {
  t.true(vectors.length >= 14);
  t.deepEqual(new Set(vectors.map((v) => v.kind)), new Set(['request', 'response', 'push']));
  t.is(new Set(vectors.map((v) => v.name)).size, vectors.length, 'vector names are unique');
  for (const v of vectors) {
    const announced = new DataView(v.bytes.buffer).getUint32(0);
    t.is(announced, v.bytes.length - 4, `${v.name}: the length prefix matches the body`);
  }
});

for (const v of vectors) {
  test(`vector ${v.name}: bytes decode to the value`, (t) => {
    t.deepEqual(decodeVector(v), v.value);
  });
  if (v.encode) {
    test(`vector ${v.name}: the value encodes to the bytes`, (t) => {
      t.is(hex(encodeVector(v)), hex(v.bytes));
    });
  }
}

test('PROTOCOL.md §7 lists exactly the error codes of errors.ts', (t) => {
  const section = markdown.slice(markdown.indexOf('## 7. Error codes'), markdown.indexOf('## 8. Limits'));
  const onWire = [...section.matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!);
  const localParagraph = section.slice(section.indexOf('Two more codes'));
  const local = [...localParagraph.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!);
  t.deepEqual(local.sort(), ['bad_url', 'connection_closed']);
  const documented = new Set([...onWire, ...local]);
  t.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});
