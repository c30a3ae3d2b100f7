/**
 * VMCALL/VMMCALL intercepts: kvm_emulate_hypercall() (arch/x86/kvm/x86.c), the exit handler,
 * around __kvm_emulate_hypercall() (hypercalls.ts), which runs the call; a Heki pin user space
 * asked to hear of ends in KVM_EXIT_HEKI_CONFIGURE instead of the completion (heki-exits.ts,
 * docs/heki.md §3.4). Both instructions are accepted on the modelled Intel host (KVM would patch
 * VMMCALL into VMCALL and run it the same way).
 */
import { RAX, RBX, RCX, RDX, RSI } from '../x86/state.js';
import { hekiExitCr } from './heki-exits.js';
import { __kvmEmulateHypercall } from './hypercalls.js';
import type { VcpuArch } from './vcpu-arch.js';

/** kvm_emulate_hypercall(): true when the call ends in a KVM_EXIT_HEKI_CONFIGURE exit. */
export function kvmEmulateHypercall(v: VcpuArch): boolean {
  const cpu = v.cpu;
  const regs = { nr: cpu.readGpr(RAX), a0: cpu.readGpr(RBX), a1: cpu.readGpr(RCX), a2: cpu.readGpr(RDX), a3: cpu.readGpr(RSI) };
  // is_64_bit_hypercall(): the caller is in 64-bit mode (EFER.LMA with CS.L).
  const op64Bit = cpu.is64BitMode();
  const trace = v.vm.trace;
  if (trace.active) trace.emit('kvm_hypercall', { vcpu_id: v.id, ...regs });
  const result = __kvmEmulateHypercall(regs, cpu.cpl, op64Bit, v.hypercallEnv);
  const pin = result.hekiConfigure;
  // The pin is already in force; RAX and RIP wait for complete_heki_configure_exit().
  if (pin !== undefined && hekiExitCr(v, 'KVM_EXIT_HEKI_CONFIGURE', pin.reason, pin.crPinned)) return true;
  completeHypercallExit(v, result.rax);
  return false;
}

/**
 * complete_hypercall_exit(): the result in RAX and RIP past the call. The call is counted here,
 * as on the RFC's base (kvm_emulate_hypercall()'s `out:` path); a Heki exit returns before it and
 * its completion counts the call instead.
 */
function completeHypercallExit(v: VcpuArch, rax: bigint): void {
  v.cpu.writeGpr(RAX, rax);
  v.stat.hypercalls++;
  v.skipEmulatedInstruction();
}
