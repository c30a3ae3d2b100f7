/**
 * Control-register intercepts: handle_cr() in arch/x86/kvm/vmx/vmx.c with the Heki check of
 * Heki RFC v2 02/19 + 03/19 (heki_check_cr(), docs/heki.md §2).
 *
 * MODEL DECISION (docs/heki.md §2.1, §2.2): the Heki check runs on *every* guest write path to CR0
 * and CR4 — MOV to CR, LMSW and CLTS — always before the architectural checks, and a
 * denied write gets exactly one #GP(0) with the CR unchanged and RIP on the instruction.
 * The RFC checks MOV only on VMX, and its emulator path can queue a second #GP (→ #DF);
 * neither is reproduced.
 */
import { KVM_HEKI_EXIT_REASON_CR0, KVM_HEKI_EXIT_REASON_CR4, MSR_EFER, X86_CR0_TS } from '../../protocol/abi.js';
import type { ControlRegister } from '../x86/guest-cpu.js';
import {
  cltsValue,
  kvmIsValidCr8,
  kvmLmswValue,
  kvmSetCr0,
  kvmSetCr3,
  kvmSetCr4,
  type CrWriteContext,
} from './control-registers.js';
import { completeHekiDenialExit, hekiExitCr } from './heki-exits.js';
import type { VcpuArch } from './vcpu-arch.js';
import { hex } from '../../protocol/notation.js';

/** The vCPU state kvm_set_cr*() read, taken from the core's live registers. */
function crContext(v: VcpuArch): CrWriteContext {
  const cpu = v.cpu;
  return {
    cr0: cpu.readCr(0),
    cr3: cpu.readCr(3),
    cr4: cpu.readCr(4),
    efer: cpu.readMsr(MSR_EFER)!,
    csL: cpu.is64BitMode(),
    cr4ReservedBits: v.cr4ReservedBits,
    maxPhysAddr: v.cpuid.maxPhysAddr,
  };
}

function traceCr(v: VcpuArch, rw: 'read' | 'write', cr: number, val: bigint): void {
  if (v.vm.trace.active) v.vm.trace.emit('kvm_cr', { vcpu_id: v.id, rw, cr, val });
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
function hekiCheckCr(v: VcpuArch, cr: number, value: bigint): Heki {
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
function loadOrFault(v: VcpuArch, cr: ControlRegister, value: bigint | undefined): void {
  if (value === undefined) {
    v.injectGp();
    return;
  }
  v.cpu.commitCr(cr, value);
  v.skipEmulatedInstruction();
}

/** MOV to CR0/CR2/CR3/CR4/CR8; true when it ends in an exit to user space. */
export function handleMovToCr(v: VcpuArch, cr: ControlRegister, value: bigint): boolean {
  traceCr(v, 'write', cr, value);
  if (cr === 0 || cr === 4) {
    const heki = hekiCheckCr(v, cr, value);
    if (heki !== Heki.Allowed) return heki === Heki.Exit;
  }
  switch (cr) {
    case 0:
      loadOrFault(v, 0, kvmSetCr0(crContext(v), value));
      return false;
    case 4:
      loadOrFault(v, 4, kvmSetCr4(crContext(v), value));
      return false;
    case 3:
      loadOrFault(v, 3, kvmSetCr3(crContext(v), value));
      return false;
    case 8:
      // kvm_set_cr8(): the TPR lives in the LAPIC; the core's CR8 is kept in step.
      if (!kvmIsValidCr8(value)) {
        v.injectGp();
        return false;
      }
      v.lapic.setCr8(value);
      loadOrFault(v, 8, value);
      return false;
    case 2:
      // CR2 has no checks (VMX does not even intercept it).
      loadOrFault(v, 2, value);
      return false;
  }
}

/** MOV from CR: CR8 is the LAPIC's TPR[7:4] (kvm_get_cr8()); the others are the CPU's. */
export function handleMovFromCr(v: VcpuArch, cr: ControlRegister, gpr: number): void {
  const value = cr === 8 ? v.lapic.getCr8() : v.cpu.readCr(cr);
  traceCr(v, 'read', cr, value);
  v.cpu.writeGpr(gpr, value);
  v.skipEmulatedInstruction();
}

/** CLTS: clears CR0.TS with no architectural check (vmx_set_cr0() directly). */
export function handleClts(v: VcpuArch): boolean {
  const cr0 = cltsValue(v.cpu.readCr(0));
  traceCr(v, 'write', 0, cr0);
  const heki = hekiCheckCr(v, 0, cr0);
  if (heki !== Heki.Allowed) return heki === Heki.Exit;
  if ((v.cpu.readCr(0) & X86_CR0_TS) !== 0n) v.cpu.commitCr(0, cr0);
  v.skipEmulatedInstruction();
  return false;
}

/**
 * LMSW: kvm_lmsw() ignores kvm_set_cr0()'s verdict — LMSW can only set PE and touch
 * MP/EM/TS, which never makes CR0 invalid — and retires the instruction.
 */
export function handleLmsw(v: VcpuArch, msw: number): boolean {
  const cr0 = kvmLmswValue(v.cpu.readCr(0), msw);
  traceCr(v, 'write', 0, cr0);
  const heki = hekiCheckCr(v, 0, cr0);
  if (heki !== Heki.Allowed) return heki === Heki.Exit;
  const loaded = kvmSetCr0(crContext(v), cr0);
  if (loaded !== undefined) v.cpu.commitCr(0, loaded);
  v.skipEmulatedInstruction();
  return false;
}
