import test from 'ava';
import { Ajv } from 'ajv';
import { readFileSync } from 'node:fs';
import { SCENARIO_SCHEMA } from '../../host/conform/index.js';
import { POLICY_SCHEMA } from '../../host/vmm/policy/index.js';

type SchemaNode = {
  description?: string;
  properties?: Record<string, SchemaNode | boolean>;
  definitions?: Record<string, SchemaNode>;
  items?: SchemaNode;
  allOf?: { if: SchemaNode; then: SchemaNode }[];
  enum?: unknown[];
  const?: unknown;
  $ref?: string;
  [key: string]: unknown;
};
const scenario = SCENARIO_SCHEMA as SchemaNode;
const policy = POLICY_SCHEMA as SchemaNode;
const defs = scenario.definitions!;

function withoutDescriptions(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withoutDescriptions);
  if (typeof node !== 'object' || node === null) return node;
  return Object.fromEntries(Object.entries(node).filter(([k]) => k !== 'description').map(([k, v]) => [k, withoutDescriptions(v)]));
}

test('the schema is valid draft-07 under ajv strict mode, with nothing logged', (t) => {
  const logged: unknown[] = [];
  const logger = { log: (m: unknown) => logged.push(m), warn: (m: unknown) => logged.push(m), error: (m: unknown) => logged.push(m) };
  const ajv = new Ajv({ strict: true, strictRequired: false, allowUnionTypes: true, logger });
  ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
  t.true(ajv.validateSchema(SCENARIO_SCHEMA) as boolean, JSON.stringify(ajv.errors));
  t.notThrows(() => ajv.compile(SCENARIO_SCHEMA));
  t.deepEqual(logged, []);
  t.is(scenario.$schema, 'http://json-schema.org/draft-07/schema#');
});

test('every field of the format is documented (a field that is a $ref takes its definition\'s description)', (t) => {
  const undocumented: string[] = [];
  const visit = (node: SchemaNode, path: string) => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      if (typeof child === 'boolean') continue; // the per-op lists of guest fields (their fields are documented above them)
      const documented = child.description !== undefined || (child.$ref !== undefined && defs[child.$ref.replace('#/definitions/', '')]?.description !== undefined);
      if (!documented) undocumented.push(`${path}/${name}`);
      visit(child, `${path}/${name}`);
    }
    if (typeof node.items === 'object') visit(node.items, `${path}/items`);
  };
  visit(scenario, '');
  for (const [name, def] of Object.entries(defs)) visit(def, `#/definitions/${name}`);
  t.deepEqual(undocumented, []);
});

test('the vm block is a subset of the policy format: the same fields, forms and defaults', (t) => {
  const vm = defs.vm!.properties as Record<string, SchemaNode>;
  const p = policy.properties as Record<string, SchemaNode>;
  for (const field of ['profile', 'vcpus', 'guestCpuid', 'ignoreMsrs']) {
    t.deepEqual(vm[field], p[field], field);
  }
  // The policy's memory is the size or an object with the size and protections; a vm block takes the size.
  t.deepEqual(withoutDescriptions(vm.memory), withoutDescriptions(policy.definitions!.memorySize));
  const hostModel = p.hostModel!.properties as Record<string, SchemaNode>;
  t.deepEqual(withoutDescriptions(vm.hostCr0), withoutDescriptions(hostModel.cr0));
  t.deepEqual(withoutDescriptions(vm.hostCr4), withoutDescriptions(hostModel.cr4));
  t.deepEqual(vm.cr4PinnableMask, hostModel.cr4PinnableMask);
  t.deepEqual(defs.cr0Value, policy.definitions!.cr0Value);
  t.deepEqual(defs.cr4Value, policy.definitions!.cr4Value);
  t.deepEqual(defs.u32, policy.definitions!.u32);
  t.deepEqual(defs.u64, policy.definitions!.u64);
});

test('each guest op lists only fields the guest action documents, and the op enum names exactly those ops', (t) => {
  const guest = defs.guestAction!;
  const documented = Object.keys(guest.properties!);
  const branches = guest.allOf!;
  const ops = branches.map((b) => (b.if.properties!.op as SchemaNode).const);
  t.deepEqual(ops, (guest.properties!.op as SchemaNode).enum);
  t.deepEqual(ops, ['rdmsr', 'wrmsr', 'readCr', 'writeCr', 'writeCrMasked', 'lmsw', 'clts', 'hypercall', 'cpuid', 'exec']);
  for (const b of branches) {
    const fields = Object.keys(b.then.properties!);
    t.deepEqual(fields.filter((f) => !documented.includes(f)), [], String(b.if.properties!.op));
    t.deepEqual(fields.slice(0, 3), ['op', 'vcpu', 'cpl']);
  }
});

test('package.json ships the schema as pinbox/schema/scenario.json', (t) => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { exports: Record<string, string>; files: string[] };
  const target = pkg.exports['./schema/scenario.json'];
  t.is(target, './host/vmm/schema/scenario.schema.json');
  t.true(pkg.files.some((f) => target!.startsWith('./' + f)));
  t.deepEqual(JSON.parse(readFileSync(target!, 'utf8')), SCENARIO_SCHEMA);
});
