/**
 * Control-role ops (PROTOCOL.md §6): the KVM API one to one (checkExtension, enableCap,
 * setMsrFilter, get/set MSRs and registers), plus the VMM's own services (VMs made and
 * dropped, events, subscriptions, reset, snapshots, stats, how MSR exits are answered and
 * holding a vCPU in an exit). Only a connection that said hello as `control` with a token
 * reaches them.
 */
import { array, bin, bool, i32, int, nullable, object, oneOf, optional, string, u32, u64 } from '../schema/index.js';
import {
  event, eventName, namedScalars, pinboxAnswer, regs, regsPatch, sregs, sregsPatch, vmName,
} from './common.js';
import { msrExitReply } from './msr-exit-reply.js';
import { type OpSpec, op } from './op.js';

/**
 * Ranges one setMsrFilter request may carry. KVM's struct holds KVM_MSR_FILTER_MAX_RANGES (16);
 * the protocol lets a few more through so that the KVM model, not the wire, answers E2BIG/EINVAL
 * the way the kernel would.
 */
export const MAX_FILTER_RANGES = 64;
/**
 * Bytes of one range's bitmap a setMsrFilter request may carry: the bitmap of 65536 MSRs. KVM
 * itself takes a range of at most KVM_MSR_FILTER_MAX_BITMAP_SIZE (0x600) bytes; as with the
 * ranges, the wire lets more through so that the KVM model answers EINVAL as the kernel does.
 */
export const MAX_FILTER_BITMAP_BYTES = 0x2000;
export const MAX_MSR_ENTRIES = 1024;
export const MAX_EVENTS = 10000;
export const MAX_SUBSCRIBED_EVENT_NAMES = 64;
/** Snapshots are bounded by the frame maximum; this is only bin32's own bound. */
export const MAX_SNAPSHOT_BYTES = 0xffff_ffff;
/** A createVm policy document (JSON text) at most; the frame maximum bounds it first. */
export const MAX_POLICY_BYTES = 1 << 20;

/**
 * Runs in each list of one getMemoryAttributes answer at most (about 400 KiB of msgpack at
 * worst): a VM with more is read in pieces, each asked for from the last one's `next`.
 */
export const MAX_MEMORY_RUNS = 4096;

const empty = object({});
const vcpuTarget = { vm: vmName, vcpu: u32 };
const msrEntry = object({ index: u32, value: u64 });

