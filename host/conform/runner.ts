/**
 * Runs a suite: every scenario file in turn on one target, each on a VM of its own. A file
 * that is not a valid scenario becomes a failed result naming the file and each problem's
 * JSON path and reason, and the others still run.
 */
import { basename } from 'node:path';
import type { BackendHost } from '../kvm/api/backend.js';
import { ScenarioError } from './errors.js';
import type { Scenario } from './model.js';
import type { Failure, ScenarioResult } from './results.js';
import { runScenario, type RunOptions } from './run-scenario.js';
import { loadScenarioFile } from './scenario.js';
import type { ScenarioTarget } from './target.js';

export interface SuiteObserver {
  /** Called before the scenarios run, with how many there are and the KVM they run on (where the target names it). */
  start?(total: number, host?: BackendHost): void;
  /** Called as scenario `index` (0-based) starts. */
  scenarioStarted?(index: number, file: string): void;
  scenarioFinished?(result: ScenarioResult): void;
}

/** The top-level step a JSON path lies in: "/steps/3/guest/index" → 3. */
export function stepOfPath(path: string): number | null {
  const m = /^\/steps\/(\d+)(\/|$)/.exec(path);
  return m === null ? null : Number(m[1]);
}

/** The result of a file that could not be parsed: one failure per problem. */
export function malformedResult(error: ScenarioError): ScenarioResult {
  const failures: Failure[] = error.issues.map((issue) => ({
    kind: 'malformed',
    step: stepOfPath(issue.path),
    path: issue.path,
    message: `${issue.path === '' ? 'the file' : issue.path}: ${issue.reason}`,
  }));
  // The scenario's name if the file has a readable one, else the file's.
  const name = error.scenarioName ?? basename(error.file);
  return { name, file: error.file, passed: false, steps: 0, failures, durationMs: 0 };
}


export type Loaded = { readonly file: string; readonly scenario: Scenario } | { readonly file: string; readonly error: ScenarioError };

export function loadScenario(file: string): Loaded {
  try {
    return { file, scenario: loadScenarioFile(file) };
  } catch (e) {
    if (e instanceof ScenarioError) return { file, error: e };
    throw e;
  }
}

export async function runSuite(
  files: readonly string[],
  target: ScenarioTarget,
  observer: SuiteObserver = {},
  options: RunOptions = {},
): Promise<ScenarioResult[]> {
  observer.start?.(files.length, target.host);
  const results: ScenarioResult[] = [];
  for (const [i, file] of files.entries()) {
    observer.scenarioStarted?.(i, file);
    const loaded = loadScenario(file);
    const result =
      'error' in loaded
        ? malformedResult(loaded.error)
        : await runScenario(loaded.scenario, target, options);
    results.push(result);
    observer.scenarioFinished?.(result);
  }
  return results;
}
