/**
 * The one exit path of host/kvm (docs/kvm-exits.md): the exit table names and numbers every
 * exit, and the completion an exit stores runs first in the next KVM_RUN, as
 * vcpu->arch.complete_userspace_io does in kvm_arch_vcpu_ioctl_run() (arch/x86/kvm/x86.c).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { exitReasonName, exitReasonNumber, KVM_EXITS, type KvmRunMsr, type VcpuExitReason } from '../../host/kvm/api/exits.js';
import type { VcpuArch } from '../../host/kvm/vcpu-arch.js';
import { Guest } from './guest.js';

const REASONS = Object.keys(KVM_EXITS) as VcpuExitReason[];

test('every exit in the table is named back from its number, under either Heki profile', (t) => {
  for (const profile of Object.values(abi.HEKI_PROFILES)) {
    const present = REASONS.filter((r) => exitReasonNumber(r, profile) !== undefined);
    const numbers = present.map((r) => exitReasonNumber(r, profile)!);
    t.is(new Set(numbers).size, numbers.length, `${profile.name}: numbers are distinct`);
    for (const r of present) t.is(exitReasonName(exitReasonNumber(r, profile)!, profile), r, `${profile.name}: ${r}`);
  }
  // Heki v2 (on 6.6) has 39 as KVM_EXIT_HEKI_CONFIGURE and no KVM_EXIT_MEMORY_FAULT; v3 (on 6.9) has it at 39.
  t.is(exitReasonNumber('KVM_EXIT_MEMORY_FAULT', abi.HEKI_PROFILES.v2), undefined);
  t.is(exitReasonNumber('KVM_EXIT_MEMORY_FAULT', abi.HEKI_PROFILES.v3), 39);
  // 35 is KVM_EXIT_RISCV_SBI (include/uapi/linux/kvm.h): another architecture's, not in the table.
  t.is(exitReasonName(35, abi.HEKI_PROFILES.v2), undefined);
  t.is(exitReasonName(abi.KVM_EXIT_MMIO, null), 'KVM_EXIT_MMIO', 'exits the model never gives are in the table too');
});

test('without a Heki profile, 39-41 are not Heki exits (include/uapi/linux/kvm.h: 39 is KVM_EXIT_MEMORY_FAULT)', (t) => {
  t.is(exitReasonName(39, null), 'KVM_EXIT_MEMORY_FAULT');
  for (const n of [40, 41]) t.is(exitReasonName(n, null), undefined);
  t.is(exitReasonName(abi.KVM_EXIT_X86_RDMSR, null), 'KVM_EXIT_X86_RDMSR');
});

/** A vCPU stopped in a RDMSR exit (an MSR KVM does not know, KVM_MSR_EXIT_REASON_UNKNOWN asked for). */
function inRdmsrExit(): { g: Guest; v: VcpuArch; entry: number; msr: KvmRunMsr } {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [BigInt(abi.KVM_MSR_EXIT_REASON_UNKNOWN)]);
  const op = g.start('rdmsr', { rcx: 0xdeadbeefn });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  return { g, v: g.vcpu()['arch'] as VcpuArch, entry: op.entry, msr: exit.msr };
}

test('the stored completion is cleared before it runs, and one that exits again ends KVM_RUN before the guest runs', (t) => {
  const { g, v, entry, msr } = inRdmsrExit();
  const stored = v.completeUserspaceIo!;
  t.is(typeof stored, 'function');
  msr.data = 0x42n;
  let seenWhileRunning: unknown = 'not run';
  // As a completion whose instruction retires into a debug exit would (kvm_skip_emulated_instruction() returning 0).
  v.completeUserspaceIo = (arch) => {
    seenWhileRunning = arch.completeUserspaceIo;
    stored(arch);
    return arch.exitToUserSpace('KVM_EXIT_HLT');
  };
  const retired = (): number => (v.cpu as unknown as { instructionsRetired: number }).instructionsRetired;
  const before = retired();
  t.is(g.run().reason, 'KVM_EXIT_HLT');
  t.is(seenWhileRunning, null);
  t.is(retired(), before, 'no guest instruction ran after the completion');
  t.is(g.regs().rip, BigInt(entry + 2), 'the RDMSR (0f 32) retired');
  t.is(g.regs().rax, 0x42n);
  t.true(v.completeUserspaceIo === null, 'nothing is left stored');
  t.is(g.finish().fault, null, 'the next KVM_RUN runs the guest on to the end of the operation');
});

test('a completion that does not exit again lets the guest run on in the same KVM_RUN', (t) => {
  const { g, v } = inRdmsrExit();
  const stored = v.completeUserspaceIo!;
  let calls = 0;
  v.completeUserspaceIo = (arch) => {
    calls++;
    return stored(arch);
  };
  t.is(g.finish().fault, null);
  t.is(calls, 1);
});

test('INIT drops a stored completion unrun (kvm_vcpu_reset())', (t) => {
  const { g, v } = inRdmsrExit();
  g.vcpu().init();
  t.is(v.completeUserspaceIo, null);
});
