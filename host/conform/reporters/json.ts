/**
 * JSON Lines: one object per scenario, as soon as it finishes —
 *   {"name", "file", "passed", "unsupported"?, "steps", "failures": [{kind, step, path, expected?, actual?, message}], "host"?}
 * `unsupported` (the reason) only for a scenario the host cannot run (`passed` is then false);
 * `host` (the kernel, vendor module and API version) only on real KVM.
 * Values in `expected` and `actual` are as reports show them (64-bit values as "0x…").
 */
import type { BackendHost } from '../../kvm/api/backend.js';
import type { ScenarioResult } from '../results.js';
import { realHost, type ReportOutput, type Reporter } from './reporter.js';

export function jsonLine(result: ScenarioResult, host?: BackendHost): string {
  const { name, file, passed, unsupported, steps, failures } = result;
  const on = realHost(host);
  return JSON.stringify({ name, file, passed, ...(unsupported !== undefined && { unsupported }), steps, failures, ...(on !== undefined && { host: on }) }) + '\n';
}

export function jsonReporter(out: ReportOutput): Reporter {
  let host: BackendHost | undefined;
  return {
    start: (_total, h) => {
      host = h;
    },
    scenarioFinished: (result) => out.write(jsonLine(result, host)),
    finish: () => {},
  };
}
