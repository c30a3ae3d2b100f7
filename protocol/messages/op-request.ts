/** A request as `{ op, ...params }` against a table of ops: how batch carries its items. */
import { Schema, SchemaIssue, describeValue, isMap, issueAt } from '../schema/index.js';
import type { OpSpec, ParamsOfSpec } from './op.js';

export type OpRequest<T extends Record<string, OpSpec>> = {
  [K in keyof T & string]: { op: K } & ParamsOfSpec<T[K]>;
}[keyof T & string];

const OP_KEY: ReadonlySet<string> = new Set(['op']);

export class OpRequestSchema<T extends Record<string, OpSpec>> extends Schema<OpRequest<T>> {
  readonly expected = 'a map with an op and its parameters';

  constructor(private readonly ops: T, private readonly what: string) {
    super();
  }

  spec(op: string): OpSpec | undefined {
    return Object.hasOwn(this.ops, op) ? this.ops[op] : undefined;
  }

  parse(v: unknown): OpRequest<T> {
    const { op, spec } = this.lookup(v);
    return { op, ...spec.params.parseSkipping(v, OP_KEY) } as OpRequest<T>;
  }
  override wire(v: unknown): unknown {
    const { op, spec } = this.lookup(v);
    return { op, ...(spec.params.wireSkipping(v, OP_KEY) as object) };
  }

  private lookup(v: unknown): { op: string; spec: OpSpec } {
    if (!isMap(v)) return this.fail(v);
    const op = v.op;
    if (typeof op !== 'string') throw issueAt('op', `expected an op name, got ${describeValue(op)}`);
    const spec = this.spec(op);
    if (!spec) {
      const issue = new SchemaIssue(`unknown op ${JSON.stringify(op)} (${this.what})`, 'unknown_op');
      issue.segments.push('op');
      throw issue;
    }
    return { op, spec };
  }
}
