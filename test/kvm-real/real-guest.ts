/**
 * The harness for tests on the machine's /dev/kvm (host/kvm/real): whether real KVM can be
 * used here (and if not, why: `pinbox probe`'s one-line answer), a way to register a test
 * that runs only then and otherwise shows as "not run: <why>" (a todo, never a pass), and a
 * booted one-vCPU VM with the same helpers as the model's harness (test/kvm/guest.ts): start
 * an operation template or a raw snippet at CPL0, run, read the boot IDT's fault record.
 */
import test, { type ExecutionContext } from 'ava';
import { bootVcpu, buildBootImage, layout as L, type BootLayout, type OperationName } from '../../host/vmm/boot/index.js';
import type { Regs } from '../../host/kvm/api/regs.js';
import type { VcpuExit } from '../../host/kvm/api/exits.js';
import { deadlineIn, openKvm, probeKvm, type Kvm, type VcpuFd, type VmFd } from '../../host/kvm/real/index.js';
import { assemble, type AsmLine } from '../kvm/guest.js';

/** Real KVM for this test file, or why there is none. */
export const real: { kvm: Kvm; why?: undefined } | { kvm?: undefined; why: string } = await (async () => {
  const probe = await probeKvm();
  if (probe.verdict !== 'usable') return { why: probe.summary };
  return { kvm: await openKvm() };
})();

/** Registers `body` as a test where real KVM is usable, else a visible "not run: why" todo. */
export function realTest(title: string, body: (t: ExecutionContext, kvm: Kvm) => void | Promise<void>): void {
  if (real.kvm !== undefined) {
    const kvm = real.kvm;
    test(title, (t) => body(t, kvm));
  } else {
    test.todo(`${title} — not run: ${real.why}`);
  }
}

/** How long a test lets one run() take before it is a failure (never a hang). */
export const TEST_RUN_MS = 5000;

const U64 = (1n << 64n) - 1n;

export class RealGuest {
  readonly vm: VmFd;
  readonly vcpu: VcpuFd;
  readonly boot: BootLayout;

  /** A booted one-vCPU VM; the CPUID is the kernel's supported one. Closed when the test ends. */
  constructor(
    t: ExecutionContext,
    readonly kvm: Kvm,
  ) {
    this.vm = kvm.createVm();
    t.teardown(() => this.vm.close());
    this.boot = buildBootImage(this.vm.memory, { vcpus: 1 });
    this.vcpu = this.vm.createVcpu(0);
    this.vcpu.setCpuid2(kvm.getSupportedCpuid());
    bootVcpu(this.vcpu, this.boot, 0);
  }

  run(ms = TEST_RUN_MS): VcpuExit {
    return this.vcpu.run({ deadline: deadlineIn(ms) });
  }

  runExpecting<R extends VcpuExit['reason']>(reason: R): Extract<VcpuExit, { reason: R }> {
    const exit = this.run();
    if (exit.reason !== reason) throw new Error(`expected ${reason}, got ${exit.reason} (exit_reason ${exit.exit_reason}${exit.timed_out ? ', timed out' : ''})`);
    return exit as Extract<VcpuExit, { reason: R }>;
  }

  regs(): Regs {
    return this.vcpu.getRegs();
  }

  setRegs(values: Partial<Regs>): void {
    this.vcpu.setRegs({ ...this.vcpu.getRegs(), ...values });
  }

  /** Points RIP at the CPL0 template of `op`, a fault resuming at its epilogue. */
  start(op: OperationName, regs: Partial<Regs> = {}): { entry: number; epilogue: number } {
    const t = this.boot.text.kernelOps[op];
    this.armFaultRecord(t.epilogue);
    this.setRegs({ ...regs, rip: BigInt(t.entry) });
    return t;
  }

  /** Writes a checked snippet into the kernel exec slot and points RIP at it. */
  startCode(lines: readonly AsmLine[], regs: Partial<Regs> = {}): { base: number; end: number } {
    const base = this.boot.kernelExecSlot(0).base;
    const bytes = assemble(lines, base);
    this.vm.memory.writeBytes(base, bytes);
    this.armFaultRecord(0);
    this.setRegs({ ...regs, rip: BigInt(base) });
    return { base, end: base + bytes.length };
  }

  /** The fault the boot IDT recorded since the operation started (null: none). */
  fault(): { vector: number; errorCode: number; rip: bigint } | null {
    const m = this.vm.memory;
    const at = L.faultRecordAddress(0);
    if (m.read64(at + L.FAULT_RECORD.count) === 0n) return null;
    return {
      vector: Number(m.read64(at + L.FAULT_RECORD.vector)),
      errorCode: Number(m.read64(at + L.FAULT_RECORD.errorCode)),
      rip: m.read64(at + L.FAULT_RECORD.rip),
    };
  }

  private armFaultRecord(fixup: number): void {
    const m = this.vm.memory;
    const at = L.faultRecordAddress(0);
    m.write64(at + L.FAULT_RECORD.count, 0n);
    m.write64(at + L.FAULT_RECORD.vector, U64);
    m.write64(at + L.FAULT_RECORD.fixup, BigInt(fixup));
  }
}
