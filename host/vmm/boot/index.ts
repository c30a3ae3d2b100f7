/**
 * The one way a vCPU comes to life (docs/architecture.md, "Inside the VMM: running and answering").
 *
 * `buildBootImage` writes, once per VM, what a minimal 64-bit kernel would have set up before
 * running anything: identity paging, a GDT with Linux's selectors and a TSS per vCPU, an IDT
 * whose stubs record the vector and error code in a per-vCPU fault record and resume at a
 * fix-up address, and a template for every guest operation. `bootVcpu` then loads one vCPU
 * with the 64-bit CPL0 state that points at it — through KVM_SET_REGS/KVM_SET_SREGS on a real
 * VMM, or the same two calls on the bare core in tests.
 *
 * MSRs are left at their reset values: nothing here needs SYSCALL, and tests that do program
 * STAR/LSTAR/SFMASK themselves (STAR as Linux would: see layout.ts SELECTORS).
 */
import type { GuestMemory } from '../../kvm/api/guest-memory.js';
import type { Regs, Segment, Sregs } from '../../kvm/api/regs.js';
import {
  EFER_LMA, EFER_LME, EFER_NXE, EFER_SCE, MSR_IA32_APICBASE_BSP, MSR_IA32_APICBASE_ENABLE,
  X86_CR0_AM, X86_CR0_ET, X86_CR0_MP, X86_CR0_NE, X86_CR0_PE, X86_CR0_PG, X86_CR0_WP,
  X86_CR4_FSGSBASE, X86_CR4_OSFXSR, X86_CR4_OSXMMEXCPT, X86_CR4_PAE, X86_CR4_PGE, X86_CR4_SMAP,
  X86_CR4_SMEP, X86_CR4_UMIP,
} from '../../../protocol/abi.js';
import {
  code32Descriptor, code64Descriptor, dataDescriptor, interruptGate, taskStateSegment, TSS_LIMIT,
  TSS_TYPE_BUSY, tssDescriptor,
} from './descriptors.js';
import {
  exceptionStackTop, GDT, gdtLimit, IDT, kernelExecSlot, kernelStackTop, KERNEL_TEXT, MAX_MEMORY,
  MAX_VCPUS, MIN_MEMORY, MIB, SELECTORS, STUBS, STUB_STRIDE, tssAddress, tssSelector, USER_TEXT,
  userExecSlot, type CodeSlot,
} from './layout.js';
import { buildPageTables } from './page-tables.js';
import { buildKernelText, buildStubs, DONE_VECTOR, userTemplates, type KernelText } from './stubs.js';

export * as layout from './layout.js';
export { DONE_VECTOR, OPERATION_BYTES, type OperationName, type OperationTemplate, type KernelText } from './stubs.js';
export { bootInfoAddress, cmdlineBytes, writeBootInfo, BOOT_INFO, BOOT_CMDLINE, MAX_CMDLINE, type BootInfo } from './boot-info.js';

/** CR4 features the boot state turns on, each only if the guest CPUID has it. */
export interface BootCpuFeatures {
  smep?: boolean;
  smap?: boolean;
  umip?: boolean;
  fsgsbase?: boolean;
}

export interface BootOptions {
  vcpus: number;
  /** Default: all four on (docs/heki.md §8's guest: CR4 has SMEP|SMAP|UMIP|FSGSBASE). */
  cpuFeatures?: BootCpuFeatures;
}

export interface BootLayout {
  readonly vcpus: number;
  readonly memorySize: number;
  readonly cr0: bigint;
  readonly cr4: bigint;
  readonly efer: bigint;
  readonly text: KernelText;
  kernelExecSlot(vcpu: number): CodeSlot;
  userExecSlot(vcpu: number): CodeSlot;
}

/** What bootVcpu needs: a vCPU (host/kvm's Vcpu) or a bare core (host/x86's Cpu). */
export interface BootTarget {
  setRegs(regs: Regs): void;
  setSregs(sregs: Sregs): void;
}

/** Guest CR0 after boot: PG|AM|WP|NE|ET|MP|PE = 0x80050033, as a Linux guest runs. */
export const BOOT_CR0 = X86_CR0_PG | X86_CR0_AM | X86_CR0_WP | X86_CR0_NE | X86_CR0_ET | X86_CR0_MP | X86_CR0_PE;
/** PAE|PGE|OSFXSR|OSXMMEXCPT = 0x6a0, before the optional protection features. */
export const BOOT_CR4_BASE = X86_CR4_PAE | X86_CR4_PGE | X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
export const BOOT_EFER = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;
const APIC_DEFAULT_BASE = 0xfee00000n;

export class BootError extends Error {
  override readonly name = 'BootError';
}

export function bootCr4(features: BootCpuFeatures = {}): bigint {
  const f = { smep: true, smap: true, umip: true, fsgsbase: true, ...features };
  return (
    BOOT_CR4_BASE |
    (f.smep ? X86_CR4_SMEP : 0n) |
    (f.smap ? X86_CR4_SMAP : 0n) |
    (f.umip ? X86_CR4_UMIP : 0n) |
    (f.fsgsbase ? X86_CR4_FSGSBASE : 0n)
  );
}

