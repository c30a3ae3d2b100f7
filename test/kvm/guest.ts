/**
 * The harness for host/kvm tests that run real guest instructions: a VM on the default x86
 * core, booted by host/vmm/boot (the one way a vCPU comes to life), with helpers to start one
 * operation template at CPL0 or CPL3 or a small raw snippet, run the vCPU, and read the fault
 * record the boot image's IDT stubs keep.
 *
 * Each started operation arms the fault record: count 0 and fix-up = the template's epilogue,
 * so a fault in the operation is recorded (vector, error code, RIP of the faulting
 * instruction) and the guest resumes at the epilogue — as a kernel's exception table lets
 * rdmsr_safe() survive a #GP. Either way the vCPU ends in the epilogue's HLT (CPL0) or, for
 * CPL3, its done gate, which halts at CPL0: run() then returns KVM_EXIT_HLT.
 *
 * Raw snippets are written "bytes | nasm text", and every line is checked against iced-x86's
 * disassembly before it runs, so the text beside each encoding is what the guest executes.
 */
import { bootVcpu, buildBootImage, layout as L, type BootCpuFeatures, type BootLayout, type OperationName } from '../../host/vmm/boot/index.js';
import { Kvm, type KvmOptions } from '../../host/kvm/kvm.js';
import { type VmOptions } from '../../host/kvm/api/system.js';
import type { Vm } from '../../host/kvm/vm.js';
import type { Vcpu } from '../../host/kvm/vcpu.js';
import type { VcpuExit, VcpuExitReason } from '../../host/kvm/api/exits.js';
import type { Regs } from '../../host/kvm/api/regs.js';
import { disassembleText } from '../support/disassemble.js';

export interface GuestOptions extends VmOptions {
  /** vCPUs to create and boot (default 1). */
  vcpus?: number;
  /** CR4 features the boot state turns on (default: SMEP, SMAP, UMIP, FSGSBASE). */
  cpuFeatures?: BootCpuFeatures;
  /** Options of the Kvm (system fd), e.g. its Heki profile. */
  kvm?: KvmOptions;
}

/** The fault record of one vCPU (layout.ts FAULT_RECORD). */
export interface FaultRecord {
  count: number;
  vector: number;
  errorCode: number;
  /** RIP of the interrupted context: the faulting instruction for a fault. */
  rip: bigint;
}

/** What a finished operation left: its fault, if any, and the registers. */
export interface Outcome {
  /** null when the operation retired without a fault. */
  fault: { vector: number; errorCode: number; rip: bigint } | null;
  /** Every fault the stubs recorded since the operation started (more than 1: a #DF path). */
  faults: number;
  regs: Regs;
}

/** `mov eax, 2` style lines: "hex bytes | nasm text". */
export type AsmLine = string;

const U64 = (1n << 64n) - 1n;

export class Guest {
  readonly kvm: Kvm;
  readonly vm: Vm;
  readonly boot: BootLayout;
  readonly vcpus: Vcpu[] = [];

  constructor(options: GuestOptions = {}) {
    const { vcpus = 1, cpuFeatures, kvm, ...vmOptions } = options;
    this.kvm = new Kvm(kvm);
    this.vm = this.kvm.createVm(vmOptions);
    this.boot = buildBootImage(this.vm.memory, { vcpus, cpuFeatures });
    for (let n = 0; n < vcpus; n++) {
      const vcpu = this.vm.createVcpu(n);
      bootVcpu(vcpu, this.boot, n);
      this.vcpus.push(vcpu);
    }
  }

  vcpu(n = 0): Vcpu {
    return this.vcpus[n]!;
  }

  /** Loads the boot state into vCPU `n` again (as the VMM does after an INIT). */
  reboot(n = 0): void {
    bootVcpu(this.vcpu(n), this.boot, n);
  }

  /** KVM_RUN on vCPU `n`. */
  run(n = 0): VcpuExit {
    return this.vcpu(n).run();
  }

  /** KVM_RUN on vCPU `n`, which must return `reason` (anything else throws, naming it). */
  runExpecting<R extends VcpuExitReason>(reason: R, n = 0): Extract<VcpuExit, { reason: R }> {
    const exit = this.run(n);
    if (exit.reason !== reason) throw new Error(`expected ${reason}, got ${describeExit(exit)}`);
    return exit as Extract<VcpuExit, { reason: R }>;
  }

  regs(n = 0): Regs {
    return this.vcpu(n).getRegs();
  }

  setRegs(values: Partial<Regs>, n = 0): void {
    this.vcpu(n).setRegs({ ...this.vcpu(n).getRegs(), ...values });
  }

  cr(cr: 0 | 3 | 4, n = 0): bigint {
    const s = this.vcpu(n).getSregs();
    return cr === 0 ? s.cr0 : cr === 3 ? s.cr3 : s.cr4;
  }

  /** Points vCPU `n` at the CPL0 template of `op` with `regs` loaded; returns its template. */
  start(op: OperationName, regs: Partial<Regs> = {}, n = 0): { entry: number; epilogue: number } {
    const t = this.boot.text.kernelOps[op];
    this.armFaultRecord(n, t.epilogue);
    this.setRegs({ ...regs, rip: BigInt(t.entry) }, n);
    return t;
  }

