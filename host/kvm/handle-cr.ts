/**
 * Control-register intercepts: handle_cr() in arch/x86/kvm/vmx/vmx.c. Writes to CR0 and CR4 go
 * through cr-write.ts, where the register intercepts, the CR filter, Heki's check (Heki RFC v2
 * 02/19 + 03/19, heki_check_cr(), docs/heki.md §2) and kvm_set_cr0/4() stand in turn.
 *
 * MODEL DECISION (docs/heki.md §2.1, §2.2): every mechanism sees *every* guest write path to CR0 and
 * CR4 — MOV to CR, LMSW and CLTS — before the architectural checks, and a denied write gets
 * exactly one #GP(0) with the CR unchanged and RIP on the instruction. The Heki RFC checks MOV
 * only on VMX, and its emulator path can queue a second #GP (→ #DF); neither is reproduced.
 */
import { PINBOX_CR_ACCESS_CLTS, PINBOX_CR_ACCESS_LMSW, PINBOX_CR_ACCESS_MOV } from '../../protocol/abi.js';
import type { ControlRegister } from '../x86/guest-cpu.js';
import { cltsValue, kvmIsValidCr8, kvmLmswValue, kvmSetCr3 } from './control-registers.js';
import { crContext, kvmWriteCr, loadOrFault } from './cr-write.js';
import type { VcpuArch } from './vcpu-arch.js';

function traceCr(v: VcpuArch, rw: 'read' | 'write', cr: number, val: bigint): void {
  if (v.vm.trace.active) v.vm.trace.emit('kvm_cr', { vcpu_id: v.id, rw, cr, val });
}

/** MOV to CR0/CR2/CR3/CR4/CR8; true when it ends in an exit to user space. */
export function handleMovToCr(v: VcpuArch, cr: ControlRegister, value: bigint): boolean {
  traceCr(v, 'write', cr, value);
  switch (cr) {
    case 0:
    case 4:
      return kvmWriteCr(v, cr, PINBOX_CR_ACCESS_MOV, value);
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

/** CLTS: clears CR0.TS (vmx_set_cr0() directly once nothing refuses it). */
export function handleClts(v: VcpuArch): boolean {
  const cr0 = cltsValue(v.cpu.readCr(0));
  traceCr(v, 'write', 0, cr0);
  return kvmWriteCr(v, 0, PINBOX_CR_ACCESS_CLTS, cr0);
}

/** LMSW: kvm_lmsw()'s value — bits 3:1 of CR0 from the operand, PE set but never cleared. */
export function handleLmsw(v: VcpuArch, msw: number): boolean {
  const cr0 = kvmLmswValue(v.cpu.readCr(0), msw);
  traceCr(v, 'write', 0, cr0);
  return kvmWriteCr(v, 0, PINBOX_CR_ACCESS_LMSW, cr0);
}
