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
  /** Every step ran and matched; false for a failed and for an unsupported scenario. */
  readonly passed: boolean;
  /**
   * Why the host cannot run the scenario (the third outcome, never counted as passed): decided
   * before it ran (what it needs and the host lacks), or by the host refusing a step as
   * host_unsupported. Absent for passed and failed scenarios.
   */
  readonly unsupported?: string;
  /** Steps run (all of them, unless a target error stopped the scenario). */
  readonly steps: number;
  readonly failures: readonly Failure[];
  readonly durationMs: number;
  /** What each step did, when the run was asked to keep it (RunOptions.observe: `--diff`). */
  readonly observations?: readonly StepObservation[];
}

export type Outcome = 'passed' | 'failed' | 'unsupported';

export function outcomeOf(r: ScenarioResult): Outcome {
  return r.passed ? 'passed' : r.unsupported !== undefined ? 'unsupported' : 'failed';
}

export function summarise(results: readonly ScenarioResult[]): { passed: number; failed: number; unsupported: number; total: number } {
  const count = (o: Outcome) => results.filter((r) => outcomeOf(r) === o).length;
  return { passed: count('passed'), failed: count('failed'), unsupported: count('unsupported'), total: results.length };
}

/** One step as a target did it, as reports show it: what `--diff` holds side by side. */
export interface StepObservation {
  /** The top-level step (0-based). */
  readonly step: number;
  /** JSON Pointer of the step: "/steps/3", "/steps/3/vmm/duringExit/0". */
  readonly path: string;
  /** "guest rdmsr 0xda0 on vCPU 0". */
  readonly action: string;
  /** What the step did, in the fields its `expect` looks at (compare.ts observedShown). */
  readonly observed: Shown;
  /** Whether that matched `expect`. */
  readonly matched: boolean;
}
