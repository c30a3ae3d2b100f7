/**
 * For people: the real kernel the scenarios run on, if they do; a line per scenario as it
 * finishes (PASS, FAIL, or SKIP for one the host cannot run, with why), each failure under it,
 * and a summary. On a terminal, a progress line shows which scenario runs
 * ("[3/40] file"), rewritten in place and cleared before anything else is written.
 */
import { outcomeOf, summarise, type ScenarioResult } from '../results.js';
import { oneLine, progressLine, realHost, type ReportOutput, type Reporter } from './reporter.js';

export function prettyReporter(out: ReportOutput): Reporter {
  let total = 0;
  const progress = progressLine(out);
  const clearProgress = progress.clear;
  return {
    start: (n, host) => {
      total = n;
      const on = realHost(host);
      if (on !== undefined) out.write(`pinbox conform on real KVM: ${on}\n\n`);
    },
    scenarioStarted: (i, file) => progress.show(i, total, file),
    scenarioFinished: (r: ScenarioResult) => {
      clearProgress();
      const outcome = outcomeOf(r);
      out.write(`${outcome === 'passed' ? 'PASS' : outcome === 'failed' ? 'FAIL' : 'SKIP'}  ${oneLine(r.name)}  (${r.file})\n`);
      if (r.unsupported !== undefined) out.write(`      unsupported on this host: ${oneLine(r.unsupported)}\n`);
      for (const f of r.failures) {
        const where = f.step === null ? '' : `step ${f.step}: `;
        out.write(`      ${where}${oneLine(f.message)}\n        at ${f.path === '' ? '(the file)' : f.path}\n`);
      }
    },
    finish: (results) => {
      clearProgress();
      const { passed, failed, unsupported, total: n } = summarise(results);
      const ms = results.reduce((sum, r) => sum + r.durationMs, 0);
      const skipped = unsupported > 0 ? `, ${unsupported} unsupported on this host` : '';
      out.write(`\n${n} scenario${n === 1 ? '' : 's'}: ${passed} passed, ${failed} failed${skipped} (${Math.round(ms)} ms)\n`);
    },
  };
}
