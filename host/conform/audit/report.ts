/**
 * `pinbox audit`'s report as text: for each mechanism, one row per path, one column per item it
 * protects, and the outcome in each cell; then, for each mechanism, the paths by which something
 * it protects can change without user space seeing it — the answer the audit is for.
 */
import { MEMORY_GOALS, type MemoryAudit, type MemoryOutcome } from './memory-audit.js';
import type { AuditReport, Outcome } from './run-audit.js';

const SHORT: Readonly<Record<Outcome, string>> = { holds: 'holds', asks: 'asks', bypassed: 'BYPASSED', dropped: 'DROPPED', 'n/a': '·' };

export function auditText(report: AuditReport, policy: string): string {
  let out = `pinbox audit ${policy}\n\n`;
  out += 'holds: the path cannot change it  asks: user space decides first  BYPASSED: it changes unseen\n';
  out += 'DROPPED: it survives the path, its protection does not  ·: the path cannot touch it\n';
  for (const m of report.mechanisms) {
    const width = Math.max(...m.rows.map((r) => r.label.length));
    const cols = m.items.map((i) => Math.max(i.length, 8));
    out += `\n${m.label}: ${m.items.length === 0 ? 'protects nothing on this policy' : `protects ${m.items.join(', ')}`}\n`;
    if (m.items.length === 0) continue;
    out += `  ${''.padEnd(width)}  ${m.items.map((i, k) => i.padEnd(cols[k]!)).join('  ')}\n`;
    for (const r of m.rows) out += `  ${r.label.padEnd(width)}  ${m.items.map((i, k) => SHORT[r.outcomes[i]!].padEnd(cols[k]!)).join('  ')}\n`;
    const unseen = m.rows.flatMap((r) => {
      const items = m.items.filter((i) => r.outcomes[i] === 'bypassed' || r.outcomes[i] === 'dropped');
      return items.length === 0 ? [] : [`  - ${r.label}: ${items.join(', ')}\n`];
    });
    out += unseen.length === 0 ? '  nothing it protects changes unseen\n' : `  changes unseen:\n${unseen.join('')}`;
  }
  if (report.memory !== undefined) out += memoryText(report.memory);
  return out;
}

const MEMORY_SHORT: Readonly<Record<MemoryOutcome, string>> = { holds: 'holds', paging: 'paging', bypassed: 'BYPASSED', dropped: 'DROPPED' };

/** The memory table: one row per attacker or transition, one column per goal. */
function memoryText(m: MemoryAudit): string {
  let out = `\nmemory: ${m.protections.length === 0 ? 'nothing protected' : m.protections.join('; ')}\n`;
  out += 'holds: the second stage refuses it, and the VMM sees the denial  paging: only the guest\'s own page tables or CR bits stop it\n';
  out += 'BYPASSED: the attacker reaches it  DROPPED: after the transition the second stage refuses less than before\n';
  const width = Math.max(...m.rows.map((r) => r.label.length));
  const cols = MEMORY_GOALS.map((g) => Math.max(g.label.length, 8));
  out += `  ${''.padEnd(width)}  ${MEMORY_GOALS.map((g, k) => g.label.padEnd(cols[k]!)).join('  ').trimEnd()}\n`;
  for (const r of m.rows) out += `  ${r.label.padEnd(width)}  ${MEMORY_GOALS.map((g, k) => MEMORY_SHORT[r.outcomes[g.goal]].padEnd(cols[k]!)).join('  ').trimEnd()}\n`;
  const reached = m.rows.flatMap((r) => {
    // A transition row lists what it drops: what the attacks reached anyway, their rows say.
    const goals = MEMORY_GOALS.filter((g) => r.outcomes[g.goal] === 'dropped' || (r.kind === 'attack' && r.outcomes[g.goal] === 'bypassed'));
    return goals.length === 0 ? [] : [`  - ${r.label}: ${goals.map((g) => g.label).join(', ')}\n`];
  });
  out += reached.length === 0 ? '  the attacker reaches none of it\n' : `  reached:\n${reached.join('')}`;
  return out;
}
