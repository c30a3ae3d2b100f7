/**
 * The CR-hardening mechanisms a policy can bring into play (docs/transitions.md), each as the
 * audit sets it up on a scratch VM: the policy with that mechanism alone, what arms it (the guest's
 * own lock-down for Heki and Andersen, which pin from inside; the policy for the CR filter and the
 * register intercepts), and the items it then protects — read back from the VM once armed, not
 * written down here.
 */
import {
  HEKI_CR4_PINNABLE_MASK_V2, HEKI_CR4_PINNABLE_MASK_V3, KVM_CR4_PIN_ALLOWED, KVM_HC_LOCK_CR_UPDATE, MSR_KVM_CR0_PIN_ALLOWED,
  MSR_KVM_CR0_PINNED_HIGH, MSR_KVM_CR4_PINNED_HIGH, X86_CR0_ET, X86_CR0_PE, X86_CR0_PG, X86_CR0_WP, X86_CR4_PAE,
  hvCrInterceptBit,
} from '../../../protocol/abi.js';
import type { Machine } from '../../vmm/machine.js';
import type { CompiledPolicy } from '../../vmm/policy/index.js';
import { CR0_BIT_NAMES, CR4_BIT_NAMES, NO_MEMORY_POLICY } from '../../vmm/policy/index.js';

export type MechanismName = 'heki' | 'andersen' | 'cr-filter' | 'register-intercepts';

/** What a mechanism protects: a bit of CR0/CR4 (that it keeps set), or a descriptor-table register. */
export type AuditItem =
  | { readonly kind: 'cr'; readonly cr: 0 | 4; readonly bit: bigint; readonly name: string }
  | { readonly kind: 'table'; readonly table: 'gdtr' | 'idtr'; readonly name: string };

export interface Mechanism {
  readonly name: MechanismName;
  readonly label: string;
  /** The policy with this mechanism alone. */
  readonly policy: CompiledPolicy;
  /** What arms it on a new VM, as its users would: a guest's lock-down, nothing for the policy-set ones. */
  arm(vm: Machine): Promise<void>;
  /** The items it protects on an armed VM. */
  items(vm: Machine): AuditItem[];
}

/** Bits long mode cannot run without: no write can clear them, so they protect nothing worth probing. */
const ALWAYS_ON_CR0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET;
const ALWAYS_ON_CR4 = X86_CR4_PAE;
const ALL = (1n << 64n) - 1n;

function crItems(cr: 0 | 4, mask: bigint): AuditItem[] {
  const names = cr === 0 ? CR0_BIT_NAMES : CR4_BIT_NAMES;
  const out: AuditItem[] = [];
  for (const [name, bit] of Object.entries(names)) {
    if ((mask & bit) !== 0n && (bit & (cr === 0 ? ALWAYS_ON_CR0 : ALWAYS_ON_CR4)) === 0n) {
      out.push({ kind: 'cr', cr, bit, name: `CR${cr}.${name.toUpperCase()}` });
    }
  }
  return out;
}

async function guest(vm: Machine, request: unknown): Promise<Record<string, unknown>> {
  return (await vm.perform(0, request)) as unknown as Record<string, unknown>;
}

/**
 * The policy with none of the user-space mechanisms, and Heki's exits as the policy has them.
 * Its memory protections go too: they guard no control register, and a policy that takes execute
 * from the kernel exec area, where the audit's guest code runs, would stop every path before it
 * reached a register (the memory rows audit them: memory-audit.ts).
 */
function base(policy: CompiledPolicy): CompiledPolicy {
  return {
    ...policy, crFilter: undefined, registerIntercepts: undefined, memory: NO_MEMORY_POLICY, vmOptions: { ...policy.vmOptions, andersen: undefined },
  };
}

