/**
 * A guest write to CR0 or CR4 — by MOV to CR, LMSW or CLTS — goes through every mechanism that
 * may stand in its way, in one order (docs/cr-filter.md, "Order"):
 *
 *   1. the vCPU's secure register intercepts (reg-intercepts.ts): the higher trust level, the
 *      guest's own monitor, sees the write first and may allow, deny or emulate it;
 *   2. the VM's CR filter (cr-filter.ts): host user space, likewise;
 *   3. Heki's pins (heki.ts, heki_check_cr()): refused in the kernel, with or without an exit;
 *   4. kvm_set_cr0()/kvm_set_cr4() (control-registers.ts), which hold Andersen's pins and the
 *      architectural checks — or, for LMSW and CLTS, what handle_cr() does with them.
 *
 * A stage that exits to user space stores the write in vcpu->arch (VcpuArch.crWrite) and a
 * completion; user space's answer resumes the write at the next stage — with the guest's value,
 * or with the one user space gave (a substituted value is then loaded as a MOV to CR would
 * load it, whichever instruction wrote) — or ends it with #GP(0), RIP on the instruction. A
 * later stage may exit in turn from inside the completion: it then returns true, and KVM_RUN
 * returns that exit without running the guest (complete-userspace-io.ts).
 */
import {
  KVM_HEKI_EXIT_REASON_CR0, KVM_HEKI_EXIT_REASON_CR4, MSR_EFER, PINBOX_ANSWER_DENY, PINBOX_ANSWER_VALUE,
  PINBOX_CR_ACCESS_CLTS, PINBOX_CR_ACCESS_LMSW, X86_CR0_TS,
} from '../../protocol/abi.js';
import { hex } from '../../protocol/notation.js';
import type { ControlRegister } from '../x86/guest-cpu.js';
import { kvmSetCr0, kvmSetCr4, type CrWriteContext } from './control-registers.js';
import { completeHekiDenialExit, hekiExitCr } from './heki-exits.js';
import { checkCrFilterReply, checkRegInterceptReply, crFilterExit, regInterceptExit } from './pinbox-exits.js';
import type { VcpuArch } from './vcpu-arch.js';

/** The write in flight: vcpu->arch's copy of what the guest asked for. */
export interface ControlRegisterWrite {
  cr: 0 | 4;
  /** PINBOX_CR_ACCESS_MOV, _CLTS or _LMSW. */
  access: number;
  value: bigint;
  /** User space gave the value: load it as MOV to CR would. */
  substituted: boolean;
}

const enum Stage {
  Intercept,
  Filter,
  Heki,
  Load,
}

/** The vCPU state kvm_set_cr*() read, taken from the core's live registers. */
export function crContext(v: VcpuArch): CrWriteContext {
  const cpu = v.cpu;
  return {
    cr0: cpu.readCr(0),
    cr3: cpu.readCr(3),
    cr4: cpu.readCr(4),
    efer: cpu.readMsr(MSR_EFER)!,
    csL: cpu.is64BitMode(),
    cr4ReservedBits: v.cr4ReservedBits,
    maxPhysAddr: v.cpuid.maxPhysAddr,
    pins: v.vm.andersen ? v.andersenPins : null,
  };
}

/** A guest write to CR0/CR4, from the first stage; true when it ends in an exit to user space. */
export function kvmWriteCr(v: VcpuArch, cr: 0 | 4, access: number, value: bigint): boolean {
  const w = v.crWrite;
  w.cr = cr;
  w.access = access;
  w.value = value;
  w.substituted = false;
  return writeFrom(v, Stage.Intercept);
}

function writeFrom(v: VcpuArch, stage: Stage): boolean {
  const w = v.crWrite;
  const current = v.cpu.readCr(w.cr);
  if (stage <= Stage.Intercept && v.regIntercepts.armed) {
    const bit = v.regIntercepts.crWrite(w.cr, current, w.value);
    if (bit >= 0) {
      return regInterceptExit(v, bit, { msr: 0, oldValue: current, newValue: w.value, oldLimit: 0, newLimit: 0 }, completeRegInterceptCrExit);
    }
  }
  if (stage <= Stage.Filter) {
    const filter = v.vm.crFilter;
    if (filter !== null && filter.catches(w.cr, current, w.value)) {
      return crFilterExit(v, w.cr, w.access, current, w.value, completeCrFilterExit);
    }
  }
  if (stage <= Stage.Heki) {
    const heki = hekiCheckCr(v, w.cr, w.value);
    if (heki !== Heki.Allowed) return heki === Heki.Exit;
  }
  load(v, w);
  return false;
}

