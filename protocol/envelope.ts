/**
 * The three top-level messages (PROTOCOL.md §4) and their conversion to and from wire values:
 *
 *   request   client → server   { id, op, ...params }
 *   response  server → client   { id, ok: true, result } | { id, ok: false, error }
 *   push      server → client   { sub, event }
 *
 * Everything here validates: received values are parsed by the op's schemas, and values about to
 * be sent go through the same schemas' `wire()`, so neither side ever sends what it would reject.
 */
import { ERRNO_NAME_PATTERN, type ErrorCode, ProtocolError, RemoteError } from './errors.js';
import { type ErrorBody, type Event, errorBody, event } from './messages/common.js';
import { type Op, type ParamsOf, type ResultOf, opSpec } from './messages/index.js';
import type { OpSpec } from './messages/op.js';
import { outcomeSchemaFor, type Outcome } from './messages/outcome.js';
import { SchemaIssue, bool, describeValue, isMap, nullable, object, toWellFormed, u32 } from './schema/index.js';
import { PROTOCOL_VERSION } from './version.js';

const ENVELOPE_KEYS: ReadonlySet<string> = new Set(['id', 'op']);
const RESPONSE_KEYS: ReadonlySet<string> = new Set(['id']);

/** Runs a schema step; a SchemaIssue becomes the ProtocolError a peer receives, its path under `prefix`. */
export function validating<T>(prefix: (string | number)[], step: () => T): T {
  try {
    return step();
  } catch (e) {
    if (e instanceof SchemaIssue) throw e.toProtocolError(prefix);
    throw e;
  }
}

// ---------------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------------

export function requestToWire<O extends Op>(id: number, op: O, params: ParamsOf<O>): Record<string, unknown> {
  const spec = opSpec(op);
  if (!spec) throw new ProtocolError('unknown_op', `unknown op ${JSON.stringify(op)}`);
  const idWire = validating(['id'], () => u32.wire(id));
  const body = validating([], () => spec.params.wire(params ?? {})) as Record<string, unknown>;
  return { id: idWire, op, ...body };
}

/** The id of a received request if it has a usable one (so an error can be matched to it), else null. */
export function requestIdOf(v: unknown): number | null {
  if (!isMap(v) || !Object.hasOwn(v, 'id')) return null;
  try {
    return u32.parse(v.id);
  } catch {
    return null;
  }
}

export interface RequestEnvelope {
  id: number;
  op: Op;
  spec: OpSpec;
  /** The whole received map; its params are parsed once the session has checked the role. */
  raw: Record<string, unknown>;
}

/** Checks the envelope of a received request: a map with a u32 `id` and a known string `op`. */
export function parseRequestEnvelope(v: unknown): RequestEnvelope {
  if (!isMap(v)) throw new ProtocolError('invalid_message', `a request must be a map, got ${describeValue(v)}`);
  if (!Object.hasOwn(v, 'id')) throw new ProtocolError('invalid_message', 'id: required field is missing', { path: 'id' });
  const id = validating(['id'], () => u32.parse(v.id));
  const op = v.op;
  if (typeof op !== 'string') {
    throw new ProtocolError('invalid_message', `op: expected an op name, got ${describeValue(op)}`, { path: 'op' });
  }
  const spec = opSpec(op);
  if (!spec) throw new ProtocolError('unknown_op', `unknown op ${JSON.stringify(op.slice(0, 64))}`, { path: 'op' });
  return { id, op: op as Op, spec, raw: v };
}

/**
 * Parses the params of a received request. A hello's version is compared before anything else,
 * so that a client of another version learns that, not which of its fields we do not know.
 */
export function parseRequestParams(envelope: RequestEnvelope): unknown {
  if (envelope.op === 'hello') checkHelloVersion(envelope.raw.version);
  return validating([], () => envelope.spec.params.parseSkipping(envelope.raw, ENVELOPE_KEYS));
}

