/** What running a scenario produces: the result every reporter prints. */

/** A value as reports show it: JSON, with 64-bit values as "0x…" and numbers by their names. */
export type Shown = string | number | boolean | null | readonly Shown[] | { readonly [key: string]: Shown };

/**
 * - malformed: the file is not a valid scenario (path into the file, reason);
 * - mismatch: a step produced something other than what `expect` says;
 * - error: the target failed (it could not create the VM, lost its connection, does not
 *   support an operation); the scenario's remaining steps did not run.
 */
export type FailureKind = 'malformed' | 'mismatch' | 'error';

export interface Failure {
  readonly kind: FailureKind;
  /** The top-level step (0-based); null for a problem with the file or the VM. */
  readonly step: number | null;
  /** JSON Pointer into the scenario file: "/steps/3/expect/exits/0/msr/data". */
  readonly path: string;
  readonly expected?: Shown;
  readonly actual?: Shown;
  /** One line a person can act on. */
  readonly message: string;
}

export interface ScenarioResult {
  readonly name: string;
  readonly file: string;
  readonly passed: boolean;
  /** Steps run (all of them, unless a target error stopped the scenario). */
  readonly steps: number;
  readonly failures: readonly Failure[];
  readonly durationMs: number;
}

export function summarise(results: readonly ScenarioResult[]): { passed: number; failed: number; total: number } {
  const passed = results.filter((r) => r.passed).length;
  return { passed, failed: results.length - passed, total: results.length };
}
