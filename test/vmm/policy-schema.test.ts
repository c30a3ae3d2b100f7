import test from 'ava';
import { Ajv } from 'ajv';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CR0_BIT_NAMES, CR4_BIT_NAMES, GUEST_CPUID_FEATURES, loadPolicyFile, POLICY_SCHEMA,
} from '../../host/vmm/policy/index.js';

type SchemaNode = {
  description?: string;
  properties?: Record<string, SchemaNode>;
  definitions?: Record<string, SchemaNode>;
  items?: SchemaNode;
  additionalProperties?: SchemaNode | boolean;
  $ref?: string;
  enum?: unknown[];
};
const schema = POLICY_SCHEMA as SchemaNode;

test('the schema is valid draft-07 under ajv strict mode, with nothing logged', (t) => {
  const logged: unknown[] = [];
  const logger = { log: (m: unknown) => logged.push(m), warn: (m: unknown) => logged.push(m), error: (m: unknown) => logged.push(m) };
  const ajv = new Ajv({ strict: true, allowUnionTypes: true, logger });
  ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
  t.true(ajv.validateSchema(POLICY_SCHEMA) as boolean, JSON.stringify(ajv.errors));
  t.notThrows(() => ajv.compile(POLICY_SCHEMA));
  t.deepEqual(logged, []);
  t.is((POLICY_SCHEMA as { $schema: string }).$schema, 'http://json-schema.org/draft-07/schema#');
});

test('every field of the format is documented in the schema', (t) => {
  const undocumented: string[] = [];
  const visit = (node: SchemaNode, path: string) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      if (child.description === undefined) undocumented.push(`${path}/${name}`);
      visit(child, `${path}/${name}`);
    }
    if (typeof node.items === 'object') visit(node.items, `${path}/items`);
  };
  visit(schema, '');
  for (const [name, def] of Object.entries(schema.definitions ?? {})) visit(def, `#/definitions/${name}`);
  t.deepEqual(undocumented, []);
});

test('the schema and the code agree on CR bit names and guest CPUID features', (t) => {
  const defs = schema.definitions!;
  t.deepEqual([...(defs.cr0Value!.items!.enum as string[])].sort(), Object.keys(CR0_BIT_NAMES).sort());
  t.deepEqual([...(defs.cr4Value!.items!.enum as string[])].sort(), Object.keys(CR4_BIT_NAMES).sort());
  t.deepEqual(Object.keys(schema.properties!.guestCpuid!.properties!).sort(), [...GUEST_CPUID_FEATURES].sort());
});

test('package.json ships the schema as pinbox/schema/policy.json', (t) => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, string>; files: string[] };
  const target = pkg.exports['./schema/policy.json'];
  t.is(target, './host/vmm/schema/policy.schema.json');
  t.true(pkg.files.some((f) => target!.startsWith('./' + f)));
  t.deepEqual(JSON.parse(readFileSync(target!, 'utf8')), POLICY_SCHEMA);
});

test('the example policies in test/fixtures/policies are valid', (t) => {
  const dir = 'test/fixtures/policies';
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  t.true(files.length >= 2);
  for (const f of files) t.notThrows(() => loadPolicyFile(join(dir, f)), f);
});
