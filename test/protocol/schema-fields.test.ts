/**
 * The two ways a map's declared fields are walked (protocol/schema/object-fields.ts): the table
 * walk a fresh schema uses and the generated walk a long-lived one switches to. Both must give
 * what PROTOCOL.md §2 and §4.1 ask for — keys in declaration order, absent optionals left out,
 * exactly the listed fields (a missing or unknown one named by its path), u64 values below 2^32
 * sent as numbers and larger ones as bigints — and the same issue for the same input.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  type Fields, type FieldsWalk, ObjectSchema, SchemaIssue, array, bin, compileFields, object, optional, u32, u64, walkFields,
} from '../../protocol/schema/index.js';

const NO_KEYS: ReadonlySet<string> = new Set();
const OP_KEY: ReadonlySet<string> = new Set(['op']);

const entry = object({ index: u32, value: u64 });
const FIELDS: Fields = {
  index: u32,
  value: optional(u64),
  'odd "key"\\': optional(u32),
  entries: optional(array(entry, 0, 4)),
  code: optional(bin(0, 4)),
};

interface Walks {
  parse: FieldsWalk;
  wire: FieldsWalk;
}

const table: Walks = {
  parse: (v, skip) => walkFields(FIELDS, v, false, skip),
  wire: (v, skip) => walkFields(FIELDS, v, true, skip),
};
const generated = compileFields(FIELDS);

const walks: [string, Walks][] = [['table walk', table], ['generated walk', generated!]];

function issue(t: import('ava').ExecutionContext, f: () => unknown): SchemaIssue {
  return t.throws(f, { instanceOf: SchemaIssue });
}

test('code generation is available here (the generated walk is what these tests check)', (t) => {
  t.not(generated, undefined);
});

for (const [name, w] of walks) {
  test(`${name}: fields come out in declaration order, absent optionals left out`, (t) => {
    const got = w.parse({ entries: [], value: 5, index: 1 }, NO_KEYS);
    t.deepEqual(Object.keys(got), ['index', 'value', 'entries']);
    t.deepEqual(got, { index: 1, value: 5n, entries: [] });
    t.deepEqual(Object.keys(w.parse({ index: 1 }, NO_KEYS)), ['index']);
  });

  test(`${name}: wire form: u64 below 2^32 as a number, at or above it as a bigint`, (t) => {
    t.deepEqual(w.wire({ index: 1, value: 0xffff_ffffn }, NO_KEYS), { index: 1, value: 0xffff_ffff });
    t.deepEqual(w.wire({ index: 1, value: 1n << 32n }, NO_KEYS), { index: 1, value: 1n << 32n });
    t.deepEqual(w.parse({ index: 1, value: 7 }, NO_KEYS), { index: 1, value: 7n });
  });

  test(`${name}: a missing required field is named`, (t) => {
    const e = issue(t, () => w.parse({ value: 1 }, NO_KEYS));
    t.is(e.message, 'required field is missing');
    t.is(e.path, 'index');
  });

  test(`${name}: a field holding undefined counts as absent`, (t) => {
    t.deepEqual(w.wire({ index: 2, value: undefined, code: undefined }, NO_KEYS), { index: 2 });
    t.is(issue(t, () => w.parse({ index: undefined }, NO_KEYS)).path, 'index');
  });

  test(`${name}: a value inherited from a prototype is not a field`, (t) => {
    const inherited = Object.create({ index: 3 }) as Record<string, unknown>;
    t.is(issue(t, () => w.parse(inherited, NO_KEYS)).path, 'index');
    const withOwn = Object.assign(Object.create({ value: 9n, bogus: 1 }) as Record<string, unknown>, { index: 3 });
    t.deepEqual(w.parse(withOwn, NO_KEYS), { index: 3 });
  });

  test(`${name}: an unknown field is named, after the declared ones were checked`, (t) => {
    const e = issue(t, () => w.parse({ index: 1, colour: 'red' }, NO_KEYS));
    t.is(e.message, 'unknown field');
    t.is(e.path, 'colour');
    t.is(issue(t, () => w.parse({ colour: 'red' }, NO_KEYS)).path, 'index');
    t.is(issue(t, () => w.parse({ index: 1, 'odd "key"': 1 }, NO_KEYS)).path, '["odd \\"key\\""]');
    t.is(issue(t, () => w.parse({ index: 1, 7: 1 }, NO_KEYS)).path, '["7"]');
    // An unknown key holding undefined is not sent, so it is no error.
    t.deepEqual(w.wire({ index: 1, colour: undefined }, NO_KEYS), { index: 1 });
  });

  test(`${name}: keys that belong to someone else are allowed and left out`, (t) => {
    t.deepEqual(w.parse({ op: 'rdmsr', index: 4 }, OP_KEY), { index: 4 });
    t.deepEqual(w.parse({ index: 4 }, OP_KEY), { index: 4 });
    t.is(issue(t, () => w.parse({ id: 1, index: 4 }, OP_KEY)).path, 'id');
  });

  test(`${name}: an issue inside a field has the field's path in front of its own`, (t) => {
    const e = issue(t, () => w.parse({ index: 1, entries: [{ index: 1, value: 1 }, { index: 2, value: -1 }] }, NO_KEYS));
    t.is(e.path, 'entries[1].value');
    t.regex(e.message, /^expected u64 .*got -1$/);
    t.is(issue(t, () => w.parse({ index: 1, 'odd "key"\\': -1 }, NO_KEYS)).path, '["odd \\"key\\"\\\\"]');
    t.is(issue(t, () => w.wire({ index: 0x1_0000_0000 }, NO_KEYS)).path, 'index');
  });
}

test('both walks give the same value or the same issue for the same input', (t) => {
  const inputs: Record<string, unknown>[] = [
    {}, { index: 1 }, { index: -1 }, { index: 1, value: 2n ** 64n }, { index: 1, extra: 1 }, { index: 1, op: 'x' },
    { index: 1, entries: [{ index: 1 }] }, { index: 1, code: new Uint8Array(5) }, { index: 1, code: new Uint8Array(2) },
  ];
  const outcome = (f: () => unknown): unknown => {
    try {
      return { value: f() };
    } catch (e) {
      return e instanceof SchemaIssue ? { message: e.message, path: e.path } : e;
    }
  };
  for (const v of inputs) {
    for (const dir of ['parse', 'wire'] as const) {
      for (const skip of [NO_KEYS, OP_KEY]) {
        t.deepEqual(outcome(() => generated![dir](v, skip)), outcome(() => table[dir](v, skip)), JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : x)));
      }
    }
  }
});

test('an ObjectSchema answers the same before and after it switches to the generated walk, check included', (t) => {
  const schema = new ObjectSchema({ a: u32, b: optional(u32) }, {
    check: (r) => (r.b !== undefined && r.b < r.a ? Object.assign(new SchemaIssue('below a'), { segments: ['b'] }) : undefined),
  });
  const seen = new Set<string>();
  for (let i = 0; i < 40; i++) {
    seen.add(JSON.stringify([
      schema.parse({ a: 1, b: 2 }),
      schema.wire({ a: 1 }),
      t.throws(() => schema.parse({ a: 2, b: 1 }), { instanceOf: SchemaIssue }).path,
      t.throws(() => schema.parse({ a: 2, c: 1 }), { instanceOf: SchemaIssue }).path,
    ]));
  }
  t.deepEqual([...seen], [JSON.stringify([{ a: 1, b: 2 }, { a: 1 }, 'b', 'c'])]);
});

test('where code generation is disallowed, schemas keep the table walk and still validate', (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/walk-without-eval.js', import.meta.url));
  const run = spawnSync(process.execPath, ['--disallow-code-generation-from-strings', fixture], { encoding: 'utf8' });
  t.is(run.status, 0, run.stderr);
  t.deepEqual(JSON.parse(run.stdout), { compiled: false, value: { index: 1 }, path: 'index', unknown: 'x' });
});
