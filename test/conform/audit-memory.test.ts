/**
 * `pinbox audit`'s memory rows (host/conform/audit/memory-audit.ts): each cell from an attack on
 * a scratch VM of the policy. The expectations come from the sources of the protections, not
 * from the audit: what Heki's RFC guests lock (v1 4/9, 8/9; v2 11/19, 18/19) and what each
 * enforces (docs/memory-protection.md §4-5), and what the second stage checks (§2).
 */
import test from 'ava';
import { auditPolicy } from '../../host/conform/audit/run-audit.js';
import { auditText } from '../../host/conform/audit/report.js';
import { afterTransition, MEMORY_GOALS, type MemoryAudit, type MemoryGoal, type MemoryPathName } from '../../host/conform/audit/memory-audit.js';
import { compilePolicy, loadPolicyFile } from '../../host/vmm/policy/index.js';
import { transitionsTable } from './docs-table.js';

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

test('Heki v1 with MBEC (the policy turns it on): EXEC is an allow-list of kernel execute, so data no longer runs even remapped; user execute is untouched', async (t) => {
  const c = cells((await auditPolicy(compilePolicy({ profile: 'v2', hekiMemory: 'v1', memory: { mbec: true } }))).memory);
  // 8/9: every GFN outside the EXEC ranges loses EPT bit 2 (supervisor execute under MBEC).
  t.is(c['page-tables-rewritten']!['execute-data'], 'holds');
  // The alias runs the user page as a supervisor page: checked against kernel execute, which it lost too.
  t.is(c['page-tables-rewritten']!.ret2usr, 'holds');
  // A user-mode address is checked against user execute, which v1 never touches (SDM §29.3.3.2).
  t.is(c['smep-cleared']!.ret2usr, 'bypassed');
});

test('a memory section that protects only the text: the text holds against every attacker, and the rest is reached', async (t) => {
  const policy = compilePolicy({ profile: 'v3', memory: { protect: [{ gpa: '0xe000', size: '0x2000', deny: ['write'], name: 'kernel text' }] } });
  const report = await auditPolicy(policy);
  const c = cells(report.memory);
  for (const path of ['wp-cleared', 'page-tables-rewritten', 'init', 'vm-reset', 'snapshot-restore']) t.is(c[path]!['write-text'], 'holds', path);
  t.is(c['page-tables-rewritten']!['execute-data'], 'bypassed');
  t.is(c['wp-cleared']!['write-page-tables'], 'bypassed');
  t.is(c['smep-cleared']!.ret2usr, 'bypassed');
  t.is(report.memory!.frames.text, 0xe000n, 'the text is the frame the policy protects');
  t.regex(auditText(report, 'p.json'), /^ {2}- guest rewriting its page tables: write the page tables, execute data, execute a user page \(ret2usr\)$/m);
});

function compareMemoryTable(t: import('ava').ExecutionContext, m: MemoryAudit | undefined, table: Map<string, Map<string, string>>, what: string): void {
  if (m === undefined) {
    t.fail(`${what}: no memory rows`);
    return;
  }
  t.deepEqual([...table.keys()], m.rows.map((r) => r.label), `${what}: one row per attacker and transition, in the audit's order`);
  for (const r of m.rows) {
    const want = Object.fromEntries(MEMORY_GOALS.map((g) => [g.goal, table.get(r.label)!.get(g.label)!]));
    t.deepEqual(r.outcomes, want, `${what}: ${r.label}`);
  }
}

test('the audit of examples/policies/memory-hardening.json agrees with docs/transitions.md: its Memory table and the memory column', async (t) => {
  const m = (await auditPolicy(loadPolicyFile('examples/policies/memory-hardening.json'))).memory;
  compareMemoryTable(t, m, transitionsTable('attacker', 'For `examples/policies/memory-hardening.json`'), 'memory-hardening');
  // The main table's memory column: the transitions as the Memory table has them (every goal alike), "—" for the paths that touch no memory protection.
  const main = transitionsTable('path', '## The table');
  for (const [label, cells] of main) {
    const row = m?.rows.find((r) => r.label === label);
    const cell = cells.get('memory protections')!;
    if (row === undefined) t.is(cell, '—', label);
    else t.deepEqual([...new Set(Object.values(row.outcomes))], [cell], label);
  }
});

test('and for a Heki v2 guest that locks itself, with no memory section: the second Memory table', async (t) => {
  const m = (await auditPolicy(compilePolicy({ profile: 'v2' }))).memory;
  compareMemoryTable(t, m, transitionsTable('attacker', 'For a guest whose Heki v2 kernel locks itself'), 'Heki v2');
});

test('a policy that takes execute from the kernel exec area: the CR rows still run, and the attacker\'s code page is not a role', async (t) => {
  const policy = compilePolicy({
    profile: 'v3',
    memory: { mbec: true, protect: [{ gpa: '0x100000', size: '0x100000', deny: ['exec', 'userExec'], name: 'kernel data' }] },
  });
  const report = await auditPolicy(policy);
  t.deepEqual(report.mechanisms.map((m) => m.mechanism), ['heki']);
  t.true(report.mechanisms[0]!.rows.length > 0);
  const m = report.memory!;
  t.is(m.frames.data, 0x101000n, 'the region\'s second page: its first is where the attacker\'s code runs');
  const c = cells(m);
  // The data frame lacks execute at the second stage (NX), whatever maps it.
  t.is(c['page-tables-rewritten']!['execute-data'], 'holds');
  // Nothing denies write on the text: with WP cleared the attacker writes it.
  t.is(c['wp-cleared']!['write-text'], 'bypassed');
});

test('a transition cell: dropped when the second stage refuses less than before, even where the guest\'s paging still stops the attack', (t) => {
  // Before: [WP cleared, SMEP cleared, tables rewritten]; the legend of docs/transitions.md.
  t.is(afterTransition(['paging', 'paging', 'holds'], ['paging', 'paging', 'holds']), 'holds', 'all it refused, it still refuses');
  t.is(afterTransition(['paging', 'paging', 'holds'], ['paging', 'paging', 'paging']), 'dropped', 'refused before, stopped only by paging after');
  t.is(afterTransition(['holds', 'holds', 'holds'], ['holds', 'paging', 'holds']), 'dropped', 'one of several no longer refused');
  t.is(afterTransition(['paging', 'paging', 'holds'], ['paging', 'paging', 'bypassed']), 'dropped');
  t.is(afterTransition(['paging', 'paging', 'paging'], ['paging', 'bypassed', 'paging']), 'dropped', 'reached now, not before');
  t.is(afterTransition(['paging', 'bypassed', 'paging'], ['paging', 'bypassed', 'paging']), 'bypassed', 'nothing of the second stage to keep');
});
