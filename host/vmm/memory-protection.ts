/**
 * The VM's guest-memory protections as user space drives them (docs/memory-protection.md, "The
 * VMM"): the policy's memory section applied through the KVM API when the VM is made and after
 * every VM reset, a control client's KVM_SET_MEMORY_ATTRIBUTES, and the view of what holds.
 * MBEC, the delivery policy and the attributes are pinbox extensions of the KVM model: on another
 * backend a policy that needs them is refused with ENOTTY, as an ioctl the kernel lacks, rather
 * than run unprotected.
 */
import { KVM_CAP_PINBOX_MBEC, KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, PINBOX_MEMORY_FAULT_EXIT, PINBOX_MEMORY_FAULT_INJECT_PF } from '../../protocol/abi.js';
import { KvmError } from '../kvm/api/errors.js';
import type { MemoryAttributeRange, MemoryPermissionRange } from '../kvm/api/model.js';
import type { KvmVm } from '../kvm/api/vm.js';
import type { MemoryPolicy } from './policy/index.js';

/** What vmm.memoryAttributes / getMemoryAttributes report. */
export interface MemoryAttributesView {
  /** The attributes user space set, as maximal ranges of equal attributes (KVM has no GET ioctl). */
  readonly attributes: readonly MemoryAttributeRange[];
  /** The effective second stage over all guest memory, Heki's locks included, as maximal runs of equal rights. */
  readonly permissions: readonly MemoryPermissionRange[];
  readonly mbec: boolean;
  readonly delivery: 'exit' | 'inject';
  /** Where the lists were cut (at `limit` runs in either): ask again from here for the rest. */
  readonly next?: bigint;
}

/** What `vmm.setMemoryAttributes` takes: struct kvm_memory_attributes without flags (always 0). */
export interface MemoryAttributesRequest {
  readonly address: bigint;
  readonly size: bigint;
  readonly attributes: bigint;
}

/**
 * The policy's memory section, through the KVM API in the order compiled.ts gives: MBEC before
 * any protection (its meaning changes with it), the delivery, then each range. compile.ts has
 * checked every range against what KVM takes, so none is refused part-way.
 */
export function applyMemoryPolicy(vm: KvmVm, policy: MemoryPolicy): void {
  if (!policy.applies) return;
  if (vm.model === undefined) {
    throw new KvmError('ENOTTY', 'KVM_SET_MEMORY_ATTRIBUTES', 'the policy\'s memory section needs the KVM model: pinbox\'s RWX attributes, MBEC and the memory-fault delivery are extensions of it');
  }
  if (policy.mbec) vm.enableCap(KVM_CAP_PINBOX_MBEC, [1n]);
  if (policy.delivery !== undefined) {
    vm.enableCap(KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [BigInt(policy.delivery === 'exit' ? PINBOX_MEMORY_FAULT_EXIT : PINBOX_MEMORY_FAULT_INJECT_PF)]);
  }
  for (const r of policy.protect) vm.setMemoryAttributes!({ address: r.address, size: r.size, attributes: r.attributes, flags: 0n });
}

/** KVM_SET_MEMORY_ATTRIBUTES for a control client: the KVM's own checks and EINVAL texts. */
export function setMemoryAttributes(vm: KvmVm, request: MemoryAttributesRequest): void {
  const set = vm.setMemoryAttributes?.bind(vm);
  if (set === undefined) throw new KvmError('ENOTTY', 'KVM_SET_MEMORY_ATTRIBUTES', 'this KVM has no KVM_SET_MEMORY_ATTRIBUTES');
  if (typeof request !== 'object' || request === null) throw new KvmError('EINVAL', 'KVM_SET_MEMORY_ATTRIBUTES', 'expected { address, size, attributes }');
  set({ address: request.address, size: request.size, attributes: request.attributes, flags: 0n });
}

/**
 * The protections in force: the model's view (a real kernel has no getter for any of it), from
 * the page-aligned `address` on. With a `limit`, each list holds at most that many runs and both
 * end at the same GPA, `next`, where the rest begins: a guest that fragments its memory (a Heki
 * v2 lock on every other page) then costs a reader pieces of bounded size, never one answer the
 * size of its memory.
 */
export function memoryAttributesView(vm: KvmVm, memorySize: number, address = 0n, limit = Infinity): MemoryAttributesView {
  const model = vm.model;
  if (model === undefined) {
    throw new KvmError('ENOTTY', 'pinbox GET_MEMORY_ATTRIBUTES', 'only the KVM model can show memory attributes (KVM has no GET ioctl)');
  }
  const { mbec, delivery } = model.memoryFaultSettings;
  const end = BigInt(memorySize);
  if (typeof address !== 'bigint' || address < 0n || address % 4096n !== 0n || address > end) {
    throw new KvmError('EINVAL', 'pinbox GET_MEMORY_ATTRIBUTES', `address must be page-aligned and within guest memory (0x${end.toString(16)} bytes)`);
  }
  // One run more than asked says whether, and where, a list goes on; the attributes are looked
  // for only where the permissions reach, so that each piece costs the memory it covers.
  const permissions = model.memoryPermissions(address, end - address, limit + 1);
  const reach = permissions[limit]?.address ?? end;
  const attributes = model.getMemoryAttributes(address, reach - address, limit + 1);
  const cut = attributes[limit]?.address ?? permissions[limit]?.address;
  if (cut === undefined) return { attributes, permissions, mbec, delivery };
  const upTo = <R extends { address: bigint; size: bigint }>(runs: R[]): R[] => runs.filter((r) => r.address < cut)
    .map((r) => (r.address + r.size > cut ? { ...r, size: cut - r.address } : r));
  return { attributes: upTo(attributes), permissions: upTo(permissions), mbec, delivery, next: cut };
}
