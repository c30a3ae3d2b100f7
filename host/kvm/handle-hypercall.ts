/**
 * VMCALL/VMMCALL intercepts: kvm_emulate_hypercall() around hypercalls.ts, and the Heki
 * CONFIGURE exit and its completion (Heki RFC v2 03/19, spec/heki.md §3.4). Both
 * instructions are accepted on the modelled Intel host (KVM would patch VMMCALL into
 * VMCALL and run it the same way).
 */
import { kvmEmulateHypercall } from './hypercalls.js';
import { Completion, type VcpuArch } from './vcpu-arch.js';
import { RAX, RBX, RCX, RDX, RSI } from '../x86/state.js';

/** Handles a hypercall; true when it ends in a KVM_EXIT_HEKI_CONFIGURE exit. */
export function handleHypercall(v: VcpuArch): boolean {
  const cpu = v.cpu;
  const regs = { nr: cpu.readGpr(RAX), a0: cpu.readGpr(RBX), a1: cpu.readGpr(RCX), a2: cpu.readGpr(RDX), a3: cpu.readGpr(RSI) };
  // is_64_bit_hypercall(): the caller is in 64-bit mode (EFER.LMA with CS.L).
  const op64Bit = cpu.is64BitMode();
  const trace = v.vm.trace;
  if (trace.active) trace.emit('kvm_hypercall', { vcpu_id: v.id, ...regs });
  const result = kvmEmulateHypercall(regs, cpu.cpl, op64Bit, v.hypercallEnv);
  if (result.hekiConfigure !== undefined) {
    // The pin is already in force; RAX and RIP wait for the completion.
    const run = v.run;
    run.setExit('KVM_EXIT_HEKI_CONFIGURE');
    run.heki_configure.reason = result.hekiConfigure.reason;
    run.heki_configure.cr_pinned = result.hekiConfigure.crPinned;
    v.pending = Completion.HekiConfigure;
    return true;
  }
  // kvm_emulate_hypercall()'s `out:` path counts the call; an exit returns before it and its
  // completion counts it instead.
  cpu.writeGpr(RAX, result.rax);
  v.stat.hypercalls++;
  cpu.skipInstruction();
  return false;
}

/** complete_heki_configure_exit(): RAX = 0 whatever user space did, and the call retires. */
export function completeHekiConfigure(v: VcpuArch): void {
  v.pending = Completion.None;
  v.cpu.writeGpr(RAX, 0n);
  v.stat.hypercalls++;
  v.cpu.skipInstruction();
}
