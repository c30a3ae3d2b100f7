/** CPUID intercepts: kvm_emulate_cpuid() (arch/x86/kvm/cpuid.c) over the guest CPUID model. */
import { kvmCpuid } from './cpuid.js';
import type { VcpuArch } from './vcpu-arch.js';
import { RAX, RBX, RCX, RDX } from '../x86/state.js';

/** kvm_emulate_cpuid(): the leaf's four registers into EAX, EBX, ECX, EDX, and CPUID retires. */
export function kvmEmulateCpuid(v: VcpuArch, leaf: number, subleaf: number): void {
  const out = v.cpuidOut;
  const rt = v.cpuidRuntime;
  rt.cr4 = v.cpu.readCr(4);
  rt.apicBase = v.lapic.apicBase;
  kvmCpuid(v.cpuid, rt, leaf, subleaf, out);
  const trace = v.vm.trace;
  if (trace.active) {
    trace.emit('kvm_cpuid', { vcpu_id: v.id, function: leaf, index: subleaf, rax: out[0]!, rbx: out[1]!, rcx: out[2]!, rdx: out[3]! });
  }
  v.cpu.writeGpr32(RAX, out[0]!);
  v.cpu.writeGpr32(RBX, out[1]!);
  v.cpu.writeGpr32(RCX, out[2]!);
  v.cpu.writeGpr32(RDX, out[3]!);
  v.skipEmulatedInstruction();
}
