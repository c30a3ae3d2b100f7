/** What every reporter is: a suite observer that writes to one output, and a last word. */
import type { SuiteObserver } from '../runner.js';
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

/** A failure's message on one line (messages never need their line breaks to be read). */
export function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}
