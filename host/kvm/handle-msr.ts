/**
 * RDMSR/WRMSR intercepts and their user-space completions: __kvm_emulate_rdmsr(),
 * __kvm_emulate_wrmsr(), kvm_msr_user_space(), complete_fast_rdmsr() and
 * complete_fast_msr_access() in arch/x86/kvm/msrs.c; spec/msr-filter.md §2.4.
 *
 * The CPL check has been made by the core (RDMSR/WRMSR at CPL > 0 #GP without an
 * intercept). The flow: filter → table → success, or the failure's reason → exit if user
 * space asked for that reason, else #GP(0) with RIP on the instruction.
 */
import { KvmError } from './errors.js';
import { kvmEmulateMsrAccess, type IgnoredMsrReporter } from './msr-table.js';
import { splitU64, U64_MAX } from './u64.js';
import { msrUserSpaceExitReason } from './user-space-msr.js';
import { Completion, type VcpuArch } from './vcpu-arch.js';
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

/** Fills kvm_run for an MSR exit; the completion runs at the next KVM_RUN. */
function msrExit(v: VcpuArch, write: boolean, reason: number, index: number, data: bigint): void {
  const run = v.run;
  run.setExit(write ? 'KVM_EXIT_X86_WRMSR' : 'KVM_EXIT_X86_RDMSR');
  run.msr.error = 0;
  run.msr.reason = reason;
  run.msr.index = index;
  run.msr.data = data;
  v.pending = write ? Completion.Wrmsr : Completion.Rdmsr;
}

/** Loads EDX:EAX with a 64-bit value; the upper halves of RAX and RDX become 0. */
function writeEdxEax(v: VcpuArch, data: bigint): void {
  const halves = splitU64(data);
  v.cpu.writeGpr32(RAX, halves.lo);
  v.cpu.writeGpr32(RDX, halves.hi);
}

/** Handles RDMSR; true when it ends in an exit to user space. */
export function handleRdmsr(v: VcpuArch, index: number): boolean {
  const a = v.msrAccess;
  a.index = index;
  const r = kvmEmulateMsrAccess(v, v.vm.msrFilter, a, false, ignoredReporter(v));
  if (r === 0) {
    if (v.vm.trace.active) traceMsr(v, false, index, a.data, false);
    writeEdxEax(v, a.data);
    v.cpu.skipInstruction();
    return false;
  }
  const reason = msrUserSpaceExitReason(v.vm.userSpaceMsrMask, r);
  if (reason !== 0) {
    // KVM zeroes `data` before a read exit: a reply that leaves it alone reads 0.
    msrExit(v, false, reason, index, 0n);
    return true;
  }
  if (v.vm.trace.active) traceMsr(v, false, index, 0n, true);
  v.injectGp();
  return false;
}

/** Handles WRMSR; true when it ends in an exit to user space. */
export function handleWrmsr(v: VcpuArch, index: number, value: bigint): boolean {
  const a = v.msrAccess;
  a.index = index;
  a.data = value;
  const r = kvmEmulateMsrAccess(v, v.vm.msrFilter, a, true, ignoredReporter(v));
  if (r === 0) {
    if (v.vm.trace.active) traceMsr(v, true, index, value, false);
    v.cpu.skipInstruction();
    return false;
  }
  const reason = msrUserSpaceExitReason(v.vm.userSpaceMsrMask, r);
  if (reason !== 0) {
    msrExit(v, true, reason, index, value);
    return true;
  }
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

/**
 * MODEL DECISION: the C fields cannot hold what a JS object can, so KVM_RUN checks the reply
 * user space wrote before it changes anything (before the dirty sync registers are loaded, too):
 * a reply that fails here leaves the vCPU exactly as it was.
 */
export function checkMsrReply(v: VcpuArch, read: boolean): void {
  if (replyError(v) === 0 && read) replyData(v);
}

/**
 * complete_fast_rdmsr(): with error 0, EDX:EAX take `data` and the RDMSR retires; any other
 * error byte (not just 1) injects #GP(0) with RIP and EDX:EAX unchanged. The filter is not
 * consulted again: a reply to an access the current filter would allow still applies.
 */
export function completeRdmsr(v: VcpuArch): void {
  const error = replyError(v);
  if (error === 0) writeEdxEax(v, replyData(v));
  completeMsrAccess(v, error);
}

/** complete_fast_msr_access(): WRMSR retires without KVM performing the write, or #GP(0). */
export function completeWrmsr(v: VcpuArch): void {
  completeMsrAccess(v, replyError(v));
}

/** kvm_complete_insn_gp() */
function completeMsrAccess(v: VcpuArch, error: number): void {
  v.pending = Completion.None;
  if (error !== 0) v.injectGp();
  else v.cpu.skipInstruction();
}
