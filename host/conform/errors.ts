/**
 * What is wrong with a scenario file: every problem found, each with the JSON Pointer (RFC 6901)
 * of the offending field — `/steps/3/guest/index` — and the reason. Schema violations and
 * pinbox's own checks (names, which expectation fits which step, vCPU numbers) report alike,
 * and all at once, so that a file is fixed in one pass. A scenario with any problem is not run.
 */

export interface ScenarioIssue {
  /** JSON Pointer of the field; "" is the whole file. */
  readonly path: string;
  readonly reason: string;
}

export class ScenarioError extends Error {
  override readonly name = 'ScenarioError';
  readonly file: string;
  readonly issues: readonly ScenarioIssue[];
  /** The scenario's `name`, when the file has a readable one. */
  readonly scenarioName: string | undefined;

  constructor(file: string, issues: readonly ScenarioIssue[], scenarioName?: string) {
    if (issues.length === 0) throw new TypeError('a ScenarioError needs at least one issue');
    super(formatIssues(file, issues));
    this.file = file;
    this.issues = issues;
    this.scenarioName = scenarioName;
  }

  /** The first problem's path. */
  get path(): string {
    return this.issues[0]!.path;
  }

  /** The first problem's reason. */
  get reason(): string {
    return this.issues[0]!.reason;
  }
}

function formatIssues(file: string, issues: readonly ScenarioIssue[]): string {
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  const lines = issues.map((i) => `  ${i.path === '' ? '(top level)' : i.path}: ${i.reason}`);
  return `${file}: invalid scenario, ${count}:\n${lines.join('\n')}`;
}

/** Collects issues while a scenario is checked; each check adds and goes on. */
export class IssueCollector {
  readonly issues: ScenarioIssue[] = [];

  add(path: string, reason: string): void {
    this.issues.push({ path, reason });
  }

  throwIfAny(file: string, scenarioName?: string): void {
    if (this.issues.length > 0) throw new ScenarioError(file, this.issues, scenarioName);
  }
}
