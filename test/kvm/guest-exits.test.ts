/**
 * The exits of KVM_RUN other than MSR and Heki ones, from real guest instructions on the
 * core: KVM_EXIT_HLT (kvm_emulate_halt() retires the HLT first), KVM_EXIT_IO with the
 * completions of kvm_fast_pio() (complete_fast_pio_in/out, the port 0x7E quirk),
 * KVM_EXIT_SHUTDOWN on a triple fault, KVM_EXIT_INTR (a spent budget stands for a signal;
 * immediate_exit), KVM_EXIT_FAIL_ENTRY after INIT, and the in-kernel intercepts that never
 * reach user space: CPUID (kvm_emulate_cpuid()) and hypercalls (kvm_emulate_hypercall()).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { DEFAULT_KVM_PV_FEATURES } from '../../host/kvm/cpuid.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Guest, neg } from './guest.js';

const ONES = (1n << 64n) - 1n;

test('HLT exits KVM_EXIT_HLT with RIP past the HLT', (t) => {
  const g = new Guest();
  const code = g.startCode(['90 | nop', 'f4 | hlt']);
  const exit = g.runExpecting('KVM_EXIT_HLT');
  t.is(exit.exit_reason, abi.KVM_EXIT_HLT);
  t.is(g.regs().rip, BigInt(code.end));
  t.is(g.vcpu().stat.halt_exits, 1);
});

test('OUT exits KVM_EXIT_IO with AL/AX/EAX as data; the OUT retires on the next KVM_RUN', (t) => {
  const g = new Guest();
  const code = g.startCode(
    ['e6 80 | out 0x80, al', '66 ef | out dx, ax', 'ef | out dx, eax', 'f4 | hlt'],
    { rax: 0xffff_ffff_1234_5678n, rdx: 0x3f8n },
  );
  const expected = [
    { port: 0x80, size: 1, data: 0x78, at: 0 },
    { port: 0x3f8, size: 2, data: 0x5678, at: 2 },
    { port: 0x3f8, size: 4, data: 0x1234_5678, at: 4 },
  ];
  for (const e of expected) {
    const exit = g.runExpecting('KVM_EXIT_IO');
    t.is(exit.exit_reason, abi.KVM_EXIT_IO);
    t.deepEqual({ ...exit.io }, { direction: abi.KVM_EXIT_IO_OUT, size: e.size, port: e.port, count: 1, data: e.data });
    t.is(g.regs().rip, BigInt(code.base + e.at), 'RIP stays on the OUT until user space re-enters');
  }
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rip, BigInt(code.end));
  t.is(g.vcpu().stat.io_exits, 3);
});

test('OUT to port 0x7E has already retired when it exits (KVM_X86_QUIRK_OUT_7E_INC_RIP)', (t) => {
  const g = new Guest();
  const code = g.startCode(['e6 7e | out 0x7e, al', 'f4 | hlt'], { rax: 0x42n });
  const exit = g.runExpecting('KVM_EXIT_IO');
  t.deepEqual([exit.io.port, exit.io.data], [0x7e, 0x42]);
  t.is(g.regs().rip, BigInt(code.base + 2));
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rip, BigInt(code.end), 'not skipped twice');
});

test('IN: user space fills io.data; AL and AX merge into RAX, EAX zero-extends', (t) => {
  const g = new Guest();
  g.startCode(['e4 70 | in al, 0x70', 'f4 | hlt'], { rax: 0x1111_2222_3333_4444n });
  const exit = g.runExpecting('KVM_EXIT_IO');
  t.deepEqual({ ...exit.io }, { direction: abi.KVM_EXIT_IO_IN, size: 1, port: 0x70, count: 1, data: 0 });
  exit.io.data = 0x5a;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rax, 0x1111_2222_3333_445an);

  g.startCode(['66 ed | in ax, dx', 'f4 | hlt'], { rax: 0x1111_2222_3333_4444n, rdx: 0x1f0n });
  g.runExpecting('KVM_EXIT_IO').io.data = 0xbeef;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rax, 0x1111_2222_3333_beefn);

  g.startCode(['ed | in eax, dx', 'f4 | hlt'], { rax: ONES, rdx: 0xcfcn });
  g.runExpecting('KVM_EXIT_IO').io.data = 0x8000_0001;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rax, 0x8000_0001n);
});

test('an IN whose RIP user space moved meanwhile completes nothing', (t) => {
  const g = new Guest();
  const code = g.startCode(['e4 70 | in al, 0x70', 'f4 | hlt'], { rax: 0x99n });
  const exit = g.runExpecting('KVM_EXIT_IO');
  exit.io.data = 0x5a;
  g.setRegs({ rip: BigInt(code.base + 2) });
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rax, 0x99n);
  t.is(g.regs().rip, BigInt(code.end), 'the HLT at the new RIP ran; it was not skipped');
});

test('an IN reply that does not fit the access size makes KVM_RUN fail with EINVAL', (t) => {
  const g = new Guest();
  g.startCode(['e4 70 | in al, 0x70', 'f4 | hlt']);
  g.runExpecting('KVM_EXIT_IO').io.data = 0x100;
  t.throws(() => g.run(), { instanceOf: KvmError, code: 'EINVAL', message: /io\.data/ });
});

test('a triple fault is KVM_EXIT_SHUTDOWN', (t) => {
  const g = new Guest();
  // An IDT that holds no gate: #UD, then #GP, then #DF cannot be delivered.
  const sregs = g.vcpu().getSregs();
  g.vcpu().setSregs({ ...sregs, idt: { base: sregs.idt.base, limit: 0 } });
  g.startCode(['0f 0b | ud2']);
  t.is(g.runExpecting('KVM_EXIT_SHUTDOWN').exit_reason, abi.KVM_EXIT_SHUTDOWN);
});

test('a spent budget is KVM_EXIT_INTR, as a signal would be; the guest resumes where it stopped', (t) => {
  const g = new Guest();
  const code = g.startCode(['48 ff c0 | inc rax', 'eb fb | jmp short 0x100000'], { rax: 0n });
  const exit = g.vcpu().run({ budget: 1000 });
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.is(exit.exit_reason, abi.KVM_EXIT_INTR);
  t.is(g.regs().rax, 500n, '1000 instructions: 500 INC and 500 JMP');
  t.is(g.regs().rip, BigInt(code.base));
  t.is(g.vcpu().run({ budget: 10 }).reason, 'KVM_EXIT_INTR');
  t.is(g.regs().rax, 505n);
  t.is(g.vcpu().stat.signal_exits, 2);
  t.throws(() => g.vcpu().run({ budget: 0 }), { instanceOf: KvmError, code: 'EINVAL' });
});

test('immediate_exit: KVM_RUN finishes the pending completion, then returns KVM_EXIT_INTR without running the guest', (t) => {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [abi.KVM_MSR_EXIT_REASON_UNKNOWN]);
  const op = g.start('rdmsr', { rcx: 0xdeadbeefn });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  exit.msr.data = 7n;
  exit.immediate_exit = true;
  g.runExpecting('KVM_EXIT_INTR');
  t.is(g.regs().rax, 7n, 'the RDMSR completed');
  t.is(g.regs().rip, BigInt(op.epilogue), 'and nothing after it ran');
  g.runExpecting('KVM_EXIT_INTR');
  exit.immediate_exit = false;
  g.runExpecting('KVM_EXIT_HLT');
});

test('INIT leaves the vCPU in real mode at F000:FFF0, which this core cannot run: KVM_EXIT_FAIL_ENTRY until re-booted', (t) => {
  const g = new Guest();
  g.vcpu().init();
  const regs = g.regs();
  t.is(regs.rip, 0xfff0n);
  t.is(regs.rdx, 0x606a6n, 'RDX = CPUID.1:EAX at INIT');
  const sregs = g.vcpu().getSregs();
  t.deepEqual([sregs.cs.selector, sregs.cs.base], [0xf000, 0xffff0000n]);
  t.is(sregs.cr0, abi.X86_CR0_ET, 'CD and NW are kept from before INIT (both clear in the booted guest)');
  t.is(sregs.apicBase, 0xfee00900n, 'INIT keeps the APIC base');
  const exit = g.runExpecting('KVM_EXIT_FAIL_ENTRY');
  t.is(exit.exit_reason, abi.KVM_EXIT_FAIL_ENTRY);
  t.is(exit.fail_entry.hardware_entry_failure_reason, 0x8000_0021n);
  t.regex(exit.fail_entry.detail, /CR0\.PE/);
  g.reboot();
  g.startCode(['f4 | hlt']);
  g.runExpecting('KVM_EXIT_HLT');
});

test('CPUID is answered in the kernel: vendor, KVM signature and PV features; upper halves cleared', (t) => {
  const g = new Guest({ vcpus: 2 });
  const cpuid = (leaf: number, n = 0): bigint[] => {
    g.start('cpuid', { rax: BigInt(leaf), rbx: ONES, rcx: 0n, rdx: ONES }, n);
    const r = g.finish(n).regs;
    return [r.rax, r.rbx, r.rcx, r.rdx];
  };
  const text = (...regs: bigint[]): string =>
    Buffer.from(regs.flatMap((r) => [0, 8, 16, 24].map((s) => Number((r >> BigInt(s)) & 0xffn)))).toString('latin1');
  const [max, ebx, ecx, edx] = cpuid(0);
  t.true(max! >= 7n);
  t.is(text(ebx!, edx!, ecx!), 'GenuineIntel');
  const [kvmMax, kb, kc, kd] = cpuid(abi.KVM_CPUID_SIGNATURE);
  t.is(kvmMax, BigInt(abi.KVM_CPUID_FEATURES));
  t.is(text(kb!, kc!, kd!), 'KVMKVMKVM\0\0\0');
  t.is(cpuid(abi.KVM_CPUID_FEATURES)[0], BigInt(DEFAULT_KVM_PV_FEATURES), 'the VM\'s guest PV features (the documented default)');
  const [, leaf1Ebx, leaf1Ecx] = cpuid(1, 1);
  t.is(leaf1Ebx! >> 24n, 1n, 'initial APIC ID of vCPU 1');
  t.is(leaf1Ecx! >> 31n, 1n, 'CPUID.1:ECX bit 31, hypervisor present');
  const leaf7Ebx = cpuid(7)[1]!;
  t.is(leaf7Ebx & BigInt(abi.CPUID_7_EBX_SMEP | abi.CPUID_7_EBX_SMAP), BigInt(abi.CPUID_7_EBX_SMEP | abi.CPUID_7_EBX_SMAP));
});

test('CPUID.1:ECX.OSXSAVE follows CR4.OSXSAVE (kvm_update_cpuid_runtime()); CPUID runs at CPL3 too', (t) => {
  const g = new Guest({ guestCpuid: { xsave: true } });
  const osxsave = BigInt(abi.CPUID_1_ECX_OSXSAVE);
  g.start('cpuid', { rax: 1n, rcx: 0n });
  t.is(g.finish().regs.rcx & osxsave, 0n);
  g.start('writeCr4', { rax: g.cr(4) | abi.X86_CR4_OSXSAVE });
  t.is(g.finish().fault, null);
  g.startUser('cpuid', { rax: 1n, rcx: 0n });
  const out = g.finish();
  t.is(out.fault, null);
  t.is(out.regs.rcx & osxsave, osxsave);
});

test('hypercalls other than Heki\'s: VAPIC_POLL_IRQ 0, unknown -KVM_ENOSYS, CLOCK_PAIRING -KVM_EOPNOTSUPP; VMMCALL as VMCALL', (t) => {
  const g = new Guest();
  const call = (op: 'vmcall' | 'vmmcall', nr: number): bigint => {
    g.start(op, { rax: BigInt(nr), rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n });
    return g.finish().regs.rax;
  };
  for (const op of ['vmcall', 'vmmcall'] as const) {
    t.is(call(op, abi.KVM_HC_VAPIC_POLL_IRQ), 0n, op);
    t.is(call(op, 99), neg(abi.KVM_ENOSYS), op);
    t.is(call(op, abi.KVM_HC_CLOCK_PAIRING), neg(abi.KVM_EOPNOTSUPP), op);
  }
  t.is(g.vcpu().stat.hypercalls, 6);
});
