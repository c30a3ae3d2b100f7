/**
 * TAP version 13 (https://testanything.org/tap-version-13-specification.html): the plan first,
 * then one test line per scenario as it finishes; a failed one carries a YAML block with its
 * file and failures. Values in the block are written as JSON, which YAML reads as flow scalars.
 */
import type { Failure, ScenarioResult } from '../results.js';
import { oneLine, type ReportOutput, type Reporter } from './reporter.js';

/** A test line's description: one line, and a '#' would start a directive. */
function description(name: string): string {
  return oneLine(name).replace(/\\/g, '\\\\').replace(/#/g, '\\#');
}

function yamlFailure(f: Failure): string {
  const lines = [
    `    - kind: ${JSON.stringify(f.kind)}`,
    `      step: ${f.step === null ? 'null' : f.step}`,
    `      path: ${JSON.stringify(f.path)}`,
    `      message: ${JSON.stringify(oneLine(f.message))}`,
  ];
  if (f.expected !== undefined) lines.push(`      expected: ${JSON.stringify(f.expected)}`);
  if (f.actual !== undefined) lines.push(`      actual: ${JSON.stringify(f.actual)}`);
  return lines.join('\n');
}

export function tapReporter(out: ReportOutput): Reporter {
  let n = 0;
  return {
    start: (total) => out.write(`TAP version 13\n1..${total}\n`),
    scenarioFinished: (r: ScenarioResult) => {
      n++;
      out.write(`${r.passed ? 'ok' : 'not ok'} ${n} - ${description(r.name)}\n`);
      if (!r.passed) {
        out.write(`  ---\n  file: ${JSON.stringify(r.file)}\n  steps: ${r.steps}\n  failures:\n${r.failures.map(yamlFailure).join('\n')}\n  ...\n`);
      }
    },
    finish: () => {},
  };
}
