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
import { type ErrorCode, ProtocolError } from './errors.js';

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

// ---------------------------------------------------------------------------------------------
// Integers
// ---------------------------------------------------------------------------------------------

/** An integer in [min, max] (both within ±2^53), delivered as a number. */
export class IntSchema extends Schema<number> {
  readonly expected: string;
  constructor(readonly name: string, readonly min: number, readonly max: number) {
    super();
    this.expected = `${name} (an integer ${min}..${max})`;
  }
  parse(v: unknown): number {
    if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= this.min && v <= this.max) return v;
    } else if (typeof v === 'bigint') {
      if (v >= BigInt(this.min) && v <= BigInt(this.max)) return Number(v);
    }
    return this.fail(v);
  }
}

export const TWO_POW_64 = 1n << 64n;
const TWO_POW_63 = 1n << 63n;
const TWO_POW_32 = 1n << 32n;

/**
 * A 64-bit integer in [min, max), delivered as a bigint. On the wire a value that fits a
 * 32-bit format is packed as a number (shortest form), anything else as a bigint.
 */
export class BigIntSchema extends Schema<bigint> {
  constructor(readonly expected: string, readonly min: bigint, readonly limit: bigint) {
    super();
  }
  parse(v: unknown): bigint {
    if (typeof v === 'bigint') {
      if (v >= this.min && v < this.limit) return v;
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      const b = BigInt(v);
      if (b >= this.min && b < this.limit) return b;
    }
    return this.fail(v);
  }
  override wire(v: unknown): unknown {
    return integerToWire(this.parse(v));
  }
}

/** Shortest-form packing: msgpackr packs a number in 1–5 bytes, a bigint always in 9. */
export function integerToWire(b: bigint): number | bigint {
  return b >= -0x8000_0000n && b < TWO_POW_32 ? Number(b) : b;
}

export const u8 = new IntSchema('u8', 0, 0xff);
export const u16 = new IntSchema('u16', 0, 0xffff);
export const u32 = new IntSchema('u32', 0, 0xffff_ffff);
export const i32 = new IntSchema('i32', -0x8000_0000, 0x7fff_ffff);
export const u64 = new BigIntSchema('u64 (an integer 0..2^64-1)', 0n, TWO_POW_64);
export const i64OrU64 = new BigIntSchema('an integer -2^63..2^64-1', -TWO_POW_63, TWO_POW_64);
export const int = (min: number, max: number): IntSchema => new IntSchema('an integer', min, max);
export const uint = (max: number): IntSchema => int(0, max);

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

export class BoolSchema extends Schema<boolean> {
  readonly expected = 'a bool';
  parse(v: unknown): boolean {
    return typeof v === 'boolean' ? v : this.fail(v);
  }
}
export const bool = new BoolSchema();

/** Measures a string in UTF-8 bytes, as a C peer would. */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s, 'utf8');
  }
  return s.length;
}

export class StringSchema extends Schema<string> {
  readonly expected: string;
  constructor(readonly min: number, readonly max: number, readonly pattern?: RegExp, patternName?: string) {
    super();
    this.expected = `a string of ${min}..${max} bytes${patternName ? ` (${patternName})` : ''}`;
  }
  parse(v: unknown): string {
    if (typeof v !== 'string') return this.fail(v);
    const n = utf8Length(v);
    if (n < this.min || n > this.max) throw new SchemaIssue(`expected ${this.expected}, got a string of ${n} bytes`);
    if (this.pattern && !this.pattern.test(v)) return this.fail(v);
    return v;
  }
}
export const string = (min: number, max: number, pattern?: RegExp, patternName?: string): StringSchema =>
  new StringSchema(min, max, pattern, patternName);

/** Bytes. Always delivered as a plain Uint8Array that owns its memory (never a view into a frame). */
export class BinSchema extends Schema<Uint8Array> {
  readonly expected: string;
  constructor(readonly min: number, readonly max: number) {
    super();
    this.expected = `bin of ${min}..${max} bytes`;
  }
  parse(v: unknown): Uint8Array {
    if (!(v instanceof Uint8Array)) return this.fail(v);
    if (v.length < this.min || v.length > this.max) return this.fail(v);
    return v.constructor === Uint8Array && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength
      ? v
      : new Uint8Array(v);
  }
  override wire(v: unknown): unknown {
    if (!(v instanceof Uint8Array)) return this.fail(v);
    if (v.length < this.min || v.length > this.max) return this.fail(v);
    return v;
  }
}
export const bin = (min: number, max: number): BinSchema => new BinSchema(min, max);

