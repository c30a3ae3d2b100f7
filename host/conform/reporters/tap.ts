/**
 * TAP version 13 (https://testanything.org/tap-version-13-specification.html): the plan first,
 * then one test line per scenario as it finishes; a failed one carries a YAML block with its
 * file and failures, one the host cannot run is `ok … # SKIP` with the reason. A run on real KVM
 * names its host in a comment after the plan. Values in the block are written as JSON, which YAML reads as flow scalars.
 */
import type { Failure, ScenarioResult } from '../results.js';
import { oneLine, realHost, type ReportOutput, type Reporter } from './reporter.js';

/** A test line's description: one line, and a '#' would start a directive. */
function description(name: string): string {
  return oneLine(name).replace(/\\/g, '\\\\').replace(/#/g, '\\#');
}

/** A directive's reason: one line (a '#' there is harmless, but a line break would end it). */
function directive(reason: string): string {
  return oneLine(reason);
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
    start: (total, host) => {
      out.write(`TAP version 13\n1..${total}\n`);
      const on = realHost(host);
      if (on !== undefined) out.write(`# real KVM: ${oneLine(on)}\n`);
    },
    scenarioFinished: (r: ScenarioResult) => {
      n++;
      if (r.unsupported !== undefined) {
        // A SKIP directive: "ok" by TAP's grammar, and every TAP consumer counts it as skipped, not passed.
        out.write(`ok ${n} - ${description(r.name)} # SKIP unsupported on this host: ${directive(r.unsupported)}\n`);
        return;
      }
      out.write(`${r.passed ? 'ok' : 'not ok'} ${n} - ${description(r.name)}\n`);
      if (!r.passed) {
        out.write(`  ---\n  file: ${JSON.stringify(r.file)}\n  steps: ${r.steps}\n  failures:\n${r.failures.map(yamlFailure).join('\n')}\n  ...\n`);
      }
    },
    finish: () => {},
  };
}
