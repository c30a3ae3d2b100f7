/**
 * `pinbox audit`'s memory rows (issue 15 item 6; docs/transitions.md, "Memory"): what a guest
 * kernel attacker reaches under a policy's memory protections and its guest's Heki memory
 * locks — write the kernel text, write the page tables, execute data, execute a user page from
 * the kernel (ret2usr) — with CR0.WP cleared, with CR4.SMEP cleared, or with its own page
 * tables rewritten; and whether the protections outlast each transition of issue 14's table
 * (INIT, a triple fault and its reboot, a VM reset, a snapshot restored into a new VM, the
 * host's KVM_SET_MSRS). Every cell comes from running the attack on a scratch VM of the
 * policy (memory-guest.ts) and looking at guest memory and at the VMM's memory_denial events,
 * not from the policy's text.
 *
 * Outcomes:
 *   holds     not reached, and the second stage refused it: the denial reached the VMM;
 *   paging    not reached, but only because of the guest's own paging or CR bits (an NX or
 *             read-only PTE, SMEP) — what another row shows the attacker can change;
 *   bypassed  reached;
 *   dropped   (a transition) reached afterwards by an attack that did not reach before it.
 * A transition's cell is holds when the second stage still refuses what it refused before, and
 * otherwise what the attacks did before it (paging, bypassed): nothing of the second stage to keep.
 */
import type { Machine } from '../../vmm/machine.js';
import type { CompiledPolicy } from '../../vmm/policy/index.js';
import { Vmm } from '../../vmm/vmm.js';
import { AUDIT_PATHS, type PathName, type TransitionPath } from './paths.js';
import {
  aliasEntry, callThrough, clearSmep, clearWp, guestLayout, hekiLockDown, isSetUp, rewritePte, setUpGuest, writeThrough,
  type GuestLayout,
} from './memory-guest.js';

export type MemoryGoal = 'write-text' | 'write-page-tables' | 'execute-data' | 'ret2usr';
export type MemoryPathName = 'wp-cleared' | 'smep-cleared' | 'page-tables-rewritten' | PathName;
export type MemoryOutcome = 'holds' | 'paging' | 'bypassed' | 'dropped';

export const MEMORY_GOALS: readonly { readonly goal: MemoryGoal; readonly label: string }[] = [
  { goal: 'write-text', label: 'write the text' },
  { goal: 'write-page-tables', label: 'write the page tables' },
  { goal: 'execute-data', label: 'execute data' },
  { goal: 'ret2usr', label: 'execute a user page (ret2usr)' },
];

export interface MemoryRow {
  readonly kind: 'attack' | 'transition';
  readonly path: MemoryPathName;
  readonly label: string;
  readonly outcomes: Readonly<Record<MemoryGoal, MemoryOutcome>>;
}

export interface MemoryAudit {
  /** What is in place: the policy's ranges and the guest's Heki locks, as words. */
  readonly protections: readonly string[];
  /** The frames the audit's guest gave each role. */
  readonly frames: Readonly<Record<'text' | 'tables' | 'data' | 'user', bigint>>;
  readonly rows: readonly MemoryRow[];
}

type Attack = (vm: Machine, layout: GuestLayout, goal: MemoryGoal) => Promise<boolean>;

/** The goal by the guest's own mappings, after the attacker's CR change (if any). */
async function direct(vm: Machine, layout: GuestLayout, goal: MemoryGoal): Promise<boolean> {
  switch (goal) {
    case 'write-text': return writeThrough(vm, layout.linear.text, layout.frames.text);
    case 'write-page-tables': return rewritePte(vm, layout.alias, aliasEntry(layout.frames.text));
    case 'execute-data': return callThrough(vm, layout.linear.data);
    case 'ret2usr': return callThrough(vm, layout.linear.user);
  }
}

/**
 * The goal through a mapping of the attacker's own: the frame aliased at a new linear address,
 * supervisor, writable and executable (a ret2usr page is thus run as a supervisor page).
 */
async function remapped(vm: Machine, layout: GuestLayout, goal: MemoryGoal): Promise<boolean> {
  if (goal === 'write-page-tables') return direct(vm, layout, goal);
  const frame = goal === 'write-text' ? layout.frames.text : goal === 'execute-data' ? layout.frames.data : layout.frames.user;
  if (!(await rewritePte(vm, layout.alias, aliasEntry(frame)))) return false;
  return goal === 'write-text' ? writeThrough(vm, layout.alias, frame) : callThrough(vm, layout.alias);
}

const ATTACKS: readonly { readonly path: MemoryPathName; readonly label: string; readonly attack: Attack }[] = [
  { path: 'wp-cleared', label: 'guest with CR0.WP cleared', attack: async (vm, l, g) => (await clearWp(vm), direct(vm, l, g)) },
  { path: 'smep-cleared', label: 'guest with CR4.SMEP cleared', attack: async (vm, l, g) => (await clearSmep(vm), direct(vm, l, g)) },
  { path: 'page-tables-rewritten', label: 'guest rewriting its page tables', attack: remapped },
];

/** The transitions of issue 14's table (paths.ts), each followed by the three attacks. */
const TRANSITIONS = AUDIT_PATHS.filter((p): p is TransitionPath => p.kind === 'transition');

/** Whether a policy has anything for the memory audit: a memory section or a guest with Heki memory locks. */
export function hasMemoryProtection(policy: CompiledPolicy): boolean {
  return policy.memory.protect.length > 0 || guestLayout(policy).heki !== 'none';
}

class MemoryScratch {
  private made = 0;
  readonly layout: GuestLayout;

