/**
 * JSON Lines: one object per scenario, as soon as it finishes —
 *   {"name", "file", "passed", "steps", "failures": [{kind, step, path, expected?, actual?, message}]}
 * Values in `expected` and `actual` are as reports show them (64-bit values as "0x…").
 */
import type { ScenarioResult } from '../results.js';
import type { ReportOutput, Reporter } from './reporter.js';

export function jsonLine(result: ScenarioResult): string {
  const { name, file, passed, steps, failures } = result;
  return JSON.stringify({ name, file, passed, steps, failures }) + '\n';
}

export function jsonReporter(out: ReportOutput): Reporter {
  return {
    scenarioFinished: (result) => out.write(jsonLine(result)),
    finish: () => {},
  };
}
