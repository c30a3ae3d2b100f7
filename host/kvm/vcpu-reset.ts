/**
 * kvm_vcpu_reset() with vmx_vcpu_reset() (arch/x86/kvm/x86.c, vmx/vmx.c): RESET when the
 * vCPU is created, INIT on `Vcpu.init()`. Both leave the vCPU in real mode at F000:FFF0,
 * which pinbox's long-mode-only core cannot run. MODEL DECISION: the next run() reports
 * KVM_EXIT_FAIL_ENTRY (invalid guest state) and the VMM boots the vCPU again, in place of
 * firmware running in real mode. Heki pins are per VM and survive; Andersen's, per vCPU, are
 * cleared (andersen.ts); the register intercepts stay (reg-intercepts.ts).
 */
import {
  MSR_IA32_SYSENTER_CS,
  MSR_IA32_SYSENTER_EIP,
  MSR_IA32_SYSENTER_ESP,
  X86_CR0_CD,
  X86_CR0_ET,
  X86_CR0_NW,
} from '../../protocol/abi.js';
import type { Segment } from './api/regs.js';
import { kvmCpuid } from './cpuid.js';
import { commitCoreMsr } from './msrs/msr-vcpu.js';
import type { VcpuArch } from './vcpu-arch.js';

/** seg_setup(): a real-mode segment; CS is code (type 0xb), the others data (type 3). */
function realModeSegment(selector: number, base: bigint, type: number): Segment {
  return { base, limit: 0xffff, selector, type, present: true, dpl: 0, db: false, s: true, l: false, g: false, avl: false, unusable: false };
}

function systemSegment(type: number): Segment {
  return { base: 0n, limit: 0xffff, selector: 0, type, present: true, dpl: 0, db: false, s: false, l: false, g: false, avl: false, unusable: false };
}

export function kvmVcpuReset(v: VcpuArch, initEvent: boolean): void {
  const cpu = v.cpu;
  const oldCr0 = initEvent ? cpu.readCr(0) : 0n;
  v.completeUserspaceIo = null;
  // kvm_clear_exception_queue(): a #GP queued by the last exit is never delivered.
  cpu.clearExceptionQueue();
  v.msrState.reset(initEvent);
  v.andersenPins.clear();
  v.lapic.reset(initEvent);
  // RDX holds the family/model/stepping: CPUID.1:EAX at INIT, 0x600 at RESET (no CPUID yet).
  let rdx = 0x600n;
  if (initEvent) {
    const rt = v.cpuidRuntime;
    rt.cr4 = 0n;
    rt.apicBase = v.lapic.apicBase;
    kvmCpuid(v.cpuid, rt, 1, 0, v.cpuidOut);
    rdx = BigInt(v.cpuidOut[0]!);
  }
  cpu.setRegs({
    rax: 0n, rbx: 0n, rcx: 0n, rdx, rsi: 0n, rdi: 0n, rsp: 0n, rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
    rip: 0xfff0n, rflags: 0x2n,
  });
  const data = (): Segment => realModeSegment(0, 0n, 0x3);
  cpu.setSregs({
    cs: realModeSegment(0xf000, 0xffff0000n, 0xb),
    ds: data(), es: data(), fs: data(), gs: data(), ss: data(),
    tr: systemSegment(0xb),
    ldt: systemSegment(0x2),
    gdt: { base: 0n, limit: 0xffff },
    idt: { base: 0n, limit: 0xffff },
    // CD and NW are kept across INIT, set at RESET.
    cr0: X86_CR0_ET | (initEvent ? oldCr0 & (X86_CR0_NW | X86_CR0_CD) : X86_CR0_NW | X86_CR0_CD),
    cr2: 0n,
    cr3: 0n,
    cr4: 0n,
    cr8: 0n,
    efer: 0n,
    apicBase: v.lapic.apicBase,
  });
  if (!initEvent) {
    // init_vmcs(): the SYSENTER MSRs start at 0; INIT leaves them alone.
    commitCoreMsr(v, MSR_IA32_SYSENTER_CS, 0n);
    commitCoreMsr(v, MSR_IA32_SYSENTER_ESP, 0n);
    commitCoreMsr(v, MSR_IA32_SYSENTER_EIP, 0n);
  }
}
