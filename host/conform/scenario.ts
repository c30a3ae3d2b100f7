/**
 * Scenario files: JSON in, a typed, normalised Scenario out (model.ts) — or a ScenarioError
 * naming the file and every problem with its JSON path and reason: an unreadable file, text
 * that is not JSON (with line and column), schema violations together with unknown kernel names,
 * then pinbox's own checks.
 *
 *   const scenario = loadScenarioFile('test/conformance/msr-filter/user-exit-reasons.json');
 *
 * The format is host/vmm/schema/scenario.schema.json (shipped as `pinbox/schema/scenario.json`);
 * the README has a guide to writing one.
 */
import { parseJsonText, readTextFile } from '../vmm/policy/json-text.js';
import type { ScenarioText } from './document.js';
import { IssueCollector, ScenarioError } from './errors.js';
import { nameIssues } from './name-check.js';
import type { Scenario, Step } from './model.js';
import type { ParseContext } from './parse-context.js';
import { parseStep } from './parse-step.js';
import { scenarioSchemaIssues } from './schema-check.js';
import { compileVmBlock } from './vm-block.js';

export type * from './model.js';
export { ScenarioError, type ScenarioIssue } from './errors.js';
export { scenarioPolicy, type ScenarioVm } from './vm-block.js';

function nameIn(value: unknown): string | undefined {
  const name = typeof value === 'object' && value !== null ? (value as { name?: unknown }).name : undefined;
  return typeof name === 'string' && name !== '' ? name : undefined;
}

/** A parsed JSON value to a scenario; `file` names it in errors and in the result. */
export function parseScenario(value: unknown, file: string): Scenario {
  const schemaIssues = scenarioSchemaIssues(value);
  if (schemaIssues.length > 0) {
    // The names are checked too, so that one pass reports every problem of the file.
    const reported = new Set(schemaIssues.map((i) => i.path));
    throw new ScenarioError(file, [...schemaIssues, ...nameIssues(value).filter((i) => !reported.has(i.path))], nameIn(value));
  }
  const text = value as ScenarioText;

  const issues = new IssueCollector();
  const vm = compileVmBlock(text.vm ?? {}, '/vm', issues);
  const cx: ParseContext = { profile: vm?.profile ?? 'v2', vcpus: vm?.vcpus ?? 1, issues, snapshots: new Set() };
  const steps: Step[] = [];
  text.steps.forEach((s, i) => {
    const step = parseStep(s, { path: `/steps/${i}`, inExitOf: undefined }, cx);
    if (step !== undefined) steps.push(step);
  });
  issues.throwIfAny(file, text.name);
  return {
    file,
    name: text.name,
    source: text.source,
    description: text.description,
    cases: text.cases ?? [],
    vm: vm!,
    steps,
  };
}

/** JSON text to a scenario. */
export function parseScenarioText(text: string, file: string): Scenario {
  const parsed = parseJsonText(text);
  if (!parsed.ok) {
    const { line, column, message } = parsed.problem;
    throw new ScenarioError(file, [{ path: '', reason: `not valid JSON at line ${line}, column ${column}: ${message}` }]);
  }
  return parseScenario(parsed.value, file);
}

export function loadScenarioFile(file: string): Scenario {
  const read = readTextFile(file);
  if (!read.ok) throw new ScenarioError(file, [{ path: '', reason: `cannot read the scenario file: ${read.why}` }]);
  return parseScenarioText(read.text, file);
}
