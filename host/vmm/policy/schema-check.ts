/**
 * Checks a parsed policy against the JSON Schema shipped in the package (draft-07, validated by
 * ajv with allErrors) and turns ajv's errors into issues a user can act on: each at the path
 * of the field itself (a missing or unknown property is reported at its own path, not its
 * parent's), in words the schema chose (`x-expect`, an annotation keyword of ours), with the
 * value that was found.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schema from '../schema/policy.schema.json' with { type: 'json' };
import { pointer, type PolicyIssue } from './errors.js';
import { closestName } from './spelling.js';

/** The policy JSON Schema, as shipped (also exported as `pinbox/schema/policy.json`). */
export const POLICY_SCHEMA: object = schema;

let validator: ValidateFunction | undefined;

function policyValidator(): ValidateFunction {
  if (validator === undefined) {
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
    validator = ajv.compile(schema);
  }
  return validator;
}

/** Every schema violation in `value`, or none. */
export function schemaIssues(value: unknown): PolicyIssue[] {
  const validate = policyValidator();
  if (validate(value)) return [];
  const seen = new Set<string>();
  const out: PolicyIssue[] = [];
  for (const e of validate.errors ?? []) {
    const issue = describe(e);
    if (issue === undefined) continue;
    const key = issue.path + '\0' + issue.message;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  return out;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  boolean: 'true or false',
  integer: 'a whole number',
  number: 'a number',
};

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 48 ? text.slice(0, 45) + '...' : text;
}

function describe(e: ErrorObject): PolicyIssue | undefined {
  const parent = (e.parentSchema ?? {}) as { 'x-expect'?: string; properties?: Record<string, unknown> };
  const here = e.instancePath + (e.propertyName !== undefined ? pointer(e.propertyName) : '');
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent.properties ?? {}).filter((k) => k !== '$schema');
      const guess = closestName(name, known);
      const hint = guess !== undefined ? `; did you mean "${guess}"?` : ` (known fields: ${known.join(', ')})`;
      return { path: here + pointer(name), message: `is not a known field${hint}` };
    }
    case 'required':
      return { path: here + pointer((e.params as { missingProperty: string }).missingProperty), message: 'is required' };
    case 'propertyNames':
      return undefined; // its inner error, carrying propertyName, says which key and why
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return { path: here, message: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}; got ${show(e.data)}` };
    }
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      return { path: here + pointer(Math.max(i, j)), message: `repeats item ${Math.min(i, j)} (${show((e.data as unknown[])[i])})` };
    }
    case 'maxItems':
    case 'minItems': {
      const { limit } = e.params as { limit: number };
      const n = (e.data as unknown[]).length;
      const bound = e.keyword === 'maxItems' ? `at most ${limit}` : `at least ${limit}`;
      return { path: here, message: `has ${n} item${n === 1 ? '' : 's'}; ${bound} allowed` };
    }
    default:
      break;
  }
  if (parent['x-expect'] !== undefined) {
    return { path: here, message: `must be ${parent['x-expect']}; got ${show(e.data)}` };
  }
  if (e.keyword === 'type') {
    const types = ([] as string[]).concat((e.params as { type: string | string[] }).type);
    return { path: here, message: `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}; got ${show(e.data)}` };
  }
  return { path: here, message: `${e.message ?? e.keyword}; got ${show(e.data)}` };
}