/** One of a fixed set of strings or small integers. */
export class EnumSchema<T extends string | number> extends Schema<T> {
  readonly expected: string;
  constructor(readonly values: readonly T[]) {
    super();
    this.expected = `one of ${values.map((x) => JSON.stringify(x)).join(', ')}`;
  }
  parse(v: unknown): T {
    const x = typeof v === 'bigint' && v >= -0x8000_0000n && v <= 0xffff_ffffn ? Number(v) : v;
    for (const allowed of this.values) if (x === allowed) return allowed;
    return this.fail(v);
  }
}
export const oneOf = <const T extends string | number>(values: readonly T[]): EnumSchema<T> => new EnumSchema(values);
export const literal = <const T extends string | number>(value: T): EnumSchema<T> => new EnumSchema([value]);

export class NullableSchema<T> extends Schema<T | null> {
  readonly expected: string;
  constructor(readonly inner: Schema<T>) {
    super();
    this.expected = `nil or ${inner.expected}`;
  }
  parse(v: unknown): T | null {
    return v === null ? null : this.inner.parse(v);
  }
  override wire(v: unknown): unknown {
    return v === null ? null : this.inner.wire(v);
  }
}
export const nullable = <T>(inner: Schema<T>): NullableSchema<T> => new NullableSchema(inner);

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

export class ArraySchema<T> extends Schema<T[]> {
  readonly expected: string;
  constructor(readonly item: Schema<T>, readonly min: number, readonly max: number) {
    super();
    this.expected = `an array of ${min}..${max} items`;
  }
  parse(v: unknown): T[] {
    return this.walk(v, false) as T[];
  }
  override wire(v: unknown): unknown {
    return this.walk(v, true);
  }
  private walk(v: unknown, toWire: boolean): unknown[] {
    if (!Array.isArray(v) || v.length < this.min || v.length > this.max) return this.fail(v);
    const out = new Array<unknown>(v.length);
    let i = 0;
    try {
      for (; i < v.length; i++) out[i] = toWire ? this.item.wire(v[i]) : this.item.parse(v[i]);
    } catch (e) {
      if (e instanceof SchemaIssue) e.segments.unshift(i);
      throw e;
    }
    return out;
  }
}
export const array = <T>(item: Schema<T>, min: number, max: number): ArraySchema<T> => new ArraySchema(item, min, max);

/** Marks an object field as optional. */
export class Optional<T> {
  readonly optional = true;
  constructor(readonly schema: Schema<T>) {}
}
export const optional = <T>(schema: Schema<T>): Optional<T> => new Optional(schema);

export type FieldSpec = Schema<any> | Optional<any>;
export type Fields = Record<string, FieldSpec>;
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectType<F extends Fields> = Simplify<
  { [K in keyof F as F[K] extends Optional<any> ? never : K]: Infer<F[K]> } & {
    [K in keyof F as F[K] extends Optional<any> ? K : never]?: F[K] extends Optional<infer T> ? T : never;
  }
>;

export interface ObjectOptions<T> {
  /** A rule across fields; returns the issue (with its path) or nothing. */
  check?: (value: T) => SchemaIssue | undefined;
}

const NO_KEYS: ReadonlySet<string> = new Set();

/** A map with exactly the declared keys: a missing required key or any other key is an error. */
export class ObjectSchema<F extends Fields, T = ObjectType<F>> extends Schema<T> {
  readonly expected = 'a map';
  readonly keys: readonly string[];
  private readonly specs: readonly { key: string; schema: Schema<unknown>; optional: boolean }[];

  constructor(readonly fields: F, readonly options: ObjectOptions<T> = {}) {
    super();
    this.keys = Object.keys(fields);
    this.specs = this.keys.map((key) => {
      const f = fields[key]!;
      return f instanceof Optional
        ? { key, schema: f.schema, optional: true }
        : { key, schema: f as Schema<unknown>, optional: false };
    });
  }

  parse(v: unknown): T {
    return this.walk(v, false, NO_KEYS) as T;
  }
  override wire(v: unknown): unknown {
    return this.walk(v, true, NO_KEYS);
  }
  /** Parses a map that also holds envelope keys (`id`, `op`) which belong to someone else. */
  parseSkipping(v: unknown, skip: ReadonlySet<string>): T {
    return this.walk(v, false, skip) as T;
  }
  /** wire() for a map that also holds envelope keys; they are left out of the result. */
  wireSkipping(v: unknown, skip: ReadonlySet<string>): unknown {
    return this.walk(v, true, skip);
  }

