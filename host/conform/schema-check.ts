/**
 * Checks a parsed scenario against the JSON Schema shipped in the package (draft-07, ajv with
 * allErrors) and turns ajv's errors into issues a scenario writer can act on: at the path of
 * the field itself, in the words of the schema's `x-expect` annotations, with the value found.
 *
 * The schema picks a guest op's fields with if/then and a step's kind with oneOf; ajv reports
 * the branch bookkeeping of both ("must match \"then\" schema", each oneOf branch's own
 * failure) besides the real error, so those are dropped here and the oneOf itself is reported
 * once, in its x-expect words.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schema from '../vmm/schema/scenario.schema.json' with { type: 'json' };
import { pointer } from '../vmm/policy/errors.js';
import { closestName } from '../vmm/policy/spelling.js';
import type { ScenarioIssue } from './errors.js';

/** The scenario JSON Schema, as shipped (`pinbox/schema/scenario.json`). */
export const SCENARIO_SCHEMA: object = schema;

let validator: ValidateFunction | undefined;

function scenarioValidator(): ValidateFunction {
  if (validator === undefined) {
    // strictRequired is off: the if/then branches name properties their parents define.
    const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, strictRequired: false, allowUnionTypes: true });
    ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
    validator = ajv.compile(schema);
  }
  return validator;
}

/** Every schema violation in `value`, or none. */
export function scenarioSchemaIssues(value: unknown): ScenarioIssue[] {
  const validate = scenarioValidator();
  if (validate(value)) return [];
  const seen = new Set<string>();
  const out: ScenarioIssue[] = [];
  for (const e of validate.errors ?? []) {
    if (e.keyword === 'if' || /\/oneOf\/\d+\//.test(e.schemaPath)) continue;
    const issue = describe(e);
    const key = issue.path + '\0' + issue.reason;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  return out;
}

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 48 ? text.slice(0, 45) + '...' : text;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'an object', array: 'a list', string: 'a string', boolean: 'true or false',
  integer: 'a whole number', number: 'a number', null: 'null',
};

interface SchemaNode {
  'x-expect'?: string;
  properties?: Record<string, unknown>;
}

function describe(e: ErrorObject): ScenarioIssue {
  const parent = (e.parentSchema ?? {}) as SchemaNode;
  const here = e.instancePath + (e.propertyName !== undefined ? pointer(e.propertyName) : '');
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent.properties ?? {}).filter((k) => k !== '$schema');
      const guess = closestName(name, known);
      const hint = guess !== undefined ? `; did you mean "${guess}"?` : ` (known here: ${known.join(', ')})`;
      return { path: here + pointer(name), reason: `is not a known field${hint}` };
    }
    case 'required':
      return { path: here + pointer((e.params as { missingProperty: string }).missingProperty), reason: 'is required' };
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return { path: here, reason: `must be one of ${allowed.map((v) => JSON.stringify(v)).join(', ')}; got ${show(e.data)}` };
    }
    case 'uniqueItems': {
      const { i, j } = e.params as { i: number; j: number };
      return { path: here + pointer(Math.max(i, j)), reason: `repeats item ${Math.min(i, j)} (${show((e.data as unknown[])[i])})` };
    }
    case 'maxItems':
    case 'minItems': {
      const { limit } = e.params as { limit: number };
      const n = (e.data as unknown[]).length;
      return { path: here, reason: `has ${n} item${n === 1 ? '' : 's'}; ${e.keyword === 'maxItems' ? 'at most' : 'at least'} ${limit} allowed` };
    }
    default:
      break;
  }
  if (parent['x-expect'] !== undefined) return { path: here, reason: `must be ${parent['x-expect']}; got ${show(e.data)}` };
  if (e.keyword === 'type') {
    const types = ([] as string[]).concat((e.params as { type: string | string[] }).type);
    return { path: here, reason: `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}; got ${show(e.data)}` };
  }
  return { path: here, reason: `${e.message ?? e.keyword}; got ${show(e.data)}` };
}