/** complete_cr_filter_exit(): user space's answer to KVM_EXIT_PINBOX_CR_FILTER. */
function completeCrFilterExit(v: VcpuArch): boolean {
  const f = v.run.cr_filter;
  return resume(v, f.action, f.value, Stage.Heki);
}
completeCrFilterExit.checkReply = checkCrFilterReply;

/** The monitor's answer to a CR0/CR4 intercept. */
function completeRegInterceptCrExit(v: VcpuArch): boolean {
  const r = v.run.reg_intercept;
  return resume(v, r.action, r.value, Stage.Filter);
}
completeRegInterceptCrExit.checkReply = checkRegInterceptReply;

function resume(v: VcpuArch, action: number, value: bigint, next: Stage): boolean {
  if (action === PINBOX_ANSWER_DENY) {
    v.injectGp();
    return false;
  }
  if (action === PINBOX_ANSWER_VALUE) {
    v.crWrite.value = value;
    v.crWrite.substituted = true;
  }
  return writeFrom(v, next);
}

const enum Heki {
  Allowed,
  /** Denied: #GP(0) queued, the guest continues into its handler. */
  Faulted,
  /** Denied: KVM_EXIT_HEKI_DENIAL; its completion injects the #GP(0). */
  Exit,
}

/**
 * heki_check_cr(): a write that clears a pinned bit is refused — with a KVM_EXIT_HEKI_DENIAL if
 * user space asked to hear of this register's denials (heki_exit_cr()), else at once with the
 * #GP(0) that exit's completion would deliver.
 */
function hekiCheckCr(v: VcpuArch, cr: 0 | 4, value: bigint): Heki {
  if (!v.vm.heki.deniesWrite(cr, value)) return Heki.Allowed;
  const trace = v.vm.trace;
  if (trace.active) {
    trace.emit('kvm_heki_blocked', { vcpu_id: v.id, cr, val: value, message: `heki: Blocked CR${cr} update: ${hex(value)}` });
  }
  const reason = cr === 0 ? KVM_HEKI_EXIT_REASON_CR0 : KVM_HEKI_EXIT_REASON_CR4;
  if (hekiExitCr(v, 'KVM_EXIT_HEKI_DENIAL', reason, value)) return Heki.Exit;
  completeHekiDenialExit(v);
  return Heki.Faulted;
}

/** kvm_complete_insn_gp() for a CR write that kvm_set_cr*() judged. */
export function loadOrFault(v: VcpuArch, cr: ControlRegister, value: bigint | undefined): void {
  if (value === undefined) {
    v.injectGp();
    return;
  }
  v.cpu.commitCr(cr, value);
  v.skipEmulatedInstruction();
}

/** The last stage: what handle_cr() does with the write once nothing stands in its way. */
function load(v: VcpuArch, w: ControlRegisterWrite): void {
  if (w.access === PINBOX_CR_ACCESS_LMSW && !w.substituted) {
    // kvm_lmsw() ignores kvm_set_cr0()'s verdict — LMSW can only set PE and touch MP/EM/TS,
    // which never makes CR0 invalid — and retires the instruction.
    const loaded = kvmSetCr0(crContext(v), w.value);
    if (loaded !== undefined) v.cpu.commitCr(0, loaded);
    v.skipEmulatedInstruction();
    return;
  }
  if (w.access === PINBOX_CR_ACCESS_CLTS && !w.substituted) {
    // CLTS: vmx_set_cr0() directly, no check.
    if ((v.cpu.readCr(0) & X86_CR0_TS) !== 0n) v.cpu.commitCr(0, w.value);
    v.skipEmulatedInstruction();
    return;
  }
  loadOrFault(v, w.cr, w.cr === 0 ? kvmSetCr0(crContext(v), w.value) : kvmSetCr4(crContext(v), w.value));
}
