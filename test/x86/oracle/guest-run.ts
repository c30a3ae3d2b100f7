/**
 * Runs a few guest instructions on a bare core, playing the hypervisor's part for the one
 * intercept these suites need answered: MOV to CR, which the core always hands out. The answer
 * is KVM's for a valid write (handle_cr() → kvm_set_crN() → load → skip the instruction), so a
 * guest's `mov cr4, rax` reaches the core's commitCr() with its architectural side effects
 * (TLB flushes), as it would under host/kvm.
 */
import type { Cpu, Intercept, PhysicalMemory } from '../../../host/index.js';

export function runGuest(cpu: Cpu, memory: PhysicalMemory, at: number, code: readonly number[], budget = 64): Intercept {
  memory.writeBytes(at, Uint8Array.from(code));
  cpu.setRip(BigInt(at));
  for (;;) {
    const i = cpu.run(budget);
    if (i.kind !== 'mov_to_cr') return i;
    cpu.commitCr(i.cr, i.value);
    cpu.skipInstruction();
  }
}

/** Encodings used by the suites (SDM vol. 2), each followed by CPUID to stop the core. */
export const CPUID = [0x0f, 0xa2];
export const MOV_CR0_RAX = [0x0f, 0x22, 0xc0];
export const MOV_CR3_RAX = [0x0f, 0x22, 0xd8];
export const MOV_CR4_RAX = [0x0f, 0x22, 0xe0];
/** invlpg [rbx] (0F 01 /7, ModRM 00 111 011) */
export const INVLPG_RBX = [0x0f, 0x01, 0x3b];
export const STAC = [0x0f, 0x01, 0xcb];
export const CLAC = [0x0f, 0x01, 0xca];
