/**
 * KVM_CAP_SYNC_REGS: `kvm_run.s.regs` carries the vCPU's registers across KVM_RUN, so that a
 * VMM that touches a few registers per exit needs no KVM_GET_REGS / KVM_SET_REGS round trip
 * (Documentation/virt/kvm/api.rst, "kvm_valid_regs / kvm_dirty_regs"; x86.c store_regs() and
 * sync_regs()). User space sets `kvm_valid_regs` to ask KVM to store those register sets into
 * `s` at every exit, and sets `kvm_dirty_regs` after editing `s` to have KVM load them before
 * the guest runs again; KVM clears each dirty bit it has loaded.
 *
 * MODEL DECISION: pinbox syncs KVM_SYNC_X86_REGS and KVM_SYNC_X86_SREGS. It has no
 * KVM_GET/SET_VCPU_EVENTS, so KVM_SYNC_X86_EVENTS is not offered: KVM_CHECK_EXTENSION
 * answers REGS|SREGS (3) where x86 KVM answers KVM_SYNC_X86_VALID_FIELDS (7), and a mask
 * with the events bit is EINVAL, as any bit outside the valid fields is in
 * kvm_arch_vcpu_ioctl_run().
 *
 * Loading a dirty `s.regs` is __set_regs(): every register takes the value in `s.regs`.
 * pinbox writes only the registers whose value differs from what the vCPU holds — the same
 * result, and the point of the capability: a VMM that changes RCX and RIP pays for two
 * registers, not eighteen. It knows what the vCPU holds from the last store, and forgets it
 * whenever anything else may have changed the registers (KVM_SET_REGS, INIT, a KVM_RUN that
 * did not store them).
 */
import { KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS } from '../../protocol/abi.js';
import type { GuestCpu } from '../x86/guest-cpu.js';
import { GPR_NAMES, type Regs, type Sregs } from '../x86/state.js';
import { KvmError } from './errors.js';
import type { KvmRun } from './exits.js';
import { U64_MAX } from './u64.js';
import { checkRegs } from './vcpu-state.js';

/** The register sets pinbox syncs (see MODEL DECISION above). */
export const PINBOX_SYNC_REGS_FIELDS = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;

/** `struct kvm_sync_regs` (x86), without `events`. */
export interface KvmSyncRegs {
  regs: Regs;
  /** Undefined until KVM first stores the sregs (KVM_SYNC_X86_SREGS in kvm_valid_regs). */
  sregs: Sregs | undefined;
}

export function zeroRegs(): Regs {
  return {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
    rip: 0n, rflags: 0n,
  };
}

