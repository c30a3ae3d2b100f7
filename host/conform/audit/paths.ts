/**
 * The ways a control-register value can change or be restored (docs/transitions.md), each as
 * the audit performs it on a scratch VM:
 *
 *   - an *attack* path tries to clear the protected item directly — a guest MOV to CR, LMSW,
 *     CLTS, LGDT/LIDT, a new kernel booted into the VM (kexec), or the host's KVM_SET_SREGS;
 *   - a *transition* path does what it does to the VM — INIT, a triple fault and its reboot, a VM
 *     reset, a snapshot restored into a new VM, the host's KVM_SET_MSRS — and leaves a VM on which
 *     the audit then tries the guest's MOV (or LIDT) again, to see whether the protection lasted.
 */
import { MSR_EFER, X86_CR0_EM, X86_CR0_MP, X86_CR0_TS } from '../../../protocol/abi.js';
import type { Exit } from '../../../protocol/messages/index.js';
import type { Machine } from '../../vmm/machine.js';
import { restoreSnapshot, takeSnapshot } from '../../vmm/snapshot.js';
import type { AuditItem } from './mechanisms.js';

export type PathName =
  | 'mov-cr' | 'lmsw' | 'clts' | 'lgdt-lidt' | 'kexec' | 'set-sregs'
  | 'init' | 'triple-fault' | 'vm-reset' | 'snapshot-restore' | 'set-msrs';

/** What an attempt did: whether the item changed, and the exits user space saw on the way. */
export interface Attempt {
  readonly changed: boolean;
  readonly exits: readonly Exit[];
}

/** Where the audit keeps the pseudo-descriptor it loads, and the empty page tables of its triple fault. */
const DESCRIPTOR_AT = 0x9_e000;
const EMPTY_PML4_AT = 0x9_f000;

export interface AttackPath {
  readonly kind: 'attack';
  readonly name: PathName;
  readonly label: string;
  applies(item: AuditItem): boolean;
  attack(vm: Machine, item: AuditItem): Promise<Attempt>;
}

export interface TransitionPath {
  readonly kind: 'transition';
  readonly name: PathName;
  readonly label: string;
  /** Performs the transition; the VM to look at afterwards (a new one for a restore). */
  transition(vm: Machine, newVm: () => Machine): Promise<Machine>;
}

export type AuditPath = AttackPath | TransitionPath;

/** Whether the item holds its protected value now: the bit set; the table where the boot state put it. */
export function itemHolds(vm: Machine, item: AuditItem, table: { base: bigint; limit: number }): boolean {
  const s = vm.getSregs(0);
  if (item.kind === 'cr') return ((item.cr === 0 ? s.cr0 : s.cr4) & item.bit) !== 0n;
  const now = item.table === 'gdtr' ? s.gdt : s.idt;
  return now.base === table.base && now.limit === table.limit;
}

function crNow(vm: Machine, item: Extract<AuditItem, { kind: 'cr' }>): bigint {
  const s = vm.getSregs(0);
  return item.cr === 0 ? s.cr0 : s.cr4;
}

async function perform(vm: Machine, request: unknown): Promise<readonly Exit[]> {
  try {
    return ((await vm.perform(0, request)) as { exits: Exit[] }).exits;
  } catch {
    // A guest operation the VMM refused (a shutdown, a killed VM): it exited nothing user space decided.
    return [];
  }
}

/** Runs `attempt` and reports whether the item changed; `table` is where the boot state put the item's table. */
async function attempt(vm: Machine, item: AuditItem, run: () => Promise<readonly Exit[]>): Promise<Attempt> {
  const table = item.kind === 'table' ? (item.table === 'gdtr' ? vm.getSregs(0).gdt : vm.getSregs(0).idt) : { base: 0n, limit: 0 };
  const exits = await run();
  return { changed: !itemHolds(vm, item, table), exits };
}

/** A pseudo-descriptor for LGDT/LIDT that moves the table elsewhere (one page up, same limit). */
function movedTable(vm: Machine, item: Extract<AuditItem, { kind: 'table' }>): void {
  const now = item.table === 'gdtr' ? vm.getSregs(0).gdt : vm.getSregs(0).idt;
  vm.memory.write16(DESCRIPTOR_AT, now.limit);
  vm.memory.write64(DESCRIPTOR_AT + 2, now.base + 0x1000n);
}

const LOAD_TABLE = { gdtr: [0x0f, 0x01, 0x10], idtr: [0x0f, 0x01, 0x18] } as const; // lgdt [rax] / lidt [rax]
const MOV_CR = { 0: [0x0f, 0x22, 0xc0], 4: [0x0f, 0x22, 0xe0] } as const; // mov cr0, rax / mov cr4, rax

/** The guest's own write that clears the item: MOV to CR, or LGDT/LIDT elsewhere. */
export function guestClear(vm: Machine, item: AuditItem): Promise<Attempt> {
  return attempt(vm, item, () => {
    if (item.kind === 'cr') return perform(vm, { op: 'writeCr', cr: item.cr, value: crNow(vm, item) & ~item.bit });
    movedTable(vm, item);
    return perform(vm, { op: 'exec', code: Uint8Array.from([...LOAD_TABLE[item.table], 0xf4]), regs: { rax: BigInt(DESCRIPTOR_AT) } });
  });
}

