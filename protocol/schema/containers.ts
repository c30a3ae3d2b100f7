/** Container schemas: arrays, maps with declared fields, open maps. */
import { type Infer, Schema, SchemaIssue, isMap } from './base.js';
import { type Fields, type FieldsWalk, type ObjectType, Optional, compileFields, optional, walkFields } from './object-fields.js';
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
    const item = this.item;
    let i = 0;
    try {
      if (toWire) for (; i < v.length; i++) out[i] = item.wire(v[i]);
      else for (; i < v.length; i++) out[i] = item.parse(v[i]);
    } catch (e) {
      if (e instanceof SchemaIssue) e.segments.unshift(i);
      throw e;
    }
    return out;
  }
}
export const array = <T>(item: Schema<T>, min: number, max: number): ArraySchema<T> => new ArraySchema(item, min, max);

export interface ObjectOptions<T> {
  /** A rule across fields; returns the issue (with its path) or nothing. */
  check?: (value: T) => SchemaIssue | undefined;
}

const NO_KEYS: ReadonlySet<string> = new Set();
const NO_OPTIONS: ObjectOptions<never> = {};
/**
 * Uses after which a schema walks its fields with generated code (object-fields.ts). Schemas
 * made per message (a batch result's outcomes) stay below it and cost no compilation.
 */
const COMPILE_AFTER = 16;

/** A map with exactly the declared keys: a missing required key or any other key is an error. */
export class ObjectSchema<F extends Fields, T = ObjectType<F>> extends Schema<T> {
  readonly expected = 'a map';
  private uses = 0;
  private compiled: { parse: FieldsWalk; wire: FieldsWalk } | undefined;

  constructor(readonly fields: F, readonly options: ObjectOptions<T> = NO_OPTIONS as ObjectOptions<T>) {
    super();
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
    const compiled = this.compiled ?? (++this.uses === COMPILE_AFTER ? (this.compiled = compileFields(this.fields)) : undefined);
    const out = compiled === undefined
      ? walkFields(this.fields, v, toWire, skip)
      : toWire ? compiled.wire(v, skip) : compiled.parse(v, skip);
    const check = this.options.check;
    if (check !== undefined) {
      const issue = check(out as T);
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