/** kvm_arch_vcpu_ioctl_run(): a bit outside the synced fields in either mask is EINVAL. */
export function checkSyncMasks(run: KvmRun): void {
  for (const name of ['kvm_valid_regs', 'kvm_dirty_regs'] as const) {
    const mask: unknown = run[name];
    if (typeof mask !== 'number' || !Number.isInteger(mask) || mask < 0 || (mask & ~PINBOX_SYNC_REGS_FIELDS) !== 0) {
      throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.${name} must hold only KVM_SYNC_X86_REGS|KVM_SYNC_X86_SREGS (0x${PINBOX_SYNC_REGS_FIELDS.toString(16)}), got ${String(mask)}`);
    }
  }
}

function isU64(v: unknown): v is bigint {
  return typeof v === 'bigint' && v >= 0n && v <= U64_MAX;
}

/**
 * sync_regs(): loads the dirty register sets from `s` before the guest runs. `setSregs` is the
 * vCPU's KVM_SET_SREGS (with its checks); a refused sregs load is EINVAL and leaves the bit set.
 */
export function syncRegs(run: KvmRun, cpu: GuestCpu, setSregs: (sregs: Sregs) => void): void {
  if ((run.kvm_dirty_regs & KVM_SYNC_X86_REGS) !== 0) {
    loadRegs(run, cpu);
    run.kvm_dirty_regs &= ~KVM_SYNC_X86_REGS;
  }
  if ((run.kvm_dirty_regs & KVM_SYNC_X86_SREGS) !== 0) {
    const sregs = run.s.sregs;
    if (sregs === undefined) throw new KvmError('EINVAL', 'KVM_RUN', 'KVM_SYNC_X86_SREGS is dirty but kvm_run.s.sregs was never stored');
    setSregs({ ...sregs });
    run.kvm_dirty_regs &= ~KVM_SYNC_X86_SREGS;
  }
}

/** __set_regs() from s.regs: every field checked first, then only the changed ones written. */
function loadRegs(run: KvmRun, cpu: GuestCpu): void {
  const regs = run.s.regs;
  const held = run.heldRegs;
  if (held === undefined) {
    checkRegs(regs);
    cpu.setRegs({ ...regs });
    return;
  }
  // One pass to check what changed (a refused value must leave every register as it was),
  // a second to write it. Unrolled: named property loads are what V8 optimises best.
  const changed =
    (regs.rax !== held.rax ? 1 << 0 : 0) | (regs.rcx !== held.rcx ? 1 << 1 : 0) | (regs.rdx !== held.rdx ? 1 << 2 : 0) |
    (regs.rbx !== held.rbx ? 1 << 3 : 0) | (regs.rsp !== held.rsp ? 1 << 4 : 0) | (regs.rbp !== held.rbp ? 1 << 5 : 0) |
    (regs.rsi !== held.rsi ? 1 << 6 : 0) | (regs.rdi !== held.rdi ? 1 << 7 : 0) | (regs.r8 !== held.r8 ? 1 << 8 : 0) |
    (regs.r9 !== held.r9 ? 1 << 9 : 0) | (regs.r10 !== held.r10 ? 1 << 10 : 0) | (regs.r11 !== held.r11 ? 1 << 11 : 0) |
    (regs.r12 !== held.r12 ? 1 << 12 : 0) | (regs.r13 !== held.r13 ? 1 << 13 : 0) | (regs.r14 !== held.r14 ? 1 << 14 : 0) |
    (regs.r15 !== held.r15 ? 1 << 15 : 0) | (regs.rip !== held.rip ? 1 << 16 : 0) | (regs.rflags !== held.rflags ? 1 << 17 : 0);
  if (changed === 0) return;
  for (let k = 0; k < 18; k++) {
    if ((changed & (1 << k)) === 0) continue;
    const name = k < 16 ? GPR_NAMES[k]! : k === 16 ? 'rip' : 'rflags';
    const v = regs[name];
    if (!isU64(v)) throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.s.regs.${name} must be a u64 bigint, got ${String(v)}`);
  }
  for (let k = 0; k < 16; k++) if ((changed & (1 << k)) !== 0) cpu.writeGpr(k, regs[GPR_NAMES[k]!]);
  if ((changed & (1 << 16)) !== 0) cpu.setRip(regs.rip);
  if ((changed & (1 << 17)) !== 0) cpu.setRflags(regs.rflags);
}

/** store_regs(): the register sets named in kvm_valid_regs, as the vCPU holds them now. */
export function storeRegs(run: KvmRun, cpu: GuestCpu, getSregs: () => Sregs): void {
  if ((run.kvm_valid_regs & KVM_SYNC_X86_REGS) !== 0) {
    const r = run.s.regs;
    const h = run.heldRegs ?? (run.heldRegs = zeroRegs());
    h.rax = r.rax = cpu.readGpr(0);
    h.rcx = r.rcx = cpu.readGpr(1);
    h.rdx = r.rdx = cpu.readGpr(2);
    h.rbx = r.rbx = cpu.readGpr(3);
    h.rsp = r.rsp = cpu.readGpr(4);
    h.rbp = r.rbp = cpu.readGpr(5);
    h.rsi = r.rsi = cpu.readGpr(6);
    h.rdi = r.rdi = cpu.readGpr(7);
    h.r8 = r.r8 = cpu.readGpr(8);
    h.r9 = r.r9 = cpu.readGpr(9);
    h.r10 = r.r10 = cpu.readGpr(10);
    h.r11 = r.r11 = cpu.readGpr(11);
    h.r12 = r.r12 = cpu.readGpr(12);
    h.r13 = r.r13 = cpu.readGpr(13);
    h.r14 = r.r14 = cpu.readGpr(14);
    h.r15 = r.r15 = cpu.readGpr(15);
    h.rip = r.rip = cpu.getRip();
    h.rflags = r.rflags = cpu.getRflags();
  } else {
    run.heldRegs = undefined;
  }
  if ((run.kvm_valid_regs & KVM_SYNC_X86_SREGS) !== 0) run.s.sregs = getSregs();
}
