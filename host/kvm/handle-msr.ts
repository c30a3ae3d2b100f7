/**
 * RDMSR/WRMSR intercepts and their user-space completions: kvm_emulate_rdmsr() and
 * kvm_emulate_wrmsr() (the exit handlers, over __kvm_emulate_rdmsr/wrmsr()), then
 * kvm_msr_user_space() (user-space-msr.ts), complete_fast_rdmsr() and complete_fast_msr_access()
 * in arch/x86/kvm/msrs.c; docs/msr-filter.md §2.4.
 *
 * The CPL check has been made by the core (RDMSR/WRMSR at CPL > 0 #GP without an
 * intercept). The flow: the vCPU's secure register intercepts (pinbox's extension,
 * reg-intercepts.ts: the monitor decides first) → filter → table → success, or the failure's
 * reason → exit if user space asked for that reason, else #GP(0) with RIP on the instruction.
 */
import { KvmError } from './api/errors.js';
import { PINBOX_ANSWER_DENY, PINBOX_ANSWER_VALUE } from '../../protocol/abi.js';
import { kvmEmulateMsrAccess, kvmMsrIo, type IgnoredMsrReporter } from './msr-table.js';
import { checkRegInterceptReply, regInterceptExit } from './pinbox-exits.js';
import { splitU64, U64_MAX } from './u64.js';
import { kvmMsrUserSpace } from './user-space-msr.js';
import type { VcpuArch } from './vcpu-arch.js';
import { hex } from '../../protocol/notation.js';
import { RAX, RDX } from '../x86/state.js';

function ignoredReporter(v: VcpuArch): IgnoredMsrReporter | undefined {
  const trace = v.vm.trace;
  if (!trace.enabled('kvm_msr_ignored')) return undefined;
  return (write, ecx, data) =>
    trace.emit('kvm_msr_ignored', {
      vcpu_id: v.id,
      write,
      ecx,
      data,
      message: `ignored ${write ? 'wrmsr' : 'rdmsr'}: ${hex(ecx)} data ${hex(data)}`,
    });
}

function traceMsr(v: VcpuArch, write: boolean, ecx: number, data: bigint, exception: boolean): void {
  v.vm.trace.emit('kvm_msr', { vcpu_id: v.id, write, ecx, data, exception });
}

/** Loads EDX:EAX with a 64-bit value; the upper halves of RAX and RDX become 0. */
function writeEdxEax(v: VcpuArch, data: bigint): void {
  const halves = splitU64(data);
  v.cpu.writeGpr32(RAX, halves.lo);
  v.cpu.writeGpr32(RDX, halves.hi);
}

/** What the register-intercept completion needs of the access it stopped: vcpu->arch's copy. */
export interface InterceptedMsr {
  index: number;
  write: boolean;
  value: bigint;
}

/** A host-initiated read of the MSR's value now, for the intercept's old_value (0 if KVM cannot read it). */
function currentMsrValue(v: VcpuArch, index: number): bigint {
  const out: { index: number; data: bigint }[] = [];
  kvmMsrIo(v, { index, data: 0n, hostInitiated: true }, [{ index, data: 0n }], false, out);
  return out[0]?.data ?? 0n;
}

/**
 * The vCPU's register intercepts: whether this access exits to the monitor first. Only looked
 * at while any intercept is armed.
 */
function msrIntercepted(v: VcpuArch, index: number, write: boolean, value: bigint): boolean {
  const current = currentMsrValue(v, index);
  const bit = v.regIntercepts.msrAccess(index, write, current, value);
  if (bit < 0) return false;
  const m = v.interceptedMsr;
  m.index = index;
  m.write = write;
  m.value = value;
  return regInterceptExit(v, bit, { msr: index, oldValue: current, newValue: write ? value : 0n, oldLimit: 0, newLimit: 0 }, completeRegInterceptMsrExit);
}

/**
 * The monitor's answer to an MSR intercept: deny is #GP(0); allow goes on to KVM's own path (the
 * MSR filter, the table, user-space MSR exits); a value is what a RDMSR returns, or what a WRMSR
 * writes in place of the guest's (through KVM's path still).
 */
function completeRegInterceptMsrExit(v: VcpuArch): boolean {
  const r = v.run.reg_intercept;
  const m = v.interceptedMsr;
  if (r.action === PINBOX_ANSWER_DENY) {
    v.injectGp();
    return false;
  }
  const value = r.action === PINBOX_ANSWER_VALUE ? r.value : m.value;
  if (m.write) return emulateWrmsr(v, m.index, value);
  if (r.action !== PINBOX_ANSWER_VALUE) return emulateRdmsr(v, m.index);
  writeEdxEax(v, value);
  v.skipEmulatedInstruction();
  return false;
}
completeRegInterceptMsrExit.checkReply = checkRegInterceptReply;

