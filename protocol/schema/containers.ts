/** Container schemas: arrays, maps with declared fields, open maps. */
import { type Infer, Schema, SchemaIssue, isMap } from './base.js';
import type { StringSchema } from './scalars.js';

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
