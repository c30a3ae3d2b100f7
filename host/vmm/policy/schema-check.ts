/**
 * Checks a parsed policy against the JSON Schema shipped in the package; the issues are worded
 * by ../schema/ajv-issues.ts.
 */
import schema from '../schema/policy.schema.json' with { type: 'json' };
import { lazyValidator, schemaIssues as issuesOf } from '../schema/ajv-issues.js';
import type { PolicyIssue } from './errors.js';

/** The policy JSON Schema, as shipped (also exported as `pinbox/schema/policy.json`). */
export const POLICY_SCHEMA: object = schema;

const policyValidator = lazyValidator(schema);

/** Every schema violation in `value`, or none. */
export function schemaIssues(value: unknown): PolicyIssue[] {
  return issuesOf(policyValidator(), value, {
    // A propertyNames error's inner error, carrying propertyName, says which key and why.
    skip: (e) => e.keyword === 'propertyNames',
    knownLabel: 'known fields',
  });
}