export function buildBootImage(memory: GuestMemory, options: BootOptions): BootLayout {
  const { vcpus } = options;
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    throw new BootError(`vcpus must be a whole number from 1 to ${MAX_VCPUS}, got ${vcpus}`);
  }
  if (memory.size < MIN_MEMORY || memory.size > MAX_MEMORY || memory.size % (2 * MIB) !== 0) {
    throw new BootError(
      `guest memory must be a multiple of 2 MiB from ${MIN_MEMORY / MIB} MiB to ${MAX_MEMORY / MIB} MiB, got ${memory.size} bytes`,
    );
  }

  buildPageTables(memory);

  const gdt = new DataView(new ArrayBuffer(gdtLimit(vcpus) + 1));
  gdt.setBigUint64(SELECTORS.idtCs, code64Descriptor(0), true);
  gdt.setBigUint64(SELECTORS.kernelCs, code64Descriptor(0), true);
  gdt.setBigUint64(SELECTORS.kernelDs, dataDescriptor(0), true);
  gdt.setBigUint64(SELECTORS.user32Cs & ~3, code32Descriptor(3), true);
  gdt.setBigUint64(SELECTORS.userDs & ~3, dataDescriptor(3), true);
  gdt.setBigUint64(SELECTORS.userCs & ~3, code64Descriptor(3), true);
  for (let v = 0; v < vcpus; v++) {
    new Uint8Array(gdt.buffer).set(tssDescriptor(tssAddress(v)), tssSelector(v));
    memory.writeBytes(tssAddress(v), taskStateSegment(kernelStackTop(v), exceptionStackTop(v)));
  }
  memory.writeBytes(GDT, new Uint8Array(gdt.buffer));

  const { bytes: kernelText, text } = buildKernelText();
  memory.writeBytes(KERNEL_TEXT, kernelText);
  memory.writeBytes(STUBS, buildStubs(text.commonEntry));
  memory.writeBytes(USER_TEXT, userTemplates().bytes);

  const idt = new Uint8Array(256 * 16);
  for (let v = 0; v < 256; v++) {
    // Software interrupts from CPL3 may reach #BP (int3: the done gate) and #OF (into), as on
    // Linux; every other vector #GPs when a CPL3 `int n` names it.
    const dpl = v === 3 || v === 4 ? 3 : 0;
    const handler = v === DONE_VECTOR ? text.doneHalt : STUBS + v * STUB_STRIDE;
    idt.set(interruptGate(handler, SELECTORS.idtCs, 1, dpl), v * 16);
  }
  memory.writeBytes(IDT, idt);

  const cr4 = bootCr4(options.cpuFeatures);
  return {
    vcpus,
    memorySize: memory.size,
    cr0: BOOT_CR0,
    cr4,
    efer: BOOT_EFER,
    text,
    kernelExecSlot: (vcpu) => kernelExecSlot(vcpus, vcpu),
    userExecSlot: (vcpu) => userExecSlot(vcpus, vcpu),
  };
}

function flatSegment(selector: number, code: boolean, dpl: number): Segment {
  return {
    base: 0n,
    limit: 0xffffffff,
    selector,
    type: code ? 0xb : 0x3,
    present: true,
    dpl,
    db: !code,
    s: true,
    l: code,
    g: true,
    avl: false,
    unusable: false,
  };
}

/** The 64-bit CPL0 segment state of a booted vCPU. */
export function bootSregs(layout: BootLayout, vcpu: number): Sregs {
  const data = flatSegment(SELECTORS.kernelDs, false, 0);
  return {
    cs: flatSegment(SELECTORS.kernelCs, true, 0),
    ds: { ...data },
    es: { ...data },
    fs: { ...data },
    gs: { ...data },
    ss: { ...data },
    tr: {
      base: BigInt(tssAddress(vcpu)),
      limit: TSS_LIMIT,
      selector: tssSelector(vcpu),
      type: TSS_TYPE_BUSY,
      present: true,
      dpl: 0,
      db: false,
      s: false,
      l: false,
      g: false,
      avl: false,
      unusable: false,
    },
    ldt: {
      base: 0n, limit: 0, selector: 0, type: 0x2, present: false, dpl: 0,
      db: false, s: false, l: false, g: false, avl: false, unusable: true,
    },
    gdt: { base: BigInt(GDT), limit: gdtLimit(layout.vcpus) },
    idt: { base: BigInt(IDT), limit: 256 * 16 - 1 },
    cr0: layout.cr0,
    cr2: 0n,
    cr3: 0x1000n,
    cr4: layout.cr4,
    cr8: 0n,
    efer: layout.efer,
    apicBase: APIC_DEFAULT_BASE | MSR_IA32_APICBASE_ENABLE | (vcpu === 0 ? MSR_IA32_APICBASE_BSP : 0n),
  };
}

/** General registers of a booted vCPU: zeroed, RSP at its kernel stack, RIP at a halt. */
export function bootRegs(layout: BootLayout, vcpu: number): Regs {
  return {
    rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n, rdi: 0n, rsp: BigInt(kernelStackTop(vcpu)), rbp: 0n,
    r8: 0n, r9: 0n, r10: 0n, r11: 0n, r12: 0n, r13: 0n, r14: 0n, r15: 0n,
    rip: BigInt(layout.text.doneHalt),
    rflags: 0x2n,
  };
}

/** Loads one vCPU with the booted state. */
export function bootVcpu(target: BootTarget, layout: BootLayout, vcpu: number): void {
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= layout.vcpus) {
    throw new BootError(`vcpu ${vcpu} is outside this boot image's 0..${layout.vcpus - 1}`);
  }
  target.setSregs(bootSregs(layout, vcpu));
  target.setRegs(bootRegs(layout, vcpu));
}
