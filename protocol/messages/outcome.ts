/**
 * How one request ends: `{ ok: true, result }` or `{ ok: false, error }` (PROTOCOL.md §4.2).
 * Responses carry it beside their `id`; batch results carry one per batched op.
 */
import { ObjectSchema, Schema, bool, describeValue, isMap, issueAt, object } from '../schema/index.js';
import { type ErrorBody, errorBody } from './common.js';

export type Outcome<R> = { ok: true; result: R } | { ok: false; error: ErrorBody };

const NO_KEYS: ReadonlySet<string> = new Set();
const failure = object({ ok: bool, error: errorBody });

export class OutcomeSchema<R> extends Schema<Outcome<R>> {
  readonly expected = 'a map with ok: true and a result, or ok: false and an error';
  private readonly success: ObjectSchema<any, { ok: boolean; result: R }>;

  constructor(result: Schema<R>) {
    super();
    this.success = object({ ok: bool, result }) as never;
  }

  parse(v: unknown): Outcome<R> {
    return this.parseSkipping(v, NO_KEYS);
  }
  parseSkipping(v: unknown, skip: ReadonlySet<string>): Outcome<R> {
    return this.pick(v).parseSkipping(v, skip) as Outcome<R>;
  }
  override wire(v: unknown): unknown {
    return this.pick(v).wire(v);
  }

  private pick(v: unknown): ObjectSchema<any, any> {
    if (!isMap(v)) return this.fail(v);
    if (v.ok === true) return this.success;
    if (v.ok === false) return failure;
    throw issueAt('ok', `expected true or false, got ${describeValue(v.ok)}`);
  }
}


const outcomeSchemas = new WeakMap<Schema<unknown>, OutcomeSchema<unknown>>();

/**
 * The outcome schema of a result schema, made once per result schema: every op but batch has
 * one result schema, so a batch of 4096 ops reuses a handful instead of building 4096.
 */
export function outcomeSchemaFor(result: Schema<unknown>): OutcomeSchema<unknown> {
  let s = outcomeSchemas.get(result);
  if (!s) outcomeSchemas.set(result, (s = new OutcomeSchema(result)));
  return s;
}