function checkHelloVersion(version: unknown): void {
  const n = typeof version === 'bigint' ? version : typeof version === 'number' && Number.isInteger(version) ? BigInt(version) : undefined;
  if (n !== undefined && n !== BigInt(PROTOCOL_VERSION)) {
    throw new ProtocolError(
      'version_mismatch',
      `client speaks protocol version ${n}, this server speaks version ${PROTOCOL_VERSION}`,
      { path: 'version' },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Responses and pushes
// ---------------------------------------------------------------------------------------------

/** Messages are cut to what the error body allows (4096 bytes: 1360 UTF-16 units never exceed it). */
function boundedMessage(message: string): string {
  return toWellFormed(message.length <= 1360 ? message : `${message.slice(0, 1359)}…`);
}

const ERROR_CODE_PATTERN = /^[a-z][a-z0-9_]{0,63}$/;

/**
 * The error body for an error. A code or errno that could not travel (a handler's typo) must not
 * cost the client its answer: the error becomes `internal`, and a bad errno is left out.
 */
export function errorBodyOf(error: ProtocolError): ErrorBody {
  const codeOk = ERROR_CODE_PATTERN.test(error.code);
  const message = codeOk ? error.message : `internal error: ${JSON.stringify(error.code)} is not an error code (${error.message})`;
  const body: ErrorBody = { code: codeOk ? error.code : 'internal', message: boundedMessage(message) };
  if (error.path !== undefined) body.path = toWellFormed(error.path.slice(0, 340));
  if (error.errno !== undefined && ERRNO_NAME_PATTERN.test(error.errno)) body.errno = error.errno;
  return body;
}

/** The wire form of an error body (a response's, or a batch op's outcome). */
export function errorBodyToWire(error: ProtocolError): unknown {
  return errorBody.wire(errorBodyOf(error));
}

export function errorResponseToWire(id: number | null, error: ProtocolError): Record<string, unknown> {
  return { id, ok: false, error: errorBodyToWire(error) };
}

/** A success response around a result already in wire form (see the op's result schema). */
export function resultResponseToWire(id: number, result: unknown): Record<string, unknown> {
  return { id, ok: true, result };
}

const push = object({ sub: u32, event });

export function pushToWire(sub: number, ev: Event): Record<string, unknown> {
  return validating([], () => push.wire({ sub, event: ev })) as Record<string, unknown>;
}

export type ServerMessage =
  | { kind: 'response'; id: number | null; body: Record<string, unknown> }
  | { kind: 'push'; sub: number; event: Event };

/** Sorts a message from the server into a response (to be matched by id) or a push. */
export function parseServerMessage(v: unknown): ServerMessage {
  if (!isMap(v)) throw new ProtocolError('invalid_message', `a server message must be a map, got ${describeValue(v)}`);
  if (Object.hasOwn(v, 'sub')) {
    const p = validating([], () => push.parse(v));
    return { kind: 'push', sub: p.sub, event: p.event };
  }
  if (!Object.hasOwn(v, 'id')) {
    throw new ProtocolError('invalid_message', 'id: required field is missing (a response has an id, a push a sub)', { path: 'id' });
  }
  const id = v.id === null ? null : validating(['id'], () => u32.parse(v.id));
  return { kind: 'response', id, body: v };
}

/** Parses a response body against the request it answers. */
export function parseOutcome<O extends Op>(spec: OpSpec, params: ParamsOf<O>, body: Record<string, unknown>): Outcome<ResultOf<O>> {
  return validating([], () => outcomeSchemaFor(spec.resultFor(params)).parseSkipping(body, RESPONSE_KEYS)) as Outcome<ResultOf<O>>;
}

const unmatched = object({ id: nullable(u32), ok: bool, error: errorBody });

/** Parses a response that answers no request of ours (id null): it must be an error. */
export function parseUnmatchedError(body: Record<string, unknown>): ErrorBody {
  if (body.ok !== false) {
    throw new ProtocolError('invalid_message', `ok: a response with id nil must be an error, got ${describeValue(body.ok)}`, { path: 'ok' });
  }
  return validating([], () => unmatched.parse(body)).error;
}

/** An error body from the peer as the error a caller receives. */
export function remoteError(error: ErrorBody): RemoteError {
  return new RemoteError(error.code as ErrorCode, error.message, {
    ...(error.path !== undefined ? { path: error.path } : {}),
    ...(error.errno !== undefined ? { errno: error.errno } : {}),
  });
}
