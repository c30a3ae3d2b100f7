/** What every reporter is: a suite observer that writes to one output, and a last word. */
import type { SuiteObserver } from '../runner.js';
import type { BackendHost } from '../../kvm/api/backend.js';
import type { ScenarioResult } from '../results.js';

export interface ReportOutput {
  write(text: string): void;
  /** A terminal: the pretty reporter then shows a progress line. */
  readonly isTTY?: boolean;
}

export interface Reporter extends SuiteObserver {
  /** Called once, after the last scenario. */
  finish(results: readonly ScenarioResult[]): void;
}

export const REPORTER_NAMES = ['pretty', 'tap', 'json', 'junit'] as const;
export type ReporterName = (typeof REPORTER_NAMES)[number];

/**
 * The host a report names: a real kernel's one-line description ("Linux 6.18.44, kvm_pvm, KVM
 * API 12"); nothing for the model, whose reports stay as they were.
 */
export function realHost(host: BackendHost | undefined): string | undefined {
  return host?.backend === 'kvm' ? host.summary : undefined;
}

/** A failure's message on one line (messages never need their line breaks to be read). */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

/** ECMA-48: carriage return, then EL (erase line) mode 2. */
const CLEAR_LINE = '\r\x1b[2K';

/**
 * On a terminal, a progress line ("[3/40] file") rewritten in place; `clear()` removes it before
 * anything else is written. Elsewhere both do nothing.
 */
export function progressLine(out: ReportOutput): { show(index: number, total: number, file: string): void; clear(): void } {
  let shown = false;
  return {
    show: (index, total, file) => {
      if (!out.isTTY) return;
      out.write(`${CLEAR_LINE}[${index + 1}/${total}] ${file}`);
      shown = true;
    },
    clear: () => {
      if (shown) out.write(CLEAR_LINE);
      shown = false;
    },
  };
}
