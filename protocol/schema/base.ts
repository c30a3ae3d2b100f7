/**
 * A small declarative validator for protocol messages. Each schema works in two directions:
 *
 * - `parse(v)`: a value decoded from the wire → the typed value. Integers may arrive in any
 *   msgpack integer format (msgpackr gives a number for the 8/16/32-bit formats and a bigint
 *   for the 64-bit ones); `u64` fields always come out as bigint, small integer fields as
 *   number, `bin` fields as a fresh plain Uint8Array.
 * - `wire(v)`: a typed value → the value to pack. It validates exactly as `parse` does (a
 *   handler bug must not reach the wire) and produces the canonical form PROTOCOL.md §2 fixes:
 *   map keys in declaration order, absent optionals left out, u64 values below 2^32 as numbers
 *   (packed in the shortest form) and larger ones as bigint (packed in 9 bytes).
 *
 * Failures throw a SchemaIssue whose path is assembled while the exception unwinds, so the
 * happy path builds no path strings at all.
 */
import { type ErrorCode, ProtocolError } from '../errors.js';

/** A failure inside a schema; `segments` is the path to the offending field. */
export class SchemaIssue extends Error {
  readonly segments: (string | number)[] = [];
  constructor(message: string, readonly code: ErrorCode = 'invalid_message') {
    super(message);
    this.name = 'SchemaIssue';
  }

  get path(): string {
    return formatPath(this.segments);
  }

  /** The issue as the error a peer receives: `ranges[3].bitmap: expected bin of …`. */
  toProtocolError(prefix: (string | number)[] = []): ProtocolError {
    const path = formatPath([...prefix, ...this.segments]);
    return new ProtocolError(this.code, path ? `${path}: ${this.message}` : this.message, path ? { path } : {});
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `["ranges", 3, "bitmap"]` → `ranges[3].bitmap`; odd keys are quoted: `fields["a b"]`. */
export function formatPath(segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) {
    if (typeof s === 'number') out += `[${s}]`;
    else if (IDENTIFIER.test(s)) out += out ? `.${s}` : s;
    else out += `[${JSON.stringify(s)}]`;
  }
  return out;
}

/** How a received value is named in messages: its msgpack type, or the integer itself. */
export function describeValue(v: unknown): string {
  if (v === null) return 'nil';
  if (v === undefined) return 'nothing';
  if (Array.isArray(v)) return `an array of ${v.length}`;
  if (v instanceof Uint8Array) return `bin of ${v.length} bytes`;
  switch (typeof v) {
    case 'string': return v.length > 40 ? `a string of ${v.length} chars` : `string ${JSON.stringify(v)}`;
    case 'number': return Number.isInteger(v) ? `${v}` : `the non-integer ${v}`;
    case 'bigint': return `${v}`;
    case 'boolean': return `${v}`;
    case 'object': return 'a map';
    default: return typeof v;
  }
}

export function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

export abstract class Schema<T> {
  /** Phantom: the typed value this schema produces. */
  declare readonly _type: T;
  /** Names the expected type in messages: "u32 (an integer 0..4294967295)". */
  abstract readonly expected: string;
  abstract parse(v: unknown): T;
  wire(v: unknown): unknown {
    return this.parse(v);
  }
  protected fail(v: unknown): never {
    throw new SchemaIssue(`expected ${this.expected}, got ${describeValue(v)}`);
  }
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** An issue at a named field, for `check` rules. */
export function issueAt(key: string, message: string): SchemaIssue {
  const issue = new SchemaIssue(message);
  issue.segments.push(key);
  return issue;
}