export const CONTROL_OPS = {
  checkExtension: op('control', object({ cap: u32, vm: optional(vmName) }), object({ value: i32 })),
  enableCap: op(
    'control',
    object({ vm: vmName, cap: u32, args: optional(array(u64, 0, 4)), flags: optional(u32) }),
    empty,
  ),
  setMsrFilter: op(
    'control',
    object({
      vm: vmName,
      flags: u32,
      ranges: array(
        // nil: no bitmap, a NULL pointer (KVM fails the copy with EFAULT unless nmsrs is 0).
        object({ flags: u32, base: u32, nmsrs: u32, bitmap: nullable(bin(0, MAX_FILTER_BITMAP_BYTES)) }),
        0,
        MAX_FILTER_RANGES,
      ),
    }),
    empty,
  ),
  getMsrs: op(
    'control',
    object({ ...vcpuTarget, indices: array(u32, 1, MAX_MSR_ENTRIES) }),
    object({ nmsrs: u32, entries: array(msrEntry, 0, MAX_MSR_ENTRIES) }),
  ),
  setMsrs: op('control', object({ ...vcpuTarget, entries: array(msrEntry, 1, MAX_MSR_ENTRIES) }), object({ nmsrs: u32 })),
  getRegs: op('control', object(vcpuTarget), object({ regs })),
  setRegs: op('control', object({ ...vcpuTarget, regs: regsPatch }), empty),
  getSregs: op('control', object(vcpuTarget), object({ sregs })),
  setSregs: op('control', object({ ...vcpuTarget, sregs: sregsPatch }), empty),
  initVcpu: op('control', object(vcpuTarget), empty),
  /**
   * Pushes of the events named (all if absent) of one VM (which need not exist yet) or all;
   * `completions`: also the HLT that ends each guest operation in the VMM's own code.
   */
  subscribe: op(
    'control',
    object({ vm: optional(vmName), events: optional(array(eventName, 1, MAX_SUBSCRIBED_EVENT_NAMES)), completions: optional(bool) }),
    object({ sub: u32 }),
  ),
  unsubscribe: op('control', object({ sub: u32 }), empty),
  events: op(
    'control',
    object({ vm: optional(vmName), since: optional(u64), limit: optional(int(1, MAX_EVENTS)) }),
    object({ events: array(event, 0, MAX_EVENTS), next: u64 }),
  ),
  resetVm: op('control', object({ vm: vmName }), empty),
  /** Guest operations wait until resumeVm (one in flight stops before its next guest instruction). */
  pauseVm: op('control', object({ vm: vmName }), empty),
  resumeVm: op('control', object({ vm: vmName }), empty),
  snapshot: op('control', object({ vm: vmName }), object({ snapshot: bin(0, MAX_SNAPSHOT_BYTES) })),
  restore: op('control', object({ vm: vmName, snapshot: bin(0, MAX_SNAPSHOT_BYTES) }), empty),
  stats: op(
    'control',
    empty,
    object({ vms: u32, connections: u32, uptimeMs: u64, requests: u64, extra: optional(namedScalars) }),
  ),
  setMsrExitReply: op('control', object({ vm: vmName, msr: nullable(msrExitReply) }), empty),
  /**
   * A VM of its own policy (JSON text, as a policy file holds it; absent: the server's), in
   * the state that policy gives. Refuses a name in use unless `replace`.
   */
  createVm: op(
    'control',
    object({ vm: vmName, policy: optional(string(1, MAX_POLICY_BYTES)), replace: optional(bool), guestToken: optional(string(1, 256)) }),
    object({ vcpus: u32, profile: oneOf(['v2', 'v3']) }),
  ),
  destroyVm: op('control', object({ vm: vmName }), empty),
  /**
   * PINBOX_SET_CR_FILTER (docs/cr-filter.md): the CR0 and CR4 bits whose change by a guest write
   * exits to the VMM; both 0 clears the filter. Refused whole (a refused one leaves the old).
   */
  setCrFilter: op('control', object({ vm: vmName, flags: optional(u32), cr0Mask: u64, cr4Mask: u64, xcr0Mask: optional(u64) }), empty),
  /** How the VMM answers the VM's CR-filter exits from now on (null: the policy's crFilter.answer again). */
  setCrExitReply: op('control', object({ vm: vmName, reply: nullable(pinboxAnswer) }), empty),
  /**
   * KVM_SET_MEMORY_ATTRIBUTES with pinbox's out-of-tree RWX attributes (docs/memory-protection.md):
   * KVM_MEMORY_ATTRIBUTE_PINBOX_NR/NW/NX/NUX (bits 24–27) on [address, address + size); 0 clears.
   * A refusal is kvm_error EINVAL with the KVM's reason, and nothing changes.
   */
  setMemoryAttributes: op('control', object({ vm: vmName, address: u64, size: u64, attributes: u64 }), empty),
  /**
   * The VM's memory protections: the attributes user space set, the effective permissions of all
   * guest memory (Heki's locks included) as runs of equal rights, MBEC, and how refusals are
   * delivered. From `address` (page-aligned; 0 unless given) on, at most MAX_MEMORY_RUNS runs in
   * each list: `next`, when present, is where both lists were cut and the rest begins.
   */
  getMemoryAttributes: op(
    'control',
    object({ vm: vmName, address: optional(u64) }),
    object({
      attributes: array(object({ address: u64, size: u64, attributes: u64 }), 0, MAX_MEMORY_RUNS),
      permissions: array(object({ address: u64, size: u64, read: bool, write: bool, exec: bool, userExec: bool }), 0, MAX_MEMORY_RUNS),
      mbec: bool,
      delivery: oneOf(['exit', 'inject']),
      next: optional(u64),
    }),
  ),
  /** The vCPU's next guest operation stops at its first user-space exit until releaseExit. */
  holdExit: op('control', object(vcpuTarget), empty),
  /** `held`: an exit was held and now goes on; false: none was (an unspent hold is dropped). */
  releaseExit: op('control', object(vcpuTarget), object({ held: bool })),
} satisfies Record<string, OpSpec>;

export type ControlOp = keyof typeof CONTROL_OPS;