  constructor(private readonly vmm: Vmm, readonly policy: CompiledPolicy) {
    this.layout = guestLayout(policy);
  }

  /** A VM of the policy with nothing set up (for a restore). */
  fresh(): Machine {
    return this.vmm.createVm(`audit-memory-${++this.made}`, this.policy);
  }

  /** A VM of the policy, its kernel set up and locked down as the audit's guest does. */
  async armed(): Promise<Machine> {
    const vm = this.fresh();
    setUpGuest(vm, this.layout);
    await hekiLockDown(vm, this.layout);
    return vm;
  }

  drop(vm: Machine): void {
    this.vmm.removeVm(vm.name);
  }
}

/** Runs `attack` for `goal` on `vm`, counting the denials the VMM records meanwhile (memory_denial). */
async function attempt(vmm: Vmm, vm: Machine, layout: GuestLayout, attack: Attack, goal: MemoryGoal): Promise<MemoryOutcome> {
  let denials = 0;
  const stop = vmm.log.subscribe({ vm: vm.name, names: ['memory_denial'] }, () => denials++);
  try {
    if (await attack(vm, layout, goal)) return 'bypassed';
    return denials > 0 ? 'holds' : 'paging';
  } finally {
    stop();
  }
}

/**
 * The transition, then the VM to attack: the same, or the new one a snapshot went into. A
 * transition that rebuilt the machine (a VM reset: memory wiped, the boot image and the policy's
 * protections again) is followed by the next kernel's setup at its boot; the attacker strikes
 * before that kernel has locked anything.
 */
async function transition(scratch: MemoryScratch, vm: Machine, path: TransitionPath, made: Machine[]): Promise<Machine> {
  const after = await path.transition(vm, () => {
    const copy = scratch.fresh();
    made.push(copy);
    return copy;
  });
  if (!isSetUp(after, scratch.layout)) setUpGuest(after, scratch.layout);
  return after;
}

const RANK: Readonly<Record<MemoryOutcome, number>> = { holds: 0, paging: 1, dropped: 2, bypassed: 3 };
function worst(outcomes: readonly MemoryOutcome[]): MemoryOutcome {
  return outcomes.reduce((a, b) => (RANK[b] > RANK[a] ? b : a), 'holds' as MemoryOutcome);
}

/**
 * A transition's cell from each attack's outcome before and after it: dropped when the second
 * stage no longer refuses an attack it refused before (it reaches now, or only the guest's own
 * paging stops it — which the attacker controls) or an attack reaches now what it did not before;
 * holds when the second stage refuses after it all it refused before; else what the attacks did
 * before (nothing of the second stage to keep).
 */
export function afterTransition(before: readonly MemoryOutcome[], after: readonly MemoryOutcome[]): MemoryOutcome {
  if (after.some((o, i) => before[i] === 'holds' && o !== 'holds')) return 'dropped';
  if (after.some((o, i) => o === 'bypassed' && before[i] !== 'bypassed')) return 'dropped';
  if (before.includes('holds')) return 'holds';
  return worst(before);
}

/** The memory rows for a policy, each cell on scratch VMs of its own. */
export async function auditMemory(policy: CompiledPolicy): Promise<MemoryAudit> {
  const vmm = new Vmm({ policy, maxVms: 4096 });
  const scratch = new MemoryScratch(vmm, policy);
  const layout = scratch.layout;
  const run = async (goal: MemoryGoal, attack: Attack, path?: TransitionPath): Promise<MemoryOutcome> => {
    const vm = await scratch.armed();
    const made = [vm];
    try {
      const target = path === undefined ? vm : await transition(scratch, vm, path, made);
      return await attempt(vmm, target, layout, attack, goal);
    } finally {
      for (const m of made) scratch.drop(m);
    }
  };
  try {
    const rows: MemoryRow[] = [];
    const before = {} as Record<MemoryGoal, MemoryOutcome[]>;
    for (const a of ATTACKS) {
      const outcomes = {} as Record<MemoryGoal, MemoryOutcome>;
      for (const { goal } of MEMORY_GOALS) {
        outcomes[goal] = await run(goal, a.attack);
        (before[goal] ??= []).push(outcomes[goal]);
      }
      rows.push({ kind: 'attack', path: a.path, label: a.label, outcomes });
    }
    for (const t of TRANSITIONS) {
      const outcomes = {} as Record<MemoryGoal, MemoryOutcome>;
      for (const { goal } of MEMORY_GOALS) {
        const after: MemoryOutcome[] = [];
        for (const a of ATTACKS) after.push(await run(goal, a.attack, t));
        outcomes[goal] = afterTransition(before[goal], after);
      }
      rows.push({ kind: 'transition', path: t.name, label: t.label, outcomes });
    }
    return { protections: describeProtections(policy, layout), frames: layout.frames, rows };
  } finally {
    vmm.close();
  }
}

function describeProtections(policy: CompiledPolicy, layout: GuestLayout): string[] {
  const out = policy.memory.protect.map((r) =>
    `policy: ${r.name ?? `0x${r.address.toString(16)}`} (0x${r.address.toString(16)}+0x${r.size.toString(16)}, attributes 0x${r.attributes.toString(16)})`);
  if (layout.heki === 'v1') out.push(`guest: Heki v1 locks its text NOWRITE${layout.mbec ? ' and EXEC' : ''}`);
  if (layout.heki === 'v2') out.push('guest: Heki v2 locks its text READ|EXEC|IMMUTABLE and its data READ|WRITE');
  if (layout.mbec) out.push('MBEC on');
  return out;
}
