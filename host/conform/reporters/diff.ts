/**
 * Reports of `pinbox conform --diff` (diff.ts), for people and for programs. Both name the real
 * host the comparison ran on.
 *
 *   pretty: AGREE, SKIP (unsupported on this host, with why) or DIVERGE per scenario; under a
 *           divergent one each step with both results side by side, which of them the
 *           scenario expects, and the project's explanation if it has one; then a summary.
 *   json:   JSON Lines — one object per scenario as it finishes,
 *             {"name", "file", "outcome", "model", "kvm", "unsupported"?, "divergences": [{step, path, action, model, kvm, matched, known?}], "host"}
 *           and a last line {"summary": {agree, unsupported, diverge, malformed, steps, explained, total}, "host"}.
 */
import type { BackendHost } from '../../kvm/api/backend.js';
import { summariseDiff, type DiffObserver, type ScenarioDiff, type StepDivergence } from '../diff.js';
import { oneLine, progressLine, type ReportOutput } from './reporter.js';

export const DIFF_REPORTER_NAMES = ['pretty', 'json'] as const;
export type DiffReporterName = (typeof DIFF_REPORTER_NAMES)[number];

export interface DiffReporter extends DiffObserver {
  finish(diffs: readonly ScenarioDiff[]): void;
}

const LABEL: Readonly<Record<ScenarioDiff['outcome'], string>> = { agree: 'AGREE  ', diverge: 'DIVERGE', unsupported: 'SKIP   ', malformed: 'INVALID' };

function hostName(host: BackendHost | undefined): string {
  return host?.summary ?? 'the machine\'s /dev/kvm';
}

function expected(d: StepDivergence, side: 'model' | 'kvm'): string {
  return d.matched[side] ? '   (as the scenario expects)' : '';
}

function prettyDivergence(d: StepDivergence): string {
  const where = d.step === null ? '' : `step ${d.step}: `;
  const lines = [
    `        ${where}${d.action}  (${d.path})`,
    `          model: ${JSON.stringify(d.model)}${expected(d, 'model')}`,
    `          kvm:   ${JSON.stringify(d.kvm)}${expected(d, 'kvm')}`,
    d.known === undefined
      ? '          UNEXPLAINED: fix the model, or document the host quirk or model decision (host/conform/known-divergences.ts)'
      : `          ${d.known.kind === 'host-quirk' ? 'host quirk' : 'model decision'}: ${d.known.title} (${d.known.doc})`,
  ];
  return lines.join('\n') + '\n';
}

export function prettyDiffReporter(out: ReportOutput): DiffReporter {
  let total = 0;
  const progress = progressLine(out);
  const clear = progress.clear;
  return {
    start: (n, hosts) => {
      total = n;
      out.write(`pinbox conform --diff: the KVM model against real KVM on ${hostName(hosts.kvm)}\n\n`);
    },
    scenarioStarted: (i, file) => progress.show(i, total, file),
    scenarioFinished: (d) => {
      clear();
      out.write(`${LABEL[d.outcome]}  ${oneLine(d.name)}  (${d.file})\n`);
      if (d.unsupported !== undefined) out.write(`        unsupported on this host: ${oneLine(d.unsupported)}\n`);
      if (d.error !== undefined) out.write(`        ${oneLine(d.error)}\n`);
      for (const div of d.divergences) out.write(prettyDivergence(div));
    },
    finish: (diffs) => {
      clear();
      const s = summariseDiff(diffs);
      const malformed = s.malformed > 0 ? `, ${s.malformed} malformed` : '';
      out.write(
        `\n${s.total} scenario${s.total === 1 ? '' : 's'}: ${s.agree} agree, ${s.unsupported} unsupported on this host, ${s.diverge} diverge${malformed}` +
          ` (${s.steps} divergent step${s.steps === 1 ? '' : 's'}: ${s.explained} explained, ${s.steps - s.explained} unexplained)\n`,
      );
    },
  };
}

export function jsonDiffReporter(out: ReportOutput): DiffReporter {
  let host = '';
  return {
    start: (_n, hosts) => {
      host = hostName(hosts.kvm);
    },
    scenarioFinished: (d) => out.write(JSON.stringify({ ...d, host }) + '\n'),
    finish: (diffs) => out.write(JSON.stringify({ summary: summariseDiff(diffs), host }) + '\n'),
  };
}

export function createDiffReporter(name: DiffReporterName, out: ReportOutput): DiffReporter {
  return name === 'json' ? jsonDiffReporter(out) : prettyDiffReporter(out);
}