  /**
   * Points vCPU `n` at the CPL3 template of `op`: RIP at the boot image's IRETQ, with an IRET
   * frame on the kernel stack for the user template, the user stack and user selectors. A
   * fault resumes (still at CPL3) at the template's epilogue, the done gate.
   */
  startUser(op: OperationName, regs: Partial<Regs> = {}, n = 0): { entry: number; epilogue: number } {
    const t = this.boot.text.userOps[op];
    this.armFaultRecord(n, t.epilogue);
    const frame = L.kernelStackTop(n) - 5 * 8;
    const m = this.vm.memory;
    m.write64(frame, BigInt(t.entry));
    m.write64(frame + 8, BigInt(L.SELECTORS.userCs));
    m.write64(frame + 16, 0x2n);
    m.write64(frame + 24, BigInt(L.userStackTop(n)));
    m.write64(frame + 32, BigInt(L.SELECTORS.userDs));
    this.setRegs({ ...regs, rip: BigInt(this.boot.text.iretq), rsp: BigInt(frame) }, n);
    return t;
  }

  /**
   * Writes a snippet into vCPU `n`'s kernel exec slot (each line checked against iced-x86),
   * points RIP at it with `regs` loaded, and arms the fault record to resume at `fixup`
   * (an offset into the snippet; default: halt in the stub). Returns where the snippet
   * starts and ends.
   */
  startCode(lines: readonly AsmLine[], regs: Partial<Regs> = {}, n = 0, fixup?: number): { base: number; end: number } {
    const base = this.boot.kernelExecSlot(n).base;
    const bytes = assemble(lines, base);
    this.vm.memory.writeBytes(base, bytes);
    this.armFaultRecord(n, fixup === undefined ? 0 : base + fixup);
    this.setRegs({ ...regs, rip: BigInt(base) }, n);
    return { base, end: base + bytes.length };
  }

  /** The fault record of vCPU `n`. */
  faultRecord(n = 0): FaultRecord {
    const m = this.vm.memory;
    const at = L.faultRecordAddress(n);
    return {
      count: Number(m.read64(at + L.FAULT_RECORD.count)),
      vector: Number(m.read64(at + L.FAULT_RECORD.vector)),
      errorCode: Number(m.read64(at + L.FAULT_RECORD.errorCode)),
      rip: m.read64(at + L.FAULT_RECORD.rip),
    };
  }

  private armFaultRecord(n: number, fixup: number): void {
    const m = this.vm.memory;
    const at = L.faultRecordAddress(n);
    m.write64(at + L.FAULT_RECORD.count, 0n);
    m.write64(at + L.FAULT_RECORD.vector, U64);
    m.write64(at + L.FAULT_RECORD.fixup, BigInt(fixup));
  }

  /**
   * Runs vCPU `n` to the end of the started operation, which must be a KVM_EXIT_HLT (an
   * exit to user space on the way throws, naming it), and reports the fault record.
   */
  finish(n = 0): Outcome {
    this.runExpecting('KVM_EXIT_HLT', n);
    return this.outcome(n);
  }

  /** The fault record and registers now. */
  outcome(n = 0): Outcome {
    const rec = this.faultRecord(n);
    return {
      fault: rec.count === 0 ? null : { vector: rec.vector, errorCode: rec.errorCode, rip: rec.rip },
      faults: rec.count,
      regs: this.regs(n),
    };
  }
}

/** One line of an exit, for failure messages. */
export function describeExit(exit: VcpuExit): string {
  switch (exit.reason) {
    case 'KVM_EXIT_X86_RDMSR':
    case 'KVM_EXIT_X86_WRMSR':
      return `${exit.reason} index 0x${exit.msr.index.toString(16)} reason ${exit.msr.reason} data 0x${exit.msr.data.toString(16)}`;
    case 'KVM_EXIT_HEKI_DENIAL':
      return `${exit.reason} reason ${exit.heki_denial.reason} cr_value 0x${exit.heki_denial.cr_value.toString(16)}`;
    case 'KVM_EXIT_HEKI_CONFIGURE':
      return `${exit.reason} reason ${exit.heki_configure.reason} cr_pinned 0x${exit.heki_configure.cr_pinned.toString(16)}`;
    case 'KVM_EXIT_IO':
      return `${exit.reason} port 0x${exit.io.port.toString(16)}`;
    case 'KVM_EXIT_FAIL_ENTRY':
      return `${exit.reason} (${exit.fail_entry.detail})`;
    default:
      return exit.reason;
  }
}

/**
 * Turns "hex | nasm" lines into bytes, checking each line's text against iced-x86's
 * disassembly at its address.
 */
export function assemble(lines: readonly AsmLine[], at: number): Uint8Array {
  const out: number[] = [];
  for (const line of lines) {
    const [hex, text] = line.split('|').map((s) => s.trim());
    if (hex === undefined || text === undefined) throw new Error(`snippet line "${line}" is not "bytes | text"`);
    const bytes = hex.split(/\s+/).map((b) => {
      if (!/^[0-9a-f]{2}$/i.test(b)) throw new Error(`snippet line "${line}": "${b}" is not a hex byte`);
      return parseInt(b, 16);
    });
    const got = disassembleText(Uint8Array.from(bytes), at + out.length);
    if (got.length !== 1 || got[0] !== text) {
      throw new Error(`snippet line "${line}" disassembles as ${JSON.stringify(got)}`);
    }
    out.push(...bytes);
  }
  return Uint8Array.from(out);
}

/** A bitmap of `bytes` bytes, every bit `allow`, except the MSR offsets in `flip`. */
export function bitmap(bytes: number, allow: boolean, flip: readonly number[] = []): Uint8Array {
  const b = new Uint8Array(bytes).fill(allow ? 0xff : 0);
  for (const i of flip) b[i >>> 3]! ^= 1 << (i & 7);
  return b;
}

/** A 64-bit value as a guest sees a signed hypercall result: -22 → 0xffff_ffff_ffff_ffea. */
export function neg(n: number): bigint {
  return BigInt.asUintN(64, BigInt(-n));
}
