/**
 * Turns ajv's errors for the JSON Schemas pinbox ships (policy and scenario files, draft-07,
 * checked with allErrors) into issues a user can act on: each at the path of the field itself
 * (a missing or unknown property at its own path, not its parent's), in words the schema chose
 * (`x-expect`, an annotation keyword of ours), with the value that was found.
 */
import { Ajv, type ErrorObject, type Options, type ValidateFunction } from 'ajv';
import { pointer, type PolicyIssue } from '../policy/errors.js';
import { closestName } from '../policy/spelling.js';

export type SchemaIssue = PolicyIssue;

export interface SchemaIssueOptions {
  /** Errors that are bookkeeping of another error (a branch of if/then or oneOf) and add nothing. */
  skip(e: ErrorObject): boolean;
  /** How an unknown-field issue introduces the fields it knows, e.g. "known fields". */
  knownLabel: string;
}

/** A validator compiled on first use (ajv compiles a schema into code: ~50 ms, not at start-up). */
export function lazyValidator(schema: object, options: Options = {}): () => ValidateFunction {
  let validator: ValidateFunction | undefined;
  return () => {
    if (validator === undefined) {
      const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true, ...options });
      ajv.addKeyword({ keyword: 'x-expect', schemaType: 'string' });
      validator = ajv.compile(schema);
    }
    return validator;
  };
}

/** Every schema violation in `value`, or none; one issue per path and message. */
export function schemaIssues(validate: ValidateFunction, value: unknown, options: SchemaIssueOptions): SchemaIssue[] {
  if (validate(value)) return [];
  const seen = new Set<string>();
  const out: SchemaIssue[] = [];
  for (const e of validate.errors ?? []) {
    if (options.skip(e)) continue;
    const issue = describe(e, options.knownLabel);
    const key = issue.path + '\0' + issue.message;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(issue);
  }
  return out;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  object: 'an object', array: 'a list', string: 'a string', boolean: 'true or false',
  integer: 'a whole number', number: 'a number', null: 'null',
};

function show(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 48 ? text.slice(0, 45) + '...' : text;
}

function describe(e: ErrorObject, knownLabel: string): SchemaIssue {
  const parent = (e.parentSchema ?? {}) as { 'x-expect'?: string; properties?: Record<string, unknown> };
  const here = e.instancePath + (e.propertyName !== undefined ? pointer(e.propertyName) : '');
  switch (e.keyword) {
    case 'additionalProperties': {
      const name = (e.params as { additionalProperty: string }).additionalProperty;
      const known = Object.keys(parent.properties ?? {}).filter((k) => k !== '$schema');
      const guess = closestName(name, known);
      const hint = guess !== undefined ? `; did you mean "${guess}"?` : ` (${knownLabel}: ${known.join(', ')})`;
      return { path: here + pointer(name), message: `is not a known field${hint}` };
    }
    case 'required':
      return { path: here + pointer((e.params as { missingProperty: string }).missingProperty), message: 'is required' };
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
  if (parent['x-expect'] !== undefined) return { path: here, message: `must be ${parent['x-expect']}; got ${show(e.data)}` };
  if (e.keyword === 'type') {
    const types = ([] as string[]).concat((e.params as { type: string | string[] }).type);
    return { path: here, message: `must be ${types.map((t) => TYPE_WORDS[t] ?? t).join(' or ')}; got ${show(e.data)}` };
  }
  return { path: here, message: `${e.message ?? e.keyword}; got ${show(e.data)}` };
}