  private walk(v: unknown, toWire: boolean, skip: ReadonlySet<string>): Record<string, unknown> {
    if (!isMap(v)) return this.fail(v);
    const out: Record<string, unknown> = {};
    let present = 0;
    let key: string | undefined;
    try {
      for (const spec of this.specs) {
        key = spec.key;
        const x = Object.hasOwn(v, key) ? v[key] : undefined;
        if (x === undefined) {
          if (!spec.optional) throw new SchemaIssue('required field is missing');
          continue;
        }
        present++;
        out[key] = toWire ? spec.schema.wire(x) : spec.schema.parse(x);
      }
      key = undefined;
      const own = Object.keys(v);
      if (own.length > present) {
        for (const k of own) {
          if (Object.hasOwn(this.fields, k) || skip.has(k) || v[k] === undefined) continue;
          key = k;
          throw new SchemaIssue('unknown field');
        }
      }
    } catch (e) {
      if (e instanceof SchemaIssue && key !== undefined) e.segments.unshift(key);
      throw e;
    }
    if (this.options.check) {
      const issue = this.options.check(out as T);
      if (issue) throw issue;
    }
    return out;
  }
}

export const object = <F extends Fields>(fields: F, options?: ObjectOptions<ObjectType<F>>): ObjectSchema<F> =>
  new ObjectSchema(fields, options);

/** An open map: keys named by `key`, values of one schema, at most `max` entries. */
export class RecordSchema<V> extends Schema<Record<string, V>> {
  readonly expected: string;
  constructor(readonly key: StringSchema, readonly value: Schema<V>, readonly max: number) {
    super();
    this.expected = `a map of at most ${max} entries`;
  }
  parse(v: unknown): Record<string, V> {
    return this.walk(v, false) as Record<string, V>;
  }
  override wire(v: unknown): unknown {
    return this.walk(v, true);
  }
  private walk(v: unknown, toWire: boolean): Record<string, unknown> {
    if (!isMap(v)) return this.fail(v);
    const own = Object.keys(v);
    if (own.length > this.max) return this.fail(v);
    const out: Record<string, unknown> = {};
    let key: string | undefined;
    try {
      for (key of own) {
        this.key.parse(key);
        out[key] = toWire ? this.value.wire(v[key]) : this.value.parse(v[key]);
      }
    } catch (e) {
      if (e instanceof SchemaIssue && key !== undefined) e.segments.unshift(key);
      throw e;
    }
    return out;
  }
}
export const record = <V>(key: StringSchema, value: Schema<V>, max: number): RecordSchema<V> =>
  new RecordSchema(key, value, max);

/** The same map with every field optional (for "only the given fields change" requests). */
export function partial<F extends Fields>(
  schema: ObjectSchema<F>,
): ObjectSchema<{ [K in keyof F]: Optional<F[K] extends Optional<infer T> ? T : Infer<F[K]>> }> {
  const fields: Record<string, Optional<unknown>> = {};
  for (const [k, f] of Object.entries(schema.fields)) fields[k] = f instanceof Optional ? f : optional(f as Schema<unknown>);
  return new ObjectSchema(fields) as never;
}

/** An issue at a named field, for `check` rules. */
export function issueAt(key: string, message: string): SchemaIssue {
  const issue = new SchemaIssue(message);
  issue.segments.push(key);
  return issue;
}

/** A scalar in an open map (event fields, stats extras): an integer, a string or a bool. */
export class ScalarSchema extends Schema<bigint | string | boolean> {
  readonly expected = 'an integer -2^63..2^64-1, a string of up to 1024 bytes or a bool';
  private readonly str = string(0, 1024);
  parse(v: unknown): bigint | string | boolean {
    if (typeof v === 'string') return this.str.parse(v);
    if (typeof v === 'boolean') return v;
    if (typeof v === 'number' || typeof v === 'bigint') {
      try {
        return i64OrU64.parse(v);
      } catch {
        return this.fail(v);
      }
    }
    return this.fail(v);
  }
  override wire(v: unknown): unknown {
    const x = this.parse(v);
    return typeof x === 'bigint' ? integerToWire(x) : x;
  }
}
export const scalar = new ScalarSchema();
