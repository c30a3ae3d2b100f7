/**
 * `pinbox audit`'s memory rows (host/conform/audit/memory-audit.ts): each cell from an attack on
 * a scratch VM of the policy. The expectations come from the sources of the protections, not
 * from the audit: what Heki's RFC guests lock (v1 4/9, 8/9; v2 11/19, 18/19) and what each
 * enforces (docs/memory-protection.md §4-5), and what the second stage checks (§2).
 */
import test from 'ava';
import { auditPolicy } from '../../host/conform/audit/run-audit.js';
import { auditText } from '../../host/conform/audit/report.js';
import type { MemoryAudit, MemoryGoal, MemoryPathName } from '../../host/conform/audit/memory-audit.js';
import { compilePolicy } from '../../host/vmm/policy/index.js';

function cells(m: MemoryAudit | undefined): Record<string, Record<MemoryGoal, string>> {
  if (m === undefined) throw new Error('no memory rows');
  return Object.fromEntries(m.rows.map((r) => [r.path, r.outcomes])) as Record<MemoryPathName, Record<MemoryGoal, string>>;
}

test('a policy without memory protections and a guest without Heki memory locks has no memory rows', async (t) => {
  const report = await auditPolicy(compilePolicy({ profile: 'v3' }));
  t.is(report.memory, undefined);
  t.notRegex(auditText(report, 'p.json'), /^memory:/m);
});

test('Heki v2 without MBEC: the text holds against WP and remapping; data executes once its PTE is rewritten (EXEC is put back); page tables and user pages are not locked', async (t) => {
  const report = await auditPolicy(compilePolicy({ profile: 'v2' }));
  const c = cells(report.memory);
  // The guest locks its text READ|EXEC|IMMUTABLE: no WRITE, whatever maps it (11/19 make_spte()).
  t.is(c['wp-cleared']!['write-text'], 'holds');
  t.is(c['page-tables-rewritten']!['write-text'], 'holds');
  // With WP set the read-only PTE stops the write first: the guest's own paging.
  t.is(c['smep-cleared']!['write-text'], 'paging');
  // Its data READ|WRITE without EXEC: without MBEC KVM puts EXEC back (11/19), so only the NX PTE stood.
  t.is(c['wp-cleared']!['execute-data'], 'paging');
  t.is(c['page-tables-rewritten']!['execute-data'], 'bypassed');
  // Neither page tables nor user pages are locked by the RFC guest (18/19).
  for (const path of ['wp-cleared', 'smep-cleared', 'page-tables-rewritten']) t.is(c[path]!['write-page-tables'], 'bypassed', path);
  t.is(c['wp-cleared']!.ret2usr, 'paging', 'SMEP stops it while set');
  t.is(c['smep-cleared']!.ret2usr, 'bypassed');
  // INIT keeps the locks (VM state, docs/transitions.md).
  t.is(c.init!['write-text'], 'holds');
  const text = auditText(report, 'p.json');
  t.regex(text, /^memory: guest: Heki v2 locks its text READ\|EXEC\|IMMUTABLE and its data READ\|WRITE$/m);
  t.regex(text, /^ {2}- guest with CR4\.SMEP cleared: write the page tables, execute a user page \(ret2usr\)$/m);
});

test('Heki v1 without MBEC: NOWRITE holds the text, and no EXEC lock keeps data from executing', async (t) => {
  // MBEC comes from the policy's memory section; without one there is none, and v1's EXEC is refused (-95).
  const withoutMbec = cells((await auditPolicy(compilePolicy({ profile: 'v2', hekiMemory: 'v1' }))).memory);
  t.is(withoutMbec['page-tables-rewritten']!['write-text'], 'holds', 'NOWRITE on the text');
  t.is(withoutMbec['page-tables-rewritten']!['execute-data'], 'bypassed', 'no EXEC lock without MBEC');
});
