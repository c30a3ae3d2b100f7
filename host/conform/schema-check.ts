/**
 * Checks a parsed scenario against the JSON Schema shipped in the package; the issues are worded
 * by host/vmm/schema/ajv-issues.ts.
 *
 * The schema picks a guest op's fields with if/then and a step's kind with oneOf; ajv reports
 * the branch bookkeeping of both ("must match \"then\" schema", each oneOf branch's own
 * failure) besides the real error, so those are dropped here and the oneOf itself is reported
 * once, in its x-expect words.
 */
import schema from '../vmm/schema/scenario.schema.json' with { type: 'json' };
import { lazyValidator, schemaIssues } from '../vmm/schema/ajv-issues.js';
import type { ScenarioIssue } from './errors.js';

/** The scenario JSON Schema, as shipped (`pinbox/schema/scenario.json`). */
export const SCENARIO_SCHEMA: object = schema;

// strictRequired is off: the if/then branches name properties their parents define.
const scenarioValidator = lazyValidator(schema, { strictRequired: false });

/** Every schema violation in `value`, or none. */
export function scenarioSchemaIssues(value: unknown): ScenarioIssue[] {
  return schemaIssues(scenarioValidator(), value, {
    skip: (e) => e.keyword === 'if' || /\/oneOf\/\d+\//.test(e.schemaPath),
    knownLabel: 'known here',
  }).map(({ path, message }) => ({ path, reason: message }));
}