/** kvm_emulate_rdmsr(): true when RDMSR ends in an exit to user space. */
export function kvmEmulateRdmsr(v: VcpuArch, index: number): boolean {
  if (v.regIntercepts.armed && msrIntercepted(v, index, false, 0n)) return true;
  return emulateRdmsr(v, index);
}

function emulateRdmsr(v: VcpuArch, index: number): boolean {
  const a = v.msrAccess;
  a.index = index;
  const r = kvmEmulateMsrAccess(v, v.vm.msrFilter, a, false, ignoredReporter(v));
  if (r === 0) {
    if (v.vm.trace.active) traceMsr(v, false, index, a.data, false);
    writeEdxEax(v, a.data);
    v.skipEmulatedInstruction();
    return false;
  }
  // KVM zeroes `data` before a read exit: a reply that leaves it alone reads 0.
  if (kvmMsrUserSpace(v, index, 'KVM_EXIT_X86_RDMSR', 0n, completeFastRdmsr, r)) return true;
  if (v.vm.trace.active) traceMsr(v, false, index, 0n, true);
  v.injectGp();
  return false;
}

/** kvm_emulate_wrmsr(): true when WRMSR ends in an exit to user space. */
export function kvmEmulateWrmsr(v: VcpuArch, index: number, value: bigint): boolean {
  if (v.regIntercepts.armed && msrIntercepted(v, index, true, value)) return true;
  return emulateWrmsr(v, index, value);
}

function emulateWrmsr(v: VcpuArch, index: number, value: bigint): boolean {
  const a = v.msrAccess;
  a.index = index;
  a.data = value;
  const r = kvmEmulateMsrAccess(v, v.vm.msrFilter, a, true, ignoredReporter(v));
  if (r === 0) {
    if (v.vm.trace.active) traceMsr(v, true, index, value, false);
    v.skipEmulatedInstruction();
    return false;
  }
  if (kvmMsrUserSpace(v, index, 'KVM_EXIT_X86_WRMSR', value, completeFastMsrAccess, r)) return true;
  // "Signal all other negative errors to userspace": KVM_RUN fails, the WRMSR stays put.
  if (r < 0) throw KvmError.fromNegativeErrno(r, 'KVM_RUN', `WRMSR ${hex(index)} <- ${hex(value)} failed in KVM`);
  if (v.vm.trace.active) traceMsr(v, true, index, value, true);
  v.injectGp();
  return false;
}

/**
 * The `error` byte user space left in kvm_run, checked before anything changes: the C
 * field is a __u8, so only 0..255 can be there.
 */
function replyError(v: VcpuArch): number {
  const error: unknown = v.run.msr.error;
  if (typeof error !== 'number' || !Number.isInteger(error) || error < 0 || error > 255) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.msr.error must be an integer 0..255, got ${String(error)}`);
  }
  return error;
}

function replyData(v: VcpuArch): bigint {
  const data: unknown = v.run.msr.data;
  if (typeof data !== 'bigint' || data < 0n || data > U64_MAX) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.msr.data must be a u64 bigint, got ${String(data)}`);
  }
  return data;
}

/** The reply to a RDMSR exit: an error byte, and with error 0 the value read. */
function checkRdmsrReply(v: VcpuArch): void {
  if (replyError(v) === 0) replyData(v);
}

/**
 * complete_fast_rdmsr(): with error 0, EDX:EAX take `data` (complete_userspace_rdmsr()); then, as
 * for a WRMSR, complete_fast_msr_access(). The filter is not consulted again: a reply to an access
 * the current filter would allow still applies.
 */
export function completeFastRdmsr(v: VcpuArch): boolean {
  if (replyError(v) === 0) writeEdxEax(v, replyData(v));
  return completeFastMsrAccess(v);
}
completeFastRdmsr.checkReply = checkRdmsrReply;

/**
 * complete_fast_msr_access(), kvm_complete_insn_gp() on VMX: with error 0 the RDMSR/WRMSR retires
 * (KVM does not perform a write user space handled); any other error byte (not just 1) injects
 * #GP(0) with RIP — and EDX:EAX — unchanged.
 */
export function completeFastMsrAccess(v: VcpuArch): boolean {
  if (replyError(v) !== 0) v.injectGp();
  else v.skipEmulatedInstruction();
  return false;
}
completeFastMsrAccess.checkReply = replyError;
