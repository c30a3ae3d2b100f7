/**
 * For people: a line per scenario as it finishes (PASS or FAIL, its name and file), each
 * failure under it, and a summary. On a terminal, a progress line shows which scenario runs
 * ("[3/40] file"), rewritten in place and cleared before anything else is written.
 */
import { summarise, type ScenarioResult } from '../results.js';
import { oneLine, type ReportOutput, type Reporter } from './reporter.js';

/** ECMA-48: carriage return, then EL (erase line) mode 2. */
const CLEAR_LINE = '\r\x1b[2K';

export function prettyReporter(out: ReportOutput): Reporter {
  let total = 0;
  let progressShown = false;
  const clearProgress = () => {
    if (progressShown) out.write(CLEAR_LINE);
    progressShown = false;
  };
  return {
    start: (n) => {
      total = n;
    },
    scenarioStarted: (i, file) => {
      if (!out.isTTY) return;
      out.write(`${CLEAR_LINE}[${i + 1}/${total}] ${file}`);
      progressShown = true;
    },
    scenarioFinished: (r: ScenarioResult) => {
      clearProgress();
      out.write(`${r.passed ? 'PASS' : 'FAIL'}  ${oneLine(r.name)}  (${r.file})\n`);
      for (const f of r.failures) {
        const where = f.step === null ? '' : `step ${f.step}: `;
        out.write(`      ${where}${oneLine(f.message)}\n        at ${f.path === '' ? '(the file)' : f.path}\n`);
      }
    },
    finish: (results) => {
      clearProgress();
      const { passed, failed, total: n } = summarise(results);
      const ms = results.reduce((sum, r) => sum + r.durationMs, 0);
      out.write(`\n${n} scenario${n === 1 ? '' : 's'}: ${passed} passed, ${failed} failed (${Math.round(ms)} ms)\n`);
    },
  };
}
