/**
 * `pinbox audit POLICY [--json]`: which ways a control-register value can change or be restored
 * get past each CR-hardening mechanism the policy brings into play (host/conform/audit;
 * docs/transitions.md), found by running each on scratch VMs of the policy. Exits 0 when nothing
 * any mechanism protects changes unseen, 1 when something does, 2 on a bad policy.
 */
import { auditPolicy } from '../conform/audit/run-audit.js';
import { auditText } from '../conform/audit/report.js';
import { PolicyError, loadPolicyFile } from '../vmm/policy/index.js';
import type { ParsedCommand } from './args.js';
import { jsonLine, type Output } from './output.js';

export async function auditCommand(args: ParsedCommand, io: Output): Promise<number> {
  const file = String(args.operands[0]);
  let policy;
  try {
    policy = loadPolicyFile(file);
  } catch (e) {
    if (!(e instanceof PolicyError)) throw e;
    io.err(`${e.message}\n`);
    return 2;
  }
  const report = await auditPolicy(policy);
  if (args.flag('json')) io.out(jsonLine({ policy: file, ...report }));
  else io.out(auditText(report, file));
  const reached = (outcomes: Readonly<Record<string, string>>): boolean => Object.values(outcomes).some((o) => o === 'bypassed' || o === 'dropped');
  const unseen = report.mechanisms.some((m) => m.rows.some((r) => reached(r.outcomes))) || (report.memory?.rows.some((r) => reached(r.outcomes)) ?? false);
  return unseen ? 1 : 0;
}
