/**
 * What is wrong with a policy: every problem found, each with the JSON Pointer (RFC 6901) of
 * the offending field — `/msrFilter/ranges/2/base` — and a reason. Schema checks and pinbox's
 * own checks report in the same form, and all of them are reported at once, so that a user
 * fixes a file in one pass. A policy with any problem is rejected as a whole: nothing starts.
 */

export interface PolicyIssue {
  /** JSON Pointer of the field; "" is the whole document. */
  readonly path: string;
  readonly message: string;
}

export class PolicyError extends Error {
  override readonly name = 'PolicyError';
  readonly issues: readonly PolicyIssue[];
  /** The file (or other source) the policy came from, when known. */
  readonly source: string | undefined;

  constructor(issues: readonly PolicyIssue[], source?: string) {
    super(formatIssues(issues, source));
    this.issues = issues;
    this.source = source;
  }
}

function formatIssues(issues: readonly PolicyIssue[], source: string | undefined): string {
  const where = source === undefined ? 'policy' : source;
  const lines = issues.map((i) => `  ${i.path === '' ? '(top level)' : i.path}: ${i.message}`);
  const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
  return `${where}: invalid policy, ${count}:\n${lines.join('\n')}`;
}

/** Builds a JSON Pointer from its segments, escaping "~" and "/" as RFC 6901 §3 says. */
export function pointer(...segments: readonly (string | number)[]): string {
  let out = '';
  for (const s of segments) out += '/' + String(s).replace(/~/g, '~0').replace(/\//g, '~1');
  return out;
}

/** Collects issues while a policy is checked; compile steps push and go on. */
export class IssueList {
  readonly issues: PolicyIssue[] = [];

  add(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  get empty(): boolean {
    return this.issues.length === 0;
  }

  throwIfAny(source?: string): void {
    if (this.issues.length > 0) throw new PolicyError(this.issues, source);
  }
}
