/**
 * The in-kernel handling of one intercept: __vmx_handle_exit() and its table of exit handlers,
 * kvm_vmx_exit_handlers[] (arch/x86/kvm/vmx/vmx.c), one case per kind of intercept the core
 * stops with (host/x86/intercept.ts). A handler either finishes the instruction in the kernel
 * and returns false (the guest runs on), or fills its kvm_run member and returns
 * `v.exitToUserSpace(reason, completion)` (complete-userspace-io.ts).
 */
import { EXIT_REASON_INVALID_STATE, VMX_EXIT_REASONS_FAILED_VMENTRY } from '../../protocol/abi.js';
import type { Intercept } from '../x86/intercept.js';
import { handleClts, handleLmsw, handleMovFromCr, handleMovToCr } from './handle-cr.js';
import { handleDesc } from './handle-desc.js';
import { kvmEmulateCpuid } from './handle-cpuid.js';
import { kvmEmulateHypercall } from './handle-hypercall.js';
import { handleEptViolation } from './handle-ept-violation.js';
import { handleDebugException } from './guest-debug.js';
import { handleIo } from './handle-io.js';
import { kvmEmulateRdmsr, kvmEmulateWrmsr } from './handle-msr.js';
import type { VcpuArch } from './vcpu-arch.js';

/** One intercept, handled; true when it goes to user space. */
export function handleExit(v: VcpuArch, ic: Intercept): boolean {
  switch (ic.kind) {
    case 'rdmsr':
      return kvmEmulateRdmsr(v, ic.index);
    case 'wrmsr':
      return kvmEmulateWrmsr(v, ic.index, ic.value);
    case 'mov_to_cr':
      return handleMovToCr(v, ic.cr, ic.value);
    case 'mov_from_cr':
      handleMovFromCr(v, ic.cr, ic.gpr);
      return false;
    case 'clts':
      return handleClts(v);
    case 'lmsw':
      return handleLmsw(v, ic.value);
    case 'hypercall':
      return kvmEmulateHypercall(v);
    case 'cpuid':
      kvmEmulateCpuid(v, ic.leaf, ic.subleaf);
      return false;
    case 'hlt':
      // kvm_emulate_halt() retires the HLT first. MODEL DECISION: with no interrupt to wake
      // it, a halted vCPU goes to user space as KVM_EXIT_HLT (KVM's no-in-kernel-irqchip path).
      v.skipEmulatedInstruction();
      v.stat.halt_exits++;
      return v.exitToUserSpace('KVM_EXIT_HLT');
    case 'io':
      return handleIo(v, ic.port, ic.size, ic.in, ic.value);
    case 'descriptor_table':
      return handleDesc(v, ic.insn, ic.base, ic.limit, ic.selector);
    case 'exception':
      // The exception bitmap holds only the debugger's #DB and #BP (guest-debug.ts): KVM_EXIT_DEBUG
      // when they are its, else the event goes back to the guest.
      if (handleDebugException(v, ic.vector, ic.dr6 ?? 0)) return true;
      v.injectException(ic.vector, ic.errorCode, ic.address);
      return false;
    case 'ept_violation':
      return handleEptViolation(v, ic);
    case 'triple_fault':
      v.shutdownChain = ic.chain;
      return v.exitToUserSpace('KVM_EXIT_SHUTDOWN');
    case 'budget':
      v.stat.signal_exits++;
      return v.exitToUserSpace('KVM_EXIT_INTR');
    case 'invalid_guest_state': {
      const fail = v.run.fail_entry;
      fail.hardware_entry_failure_reason = BigInt((VMX_EXIT_REASONS_FAILED_VMENTRY | EXIT_REASON_INVALID_STATE) >>> 0);
      fail.cpu = 0;
      fail.detail = ic.detail;
      return v.exitToUserSpace('KVM_EXIT_FAIL_ENTRY');
    }
  }
}
