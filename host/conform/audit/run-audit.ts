/**
 * `pinbox audit POLICY` (docs/transitions.md): for each CR-hardening mechanism the policy brings
 * into play, and each way a control-register value can change or be restored, which of the items
 * the mechanism protects that path can change without user space seeing it. Nothing here is a
 * list of answers: every cell comes from running the path on a scratch VM of the policy, armed as
 * the mechanism's users arm it, and looking at what happened.
 *
 * Outcomes:
 *   holds     the item did not change, and nobody in user space had to decide (an attack path);
 *             or the protection still stands after the transition (a transition path);
 *   asks      user space was asked first — a CR-filter exit or a register intercept — and its
 *             answer decided (the policy's answer, on the scratch VM);
 *   bypassed  the item changed, and no user-space decision stood in the way;
 *   dropped   the transition left the item as it was, but not its protection: a guest write
 *             afterwards changes it unseen;
 *   n/a       the path cannot touch the item (LMSW reaches only MP, EM, TS; CLTS only TS; LGDT/LIDT
 *             only descriptor tables; a MOV to CR no table).
 */
import { Vmm } from '../../vmm/vmm.js';
import type { CompiledPolicy } from '../../vmm/policy/index.js';
import type { Machine } from '../../vmm/machine.js';
import type { Exit } from '../../../protocol/messages/index.js';
import { mechanismsOf, type AuditItem, type Mechanism, type MechanismName } from './mechanisms.js';
import { auditMemory, hasMemoryProtection, type MemoryAudit } from './memory-audit.js';
import { AUDIT_PATHS, guestClear, itemHolds, type Attempt, type AuditPath, type PathName } from './paths.js';

export type Outcome = 'holds' | 'asks' | 'bypassed' | 'dropped' | 'n/a';

export interface AuditRow {
  readonly path: PathName;
  readonly label: string;
  /** The outcome for each item, by its name. */
  readonly outcomes: Readonly<Record<string, Outcome>>;
}

export interface MechanismAudit {
  readonly mechanism: MechanismName;
  readonly label: string;
  readonly items: readonly string[];
  readonly rows: readonly AuditRow[];
}

export interface AuditReport {
  readonly mechanisms: readonly MechanismAudit[];
  /** The memory rows (memory-audit.ts), for a policy with memory protections or Heki memory locks. */
  readonly memory?: MemoryAudit;
}

/** The exits by which user space decides: the CR filter's and the register intercepts'. */
function decided(exits: readonly Exit[]): boolean {
  return exits.some((e) => e.reason === 'KVM_EXIT_PINBOX_CR_FILTER' || e.reason === 'KVM_EXIT_PINBOX_REG_INTERCEPT');
}

function attackOutcome(a: Attempt): Outcome {
  if (decided(a.exits)) return 'asks';
  return a.changed ? 'bypassed' : 'holds';
}

class Scratch {
  private made = 0;

  constructor(
    private readonly vmm: Vmm,
    private readonly mechanism: Mechanism,
  ) {}

  /** A VM of the mechanism's policy, booted, and nothing else. */
  fresh(): Machine {
    return this.vmm.createVm(`audit-${++this.made}`, this.mechanism.policy);
  }

  /** A VM armed as the mechanism's users arm it, with the item set (a bit the boot state leaves clear is set by the host first). */
  async armed(item: AuditItem | undefined): Promise<Machine> {
    const vm = this.fresh();
    await this.mechanism.arm(vm);
    if (item?.kind === 'cr') {
      const s = vm.getSregs(0);
      const now = item.cr === 0 ? s.cr0 : s.cr4;
      if ((now & item.bit) === 0n) vm.setSregs(0, item.cr === 0 ? { cr0: now | item.bit } : { cr4: now | item.bit });
    }
    return vm;
  }

  drop(vm: Machine): void {
    this.vmm.removeVm(vm.name);
  }
}

async function probe(scratch: Scratch, path: AuditPath, item: AuditItem): Promise<Outcome> {
  if (path.kind === 'attack' && !path.applies(item)) return 'n/a';
  const vm = await scratch.armed(item);
  const table = item.kind === 'table' ? (item.table === 'gdtr' ? vm.getSregs(0).gdt : vm.getSregs(0).idt) : { base: 0n, limit: 0 };
  const made: Machine[] = [vm];
  try {
    if (path.kind === 'attack') return attackOutcome(await path.attack(vm, item));
    const after = await path.transition(vm, () => {
      const copy = scratch.fresh();
      made.push(copy);
      return copy;
    });
    if (!itemHolds(after, item, table)) return 'bypassed';
    const again = await guestClear(after, item);
    return again.changed && !decided(again.exits) ? 'dropped' : 'holds';
  } finally {
    for (const m of made) scratch.drop(m);
  }
}

async function auditMechanism(mechanism: Mechanism): Promise<MechanismAudit> {
  const vmm = new Vmm({ policy: mechanism.policy, maxVms: 4096 });
  try {
    const scratch = new Scratch(vmm, mechanism);
    const first = await scratch.armed(undefined);
    const items = mechanism.items(first);
    scratch.drop(first);
    const rows: AuditRow[] = [];
    for (const path of AUDIT_PATHS) {
      const outcomes: Record<string, Outcome> = {};
      for (const item of items) outcomes[item.name] = await probe(scratch, path, item);
      rows.push({ path: path.name, label: path.label, outcomes });
    }
    return { mechanism: mechanism.name, label: mechanism.label, items: items.map((i) => i.name), rows };
  } finally {
    vmm.close();
  }
}

/** Audits every mechanism `policy` brings into play, and its memory protections, each on scratch VMs of its own. */
export async function auditPolicy(policy: CompiledPolicy): Promise<AuditReport> {
  const mechanisms: MechanismAudit[] = [];
  for (const m of mechanismsOf(policy)) mechanisms.push(await auditMechanism(m));
  return { mechanisms, ...(hasMemoryProtection(policy) && { memory: await auditMemory(policy) }) };
}

/** One outcome for a mechanism and a path: the one every item it applies to shares, '—' for none, or the outcomes joined. */
export function summaryOutcome(row: AuditRow): string {
  const seen = [...new Set(Object.values(row.outcomes).filter((o) => o !== 'n/a'))];
  return seen.length === 0 ? '—' : seen.sort().join(', ');
}