const LMSW_BITS = X86_CR0_MP | X86_CR0_EM | X86_CR0_TS;

export const AUDIT_PATHS: readonly AuditPath[] = [
  {
    kind: 'attack', name: 'mov-cr', label: 'guest MOV to CR',
    applies: (item) => item.kind === 'cr',
    attack: guestClear,
  },
  {
    kind: 'attack', name: 'lmsw', label: 'guest LMSW',
    // LMSW loads CR0[3:0] and can set PE but never clear it: MP, EM and TS are what it can clear.
    applies: (item) => item.kind === 'cr' && item.cr === 0 && (item.bit & LMSW_BITS) !== 0n,
    attack: (vm, item) => attempt(vm, item, () => {
      const cr0 = crNow(vm, item as Extract<AuditItem, { kind: 'cr' }>);
      return perform(vm, { op: 'lmsw', value: Number(cr0 & 0xfn & ~(item as { bit: bigint }).bit) });
    }),
  },
  {
    kind: 'attack', name: 'clts', label: 'guest CLTS',
    applies: (item) => item.kind === 'cr' && item.cr === 0 && item.bit === X86_CR0_TS,
    attack: (vm, item) => attempt(vm, item, () => perform(vm, { op: 'clts' })),
  },
  {
    kind: 'attack', name: 'lgdt-lidt', label: 'guest LGDT / LIDT',
    applies: (item) => item.kind === 'table',
    attack: guestClear,
  },
  {
    kind: 'attack', name: 'kexec', label: 'guest kexec (a new kernel booted into the VM)',
    applies: () => true,
    // The new kernel's early code, entered without a reset or an INIT: it loads CR0/CR4 and its
    // descriptor tables with its own values — which do not carry what the old kernel protected.
    attack: (vm, item) => attempt(vm, item, () => {
      if (item.kind === 'table') {
        movedTable(vm, item);
        return perform(vm, { op: 'exec', code: Uint8Array.from([...LOAD_TABLE[item.table], 0xf4]), regs: { rax: BigInt(DESCRIPTOR_AT) } });
      }
      return perform(vm, { op: 'exec', code: Uint8Array.from([...MOV_CR[item.cr], 0xf4]), regs: { rax: crNow(vm, item) & ~item.bit } });
    }),
  },
  {
    kind: 'attack', name: 'set-sregs', label: 'host KVM_SET_SREGS',
    applies: () => true,
    attack: (vm, item) => attempt(vm, item, async () => {
      if (item.kind === 'cr') vm.setSregs(0, item.cr === 0 ? { cr0: crNow(vm, item) & ~item.bit } : { cr4: crNow(vm, item) & ~item.bit });
      else {
        const now = item.table === 'gdtr' ? vm.getSregs(0).gdt : vm.getSregs(0).idt;
        vm.setSregs(0, { [item.table === 'gdtr' ? 'gdt' : 'idt']: { base: now.base + 0x1000n } });
      }
      return [];
    }),
  },
  {
    kind: 'transition', name: 'init', label: 'INIT',
    transition: async (vm) => {
      vm.initVcpu(0);
      return vm;
    },
  },
  {
    kind: 'transition', name: 'triple-fault', label: 'triple fault and its reboot',
    // MOV to CR3 with an empty PML4, then INVLPG (which flushes the whole TLB in the model, global
    // pages too), and a jump to fetch afresh: the fetch faults, and so does every delivery after it. No mechanism guards
    // CR3 or INVLPG, so nothing stands between the guest and its triple fault.
    transition: async (vm) => {
      vm.memory.writeBytes(EMPTY_PML4_AT, new Uint8Array(4096));
      const r = (await vm.perform(0, { op: 'exec', code: Uint8Array.from([0x0f, 0x22, 0xd8, 0x0f, 0x01, 0x38, 0xeb, 0x00, 0xf4]), regs: { rax: BigInt(EMPTY_PML4_AT) } })) as { stop?: string };
      if (r.stop !== 'shutdown') throw new Error(`the audit's triple fault stopped with ${String(r.stop)}, not a shutdown`);
      // The VMM boots the vCPU again before its next operation: let that happen, as the guest's next step would.
      await perform(vm, { op: 'readCr', cr: 0 });
      return vm;
    },
  },
  {
    kind: 'transition', name: 'vm-reset', label: 'VM reset',
    transition: async (vm) => {
      vm.reset('control');
      return vm;
    },
  },
  {
    kind: 'transition', name: 'snapshot-restore', label: 'snapshot, restored into a new VM',
    transition: async (vm, newVm) => {
      const copy = newVm();
      restoreSnapshot(copy, takeSnapshot(vm));
      return copy;
    },
  },
  {
    kind: 'transition', name: 'set-msrs', label: 'host KVM_SET_MSRS',
    // The host writes 0 to every MSR it saves and restores (KVM_GET_MSR_INDEX_LIST), one at a
    // time so that one refusal stops nothing; EFER is left alone, or the vCPU could not run.
    transition: async (vm) => {
      for (const index of vm.kvm.getMsrIndexList()) if (index !== MSR_EFER) vm.setMsrs(0, [{ index, data: 0n }]);
      return vm;
    },
  },
];
