/** Scalar schemas: bools, strings, binaries, enumerations, nil-or-something, open-map scalars. */
import { Schema, SchemaIssue } from './base.js';
import { i64OrU64, integerToWire } from './integers.js';

export class BoolSchema extends Schema<boolean> {
  readonly expected = 'a bool';
  parse(v: unknown): boolean {
    return typeof v === 'boolean' ? v : this.fail(v);
  }
}
export const bool = new BoolSchema();

type WellFormed = { isWellFormed(): boolean; toWellFormed(): string };

/**
 * String.prototype.toWellFormed (ES2024; in Node 20's V8, not yet in our TypeScript lib):
 * replaces lone surrogates, which msgpackr would otherwise pack as invalid UTF-8.
 */
export const toWellFormed = (s: string): string => (s as unknown as WellFormed).toWellFormed();

/**
 * A string's length in UTF-8 bytes, as a C peer measures it, or -1 if it holds a lone
 * surrogate (which has no UTF-8 form).
 */
function utf8Length(s: string): number {
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) >= 0x80) {
      return (s as unknown as WellFormed).isWellFormed() ? Buffer.byteLength(s, 'utf8') : -1;
    }
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
    if (n < 0) throw new SchemaIssue(`expected ${this.expected}, got a string with a lone surrogate (not valid Unicode)`);
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
