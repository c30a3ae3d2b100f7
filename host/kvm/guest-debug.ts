/**
 * KVM_SET_GUEST_DEBUG on the model: kvm_arch_vcpu_ioctl_set_guest_debug() (arch/x86/kvm/x86.c)
 * and what VMX makes of it — vmx_update_exception_bitmap() intercepts #BP for the debugger's
 * INT3s (KVM_GUESTDBG_USE_SW_BP) and #DB for its single steps and hardware breakpoints, and
 * handle_exception_nmi() turns those into KVM_EXIT_DEBUG instead of reaching the guest's IDT.
 *
 * Single step is RFLAGS.TF set behind the guest's back: KVM hides it from KVM_GET_REGS
 * (kvm_get_rflags()) and puts it back on KVM_SET_REGS while RIP is still where the step was
 * asked (__kvm_set_rflags() and singlestep_rip). Hardware breakpoints are the debugger's DR0-DR3
 * and DR7 loaded instead of the guest's (vcpu->arch.eff_db, guest_debug_dr7): the guest's MOV DR
 * keeps its own values (host/x86/debug.ts).
 */
import {
  BP_VECTOR, DB_VECTOR, DR6_ACTIVE_LOW, DR6_BS, KVM_GUESTDBG_ENABLE, KVM_GUESTDBG_INJECT_BP, KVM_GUESTDBG_INJECT_DB,
  KVM_GUESTDBG_SINGLESTEP, KVM_GUESTDBG_USE_HW_BP, KVM_GUESTDBG_USE_SW_BP, KVM_GUESTDBG_VALID_MASK, X86_EFLAGS_TF,
} from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import type { GuestDebug } from './api/vcpu.js';
import type { VcpuArch } from './vcpu-arch.js';

const TF = BigInt(X86_EFLAGS_TF);

/** The argument checked as the ioctl would: unknown control bits and a short debugreg are EINVAL. */
export function checkGuestDebug(debug: GuestDebug, ioctl = 'KVM_SET_GUEST_DEBUG'): { control: number; debugreg: bigint[] } {
  const control = debug.control;
  if (!Number.isInteger(control) || control < 0 || control > 0xffffffff) throw new KvmError('EINVAL', ioctl, `control must be a u32, got ${String(control)}`);
  if ((control & ~KVM_GUESTDBG_VALID_MASK) !== 0) {
    throw new KvmError('EINVAL', ioctl, `control has bits outside KVM_GUESTDBG_VALID_MASK: 0x${(control & ~KVM_GUESTDBG_VALID_MASK).toString(16)}`);
  }
  const regs = debug.debugreg ?? [];
  if (!Array.isArray(regs) || regs.length > 8 || regs.some((r) => typeof r !== 'bigint' || r < 0n || r >= 1n << 64n)) {
    throw new KvmError('EINVAL', ioctl, 'debugreg must be at most 8 u64 bigints (DR0-DR7)');
  }
  return { control, debugreg: Array.from({ length: 8 }, (_, i) => regs[i] ?? 0n) };
}

/** kvm_get_rflags(): TF the debugger set for its single step is not the guest's. */
export function kvmGetRflags(v: VcpuArch, rflags: bigint): bigint {
  return (v.guestDebug & KVM_GUESTDBG_SINGLESTEP) !== 0 ? rflags & ~TF : rflags;
}

/** __kvm_set_rflags(): TF stays set while the step the debugger asked for is still to come. */
export function kvmSetRflags(v: VcpuArch, rflags: bigint, rip: bigint): bigint {
  return (v.guestDebug & KVM_GUESTDBG_SINGLESTEP) !== 0 && rip === v.singlestepRip ? rflags | TF : rflags;
}

/** kvm_arch_vcpu_ioctl_set_guest_debug() */
export function kvmArchVcpuIoctlSetGuestDebug(v: VcpuArch, debug: GuestDebug): void {
  const { control, debugreg } = checkGuestDebug(debug);
  const cpu = v.cpu;
  if ((control & (KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)) !== 0) {
    v.injectException((control & KVM_GUESTDBG_INJECT_DB) !== 0 ? DB_VECTOR : BP_VECTOR);
  }
  const rflags = kvmGetRflags(v, cpu.getRflags());
  v.guestDebug = (control & KVM_GUESTDBG_ENABLE) !== 0 ? control : 0;
  const on = v.guestDebug;
  v.guestDebugDr7 = (on & KVM_GUESTDBG_USE_HW_BP) !== 0 ? debugreg[7]! : 0n;
  cpu.setHostBreakpoints((on & KVM_GUESTDBG_USE_HW_BP) !== 0 ? { dr: debugreg.slice(0, 4), dr7: debugreg[7]! } : null);
  if ((on & KVM_GUESTDBG_SINGLESTEP) !== 0) v.singlestepRip = cpu.getRip();
  cpu.setRflags(kvmSetRflags(v, rflags, cpu.getRip()));
  // vmx_update_exception_bitmap()
  let bitmap = 0;
  if ((on & KVM_GUESTDBG_USE_SW_BP) !== 0) bitmap |= 1 << BP_VECTOR;
  if ((on & (KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP)) !== 0) bitmap |= 1 << DB_VECTOR;
  cpu.exceptionBitmap = bitmap;
}

/**
 * handle_exception_nmi() for #DB and #BP: true when the exception is the debugger's, which
 * then gets KVM_EXIT_DEBUG (the guest's own go back to it). `dr6` is the #DB's conditions.
 */
export function handleDebugException(v: VcpuArch, vector: number, dr6: number): boolean {
  const on = v.guestDebug;
  if (vector === DB_VECTOR && (on & (KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP)) === 0) return false;
  if (vector === BP_VECTOR && (on & KVM_GUESTDBG_USE_SW_BP) === 0) return false;
  if (vector !== DB_VECTOR && vector !== BP_VECTOR) return false;
  const d = v.run.debug;
  d.exception = vector;
  d.pc = v.cpu.getRip();
  d.dr6 = vector === DB_VECTOR ? BigInt((dr6 | DR6_ACTIVE_LOW) >>> 0) : 0n;
  // GUEST_DR7 as the VMCS holds it: the debugger's while its breakpoints are in force.
  d.dr7 = vector !== DB_VECTOR ? 0n : (on & KVM_GUESTDBG_USE_HW_BP) !== 0 ? v.guestDebugDr7 : v.cpu.getDebugRegs().dr7;
  return v.exitToUserSpace('KVM_EXIT_DEBUG');
}

/**
 * kvm_vcpu_do_singlestep() after an emulated instruction under the debugger's single step:
 * KVM_EXIT_DEBUG with DR6.BS, as the trap of an instruction the guest ran itself gives it.
 */
export function kvmVcpuDoSinglestep(v: VcpuArch): boolean {
  v.singlestepPending = false;
  if ((v.guestDebug & KVM_GUESTDBG_SINGLESTEP) === 0) return false;
  const d = v.run.debug;
  d.exception = DB_VECTOR;
  d.pc = v.cpu.getRip();
  d.dr6 = BigInt((DR6_BS | DR6_ACTIVE_LOW) >>> 0);
  d.dr7 = (v.guestDebug & KVM_GUESTDBG_USE_HW_BP) !== 0 ? v.guestDebugDr7 : v.cpu.getDebugRegs().dr7;
  return v.exitToUserSpace('KVM_EXIT_DEBUG');
}
