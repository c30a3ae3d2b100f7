/**
 * `pinbox audit` against docs/transitions.md: the audit runs every path on scratch VMs of the
 * reference policy (examples/policies/cr-hardening.json), under both Heki profiles, and every
 * cell of the page's table must be what the audit found. The table is the expectation, written
 * from the proposals and the reviewers' positions; the audit computes, it does not look it up.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { transitionsTable } from './docs-table.js';
import { auditPolicy, type AuditReport, type MechanismAudit } from '../../host/conform/audit/run-audit.js';
import { AUDIT_PATHS } from '../../host/conform/audit/paths.js';
import { loadPolicyFile, parsePolicyText } from '../../host/vmm/policy/index.js';

const POLICY = 'examples/policies/cr-hardening.json';
const COLUMNS = ['Heki (v2, v3)', 'Andersen', 'CR filter', 'register intercepts'] as const;
const MECHANISM_OF: Readonly<Record<(typeof COLUMNS)[number], MechanismAudit['mechanism']>> = {
  'Heki (v2, v3)': 'heki', Andersen: 'andersen', 'CR filter': 'cr-filter', 'register intercepts': 'register-intercepts',
};

/** A cell as outcomes per item: "holds", "—" (no item applies), "holds; CR0.TS bypassed". */
function expectedOutcomes(cell: string, items: readonly string[]): Record<string, string> {
  if (cell === '—') return Object.fromEntries(items.map((i) => [i, 'n/a']));
  const [main, ...exceptions] = cell.split(';').map((p) => p.trim());
  const out: Record<string, string> = Object.fromEntries(items.map((i) => [i, main!]));
  for (const e of exceptions) {
    const m = /^(.+) (\S+)$/.exec(e)!;
    for (const item of m[1]!.split(',').map((s) => s.trim())) out[item] = m[2]!;
  }
  return out;
}

/** The audit's outcomes, with n/a where the page's "—" would apply (every item n/a) kept as n/a. */
function compare(t: import('ava').ExecutionContext, report: AuditReport, profile: string): void {
  const table = transitionsTable('path');
  t.deepEqual([...table.keys()], AUDIT_PATHS.map((p) => p.label), 'one row per path, in the audit\'s order');
  for (const column of COLUMNS) {
    const m = report.mechanisms.find((x) => x.mechanism === MECHANISM_OF[column]);
    if (m === undefined) {
      t.fail(`the audit has no ${column}`);
      continue;
    }
    t.true(m.items.length > 0, `${column} protects something`);
    for (const row of m.rows) {
      const cell = table.get(row.label)!.get(column)!;
      const want = expectedOutcomes(cell, m.items);
      // Items the path cannot touch are n/a whatever the cell says for the others.
      const got = Object.fromEntries(Object.entries(row.outcomes).map(([i, o]) => [i, o === 'n/a' && cell !== '—' ? want[i]! : o]));
      t.deepEqual(got, want, `${profile}: ${column}, ${row.label}`);
    }
  }
}

test('the audit of the reference policy agrees with docs/transitions.md, cell by cell (Heki v2)', async (t) => {
  compare(t, await auditPolicy(loadPolicyFile(POLICY)), 'v2');
});

test('and under Heki v3, whose numbers differ but whose semantics do not', async (t) => {
  const doc = JSON.parse(readFileSync(POLICY, 'utf8')) as Record<string, unknown>;
  compare(t, await auditPolicy(parsePolicyText(JSON.stringify({ ...doc, profile: 'v3' }), POLICY)), 'v3');
});

test('what each mechanism protects is read from the armed VM: Heki\'s guest pins, Andersen\'s MSRs, the policy\'s masks', async (t) => {
  const report = await auditPolicy(loadPolicyFile(POLICY));
  const items = Object.fromEntries(report.mechanisms.map((m) => [m.mechanism, m.items]));
  t.deepEqual(items, {
    heki: ['CR0.WP', 'CR4.UMIP', 'CR4.FSGSBASE', 'CR4.SMEP', 'CR4.SMAP'],
    andersen: ['CR0.WP', 'CR4.UMIP', 'CR4.SMEP', 'CR4.SMAP'],
    'cr-filter': ['CR0.MP', 'CR0.TS', 'CR0.WP', 'CR4.SMEP', 'CR4.SMAP'],
    'register-intercepts': ['CR0.MP', 'CR0.TS', 'CR0.WP', 'CR4.SMEP', 'CR4.SMAP', 'GDTR', 'IDTR'],
  });
});
