/**
 * Walking the declared fields of a map (ObjectSchema's inner loop), in two forms that give the
 * same values and the same issues:
 *
 * - `walkFields()` reads the field table as data. It allocates nothing up front, which suits a
 *   schema made for one message and used once (a batch result's per-op outcomes).
 * - `compileFields()` writes that loop out for one field table as its own function (the way
 *   ajv compiles JSON Schemas): each field is read by its literal name, so V8 sees one property
 *   access per field instead of one keyed access shared by every schema, and each field's
 *   validator is called from a site of its own. A long-lived schema switches to it after a few
 *   uses. Only the schema's own field names reach the generated text (as JSON string literals);
 *   nothing received does. Where code generation is disallowed
 *   (`--disallow-code-generation-from-strings`) the schema keeps the table walk.
 *
 * Both read a field only if it is the map's own property (a value inherited from a prototype is
 * not on the wire), treat an own field holding `undefined` as absent, and refuse any other own
 * key that holds a value unless it belongs to someone else (`skip`: the envelope's id and op).
 */
import { type Infer, Schema, SchemaIssue } from './base.js';

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

/** A map's declared fields read one way: parse (received → typed) or wire (typed → to pack). */
export type FieldsWalk = (v: Record<string, unknown>, skip: ReadonlySet<string>) => Record<string, unknown>;

const hasOwn = Object.hasOwn;

function missing(): SchemaIssue {
  return new SchemaIssue('required field is missing');
}

/** Adds the field's name to the path of an issue raised inside it. */
function inField(e: unknown, key: string): unknown {
  if (e instanceof SchemaIssue) e.segments.unshift(key);
  return e;
}

/** The first own key of `v` that is neither declared, nor skipped, nor undefined, if any. */
function unknownKey(v: Record<string, unknown>, fields: Fields, skip: ReadonlySet<string>): string | undefined {
  for (const k in v) {
    if (hasOwn(fields, k) || skip.has(k) || !hasOwn(v, k) || v[k] === undefined) continue;
    return k;
  }
  return undefined;
}

function unknownField(key: string): SchemaIssue {
  const issue = new SchemaIssue('unknown field');
  issue.segments.push(key);
  return issue;
}

/** The fields of `v` as `fields` declares them, reading the table as data. */
export function walkFields(fields: Fields, v: Record<string, unknown>, toWire: boolean, skip: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  let present = 0;
  for (const key in fields) {
    const f = fields[key]!;
    const isOptional = f instanceof Optional;
    const x = hasOwn(v, key) ? v[key] : undefined;
    if (x === undefined) {
      if (isOptional) continue;
      throw inField(missing(), key);
    }
    const schema: Schema<unknown> = isOptional ? f.schema : f;
    try {
      out[key] = toWire ? schema.wire(x) : schema.parse(x);
    } catch (e) {
      throw inField(e, key);
    }
    present++;
  }
  // Nothing but the fields just read: no key can be another one (the common case, checked
  // without a lookup per key); otherwise look at each.
  let keys = 0;
  for (const _ in v) keys++;
  if (keys !== present) {
    const other = unknownKey(v, fields, skip);
    if (other !== undefined) throw unknownField(other);
  }
  return out;
}

/** The parse and wire walks of one field table as generated functions, or undefined where code generation is disallowed. */
export function compileFields(fields: Fields): { parse: FieldsWalk; wire: FieldsWalk } | undefined {
  const keys = Object.keys(fields);
  const schemas = keys.map((k) => {
    const f = fields[k]!;
    return f instanceof Optional ? f.schema : (f as Schema<unknown>);
  });
  try {
    return { parse: generate(fields, keys, schemas, 'parse'), wire: generate(fields, keys, schemas, 'wire') };
  } catch (e) {
    if (e instanceof EvalError) return undefined;
    throw e;
  }
}

/**
 * One field-by-field walk: for each field `x = v.name` (own only), a missing required field or
 * an issue inside it is reported under its name, then `out.name = s[i].parse(x)`; then a for-in
 * pass refuses other keys, the declared names matched by a switch.
 */
function generate(fields: Fields, keys: string[], schemas: Schema<unknown>[], method: 'parse' | 'wire'): FieldsWalk {
  const lines: string[] = ['const out = {};', 'let x, at = -1;', 'try {'];
  keys.forEach((key, i) => {
    const name = JSON.stringify(key);
    lines.push(
      `  at = ${i};`,
      `  x = v[${name}];`,
      `  if (x !== undefined && !hasOwn(v, ${name})) x = undefined;`,
      fields[key] instanceof Optional
        ? `  if (x !== undefined) out[${name}] = s${i}.${method}(x);`
        : `  if (x === undefined) throw missing(); out[${name}] = s${i}.${method}(x);`,
    );
  });
  lines.push(
    '} catch (e) { throw inField(e, keys[at]); }',
    'for (const k in v) {',
    keys.length > 0 ? `  switch (k) { ${keys.map((k) => `case ${JSON.stringify(k)}:`).join(' ')} continue; }` : '',
    '  if (skip.has(k) || !hasOwn(v, k) || v[k] === undefined) continue;',
    '  throw unknownField(k);',
    '}',
    'return out;',
  );
  const params = ['hasOwn', 'missing', 'inField', 'unknownField', 'keys', ...schemas.map((_, i) => `s${i}`)];
  const body = `"use strict";\nreturn function walk(v, skip) {\n${lines.join('\n')}\n};`;
  const factory = new Function(...params, body) as (...args: unknown[]) => FieldsWalk;
  return factory(hasOwn, missing, inField, unknownField, keys, ...schemas);
}