function heki(policy: CompiledPolicy): Mechanism {
  const scratch = base(policy);
  return {
    name: 'heki',
    label: `Heki (${policy.vmOptions.profile})`,
    policy: scratch,
    // What a Heki guest kernel does (kvm_lock_crs()): CR0.WP, then CR4 & cr4_pinned_mask.
    async arm(vm) {
      const lock = BigInt(KVM_HC_LOCK_CR_UPDATE);
      await guest(vm, { op: 'hypercall', nr: lock, args: [0n, X86_CR0_WP] });
      const cr4 = (await guest(vm, { op: 'readCr', cr: 4 })).value as bigint;
      const mask = policy.vmOptions.cr4PinnableMask ?? (policy.vmOptions.profile === 'v3' ? HEKI_CR4_PINNABLE_MASK_V3 : HEKI_CR4_PINNABLE_MASK_V2);
      await guest(vm, { op: 'hypercall', nr: lock, args: [4n, cr4 & mask] });
    },
    items: (vm) => [...crItems(0, vm.hekiPins.cr0), ...crItems(4, vm.hekiPins.cr4)],
  };
}

function andersen(policy: CompiledPolicy): Mechanism {
  const scratch = { ...base(policy), vmOptions: { ...policy.vmOptions, andersen: true } };
  return {
    name: 'andersen',
    label: 'Andersen (2020)',
    policy: scratch,
    // The series' guest, per CPU: CR0.WP & allowed, CR4 & (SMEP|SMAP|UMIP) & allowed, pinned high.
    async arm(vm) {
      const allowed = (await guest(vm, { op: 'rdmsr', index: MSR_KVM_CR0_PIN_ALLOWED })).value as bigint;
      await guest(vm, { op: 'wrmsr', index: MSR_KVM_CR0_PINNED_HIGH, value: X86_CR0_WP & allowed });
      const cr4 = (await guest(vm, { op: 'readCr', cr: 4 })).value as bigint;
      await guest(vm, { op: 'wrmsr', index: MSR_KVM_CR4_PINNED_HIGH, value: cr4 & KVM_CR4_PIN_ALLOWED });
    },
    items(vm) {
      const pins = new Map(vm.getMsrs(0, [MSR_KVM_CR0_PINNED_HIGH, MSR_KVM_CR4_PINNED_HIGH]).map((e) => [e.index, e.data]));
      return [...crItems(0, pins.get(MSR_KVM_CR0_PINNED_HIGH) ?? 0n), ...crItems(4, pins.get(MSR_KVM_CR4_PINNED_HIGH) ?? 0n)];
    },
  };
}

function crFilter(policy: CompiledPolicy): Mechanism {
  const filter = policy.crFilter!;
  return {
    name: 'cr-filter',
    label: 'CR filter',
    policy: { ...base(policy), crFilter: filter },
    arm: async () => undefined,
    items: () => [...crItems(0, filter.cr0Mask), ...crItems(4, filter.cr4Mask)],
  };
}

function registerIntercepts(policy: CompiledPolicy): Mechanism {
  const r = policy.registerIntercepts!;
  return {
    name: 'register-intercepts',
    label: 'register intercepts',
    policy: { ...base(policy), registerIntercepts: r },
    arm: async () => undefined,
    items(vm) {
      const s = vm.getSregs(0);
      // A mask of all ones intercepts every change: the bits the boot state sets are what it guards.
      const mask = (m: bigint, now: bigint): bigint => (m === ALL ? now : m);
      const out: AuditItem[] = [];
      if (r.control & hvCrInterceptBit('Cr0Write')) out.push(...crItems(0, mask(r.cr0Mask, s.cr0)));
      if (r.control & hvCrInterceptBit('Cr4Write')) out.push(...crItems(4, mask(r.cr4Mask, s.cr4)));
      if (r.control & hvCrInterceptBit('GdtrWrite')) out.push({ kind: 'table', table: 'gdtr', name: 'GDTR' });
      if (r.control & hvCrInterceptBit('IdtrWrite')) out.push({ kind: 'table', table: 'idtr', name: 'IDTR' });
      return out;
    },
  };
}

/** The mechanisms a policy brings into play: Heki always (its guest pins), the others where the policy has them. */
export function mechanismsOf(policy: CompiledPolicy): Mechanism[] {
  return [
    heki(policy),
    ...(policy.vmOptions.andersen === true ? [andersen(policy)] : []),
    ...(policy.crFilter !== undefined ? [crFilter(policy)] : []),
    ...(policy.registerIntercepts !== undefined ? [registerIntercepts(policy)] : []),
  ];
}
