/**
 * The real backend on the machine's /dev/kvm: pinbox's boot state is accepted, guest RDMSR,
 * WRMSR, MOV to CR, OUT and HLT give the exits and results upstream KVM documents
 * (Documentation/virt/kvm/api.rst: KVM_X86_SET_MSR_FILTER, KVM_CAP_X86_USER_SPACE_MSR,
 * KVM_EXIT_X86_RDMSR/WRMSR, immediate_exit; x86.c kvm_is_valid_cr4()), a guest that never
 * exits ends at run()'s deadline, and a closed object answers EBADF instead of crashing.
 * Where real KVM is unusable each test shows as "not run: <why>".
 */
import {
  KVM_CAP_X86_USER_SPACE_MSR, KVM_EXIT_INTR, KVM_EXIT_IO_OUT, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_EXIT_REASON_UNKNOWN,
  KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_DEFAULT_DENY, KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE, MSR_EFER,
  MSR_IA32_POWER_CTL, MSR_STAR, X86_CR0_WP, X86_CR4_SMEP, HEKI_PROFILES,
} from '../../protocol/abi.js';
import { bootSregs } from '../../host/vmm/boot/index.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { deadlineIn, monotonicNow } from '../../host/kvm/real/index.js';
import { bitmap } from '../kvm/guest.js';
import { RealGuest, realTest } from './real-guest.js';

const GP = 13;
const lo32 = (v: bigint): bigint => v & 0xffff_ffffn;

realTest('real KVM accepts pinbox\'s boot state and runs a guest RDMSR, OUT and HLT on it', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  const s = g.vcpu.getSregs();
  const want = bootSregs(g.boot, 0);
  t.is(s.cr0, want.cr0);
  t.is(s.cr3, want.cr3);
  t.is(s.cr4, want.cr4);
  t.is(s.efer, want.efer);
  t.deepEqual(s.cs, want.cs);
  t.deepEqual(s.gdt, want.gdt);
  t.deepEqual(s.idt, want.idt);
  // RDMSR of EFER, answered in the kernel: SCE|LME|LMA|NXE as booted.
  const op = g.start('rdmsr', { rcx: BigInt(MSR_EFER) });
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.fault(), null);
  t.is(g.regs().rax, want.efer);
  t.true(g.regs().rip > BigInt(op.epilogue), 'HLT retired before the exit');
  const code = g.startCode(['b0 5a | mov al, 0x5a', 'e6 80 | out 0x80, al', 'f4 | hlt']);
  const io = g.runExpecting('KVM_EXIT_IO');
  t.is(io.io.direction, KVM_EXIT_IO_OUT);
  t.is(io.io.port, 0x80);
  t.is(io.io.size, 1);
  t.is(io.io.count, 1);
  t.is(io.io.data, 0x5a);
  // After an OUT exit RIP is already past the instruction (docs/real-kvm.md §3).
  t.is(g.regs().rip, BigInt(code.base + 4));
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rip, BigInt(code.end));
});

realTest('a filtered RDMSR exits to user space with reason FILTER, and the reply completes it', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [KVM_MSR_EXIT_REASON_FILTER]);
  g.vm.setMsrFilter({ flags: KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: KVM_MSR_FILTER_READ, base: MSR_IA32_POWER_CTL, nmsrs: 1, bitmap: bitmap(1, false) }] });
  const op = g.start('rdmsr', { rcx: BigInt(MSR_IA32_POWER_CTL) });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, KVM_MSR_EXIT_REASON_FILTER);
  t.is(exit.msr.index, MSR_IA32_POWER_CTL);
  // At an MSR exit RIP is still on the RDMSR (§3).
  t.is(g.regs().rip, BigInt(op.entry));
  exit.msr.data = 0x1234_5678_9abc_def0n;
  exit.msr.error = 0;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.fault(), null);
  t.is(lo32(g.regs().rax), 0x9abc_def0n);
  t.is(lo32(g.regs().rdx), 0x1234_5678n);
});

realTest('a user-space MSR exit answered with error injects #GP(0) into the guest', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [KVM_MSR_EXIT_REASON_FILTER]);
  g.vm.setMsrFilter({ flags: KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: KVM_MSR_FILTER_WRITE, base: MSR_STAR, nmsrs: 1, bitmap: bitmap(1, false) }] });
  g.start('wrmsr', { rcx: BigInt(MSR_STAR), rax: 0x1111n, rdx: 0x0023_0010n });
  const exit = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.is(exit.msr.index, MSR_STAR);
  t.is(exit.msr.data, 0x0023_0010_0000_1111n);
  exit.msr.error = 1;
  g.runExpecting('KVM_EXIT_HLT');
  t.like(g.fault(), { vector: GP, errorCode: 0 });
  t.is(g.vcpu.getMsrs([MSR_STAR])[0]!.data, 0n, 'the refused write did not reach STAR');
});

realTest('an allowed MSR is handled in the kernel; a denied one without user-space exits is #GP', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  // Deny POWER_CTL reads by default-deny, allow STAR through its range.
  g.vm.setMsrFilter({
    flags: KVM_MSR_FILTER_DEFAULT_DENY,
    ranges: [{ flags: KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, base: MSR_STAR, nmsrs: 1, bitmap: bitmap(1, true) }],
  });
  t.is(g.vcpu.setMsrs([{ index: MSR_STAR, data: 0x0023_0010_0000_0000n }]), 1);
  g.start('rdmsr', { rcx: BigInt(MSR_STAR) });
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.fault(), null);
  t.is(lo32(g.regs().rdx), 0x0023_0010n);
  g.start('rdmsr', { rcx: BigInt(MSR_IA32_POWER_CTL) });
  g.runExpecting('KVM_EXIT_HLT');
  t.like(g.fault(), { vector: GP, errorCode: 0 });
  // Host-initiated reads are never filtered.
  t.is(g.vcpu.getMsrs([MSR_IA32_POWER_CTL]).length, 1);
});

realTest('an MSR KVM does not know exits with reason UNKNOWN when user space asked for it', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [KVM_MSR_EXIT_REASON_UNKNOWN]);
  g.start('rdmsr', { rcx: 0x4000_1234n });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  t.is(exit.msr.reason, KVM_MSR_EXIT_REASON_UNKNOWN);
  t.is(exit.msr.index, 0x4000_1234);
  exit.msr.data = 7n;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.fault(), null);
  t.is(lo32(g.regs().rax), 7n);
});

realTest('immediate_exit applies the pending MSR reply, then KVM_RUN returns KVM_EXIT_INTR (not timed out)', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [KVM_MSR_EXIT_REASON_UNKNOWN]);
  const op = g.start('rdmsr', { rcx: 0x4000_1234n });
  const exit = g.runExpecting('KVM_EXIT_X86_RDMSR');
  exit.msr.data = 0x55n;
  exit.immediate_exit = true;
  const intr = g.run();
  t.is(intr.reason, 'KVM_EXIT_INTR');
  t.is(intr.exit_reason, KVM_EXIT_INTR);
  t.false(intr.timed_out);
  t.is(lo32(g.regs().rax), 0x55n);
  t.true(g.regs().rip > BigInt(op.entry), 'the RDMSR retired');
  intr.immediate_exit = false;
  g.runExpecting('KVM_EXIT_HLT');
});

realTest('MOV to CR0/CR4 is checked by the kernel: WP and SMEP clear, a reserved CR4 bit is #GP(0)', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  const cr0 = g.vcpu.getSregs().cr0;
  g.start('writeCr0', { rax: cr0 & ~X86_CR0_WP });
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.fault(), null);
  t.is(g.vcpu.getSregs().cr0, cr0 & ~X86_CR0_WP);
  const cr4 = g.vcpu.getSregs().cr4;
  g.start('writeCr4', { rax: cr4 & ~X86_CR4_SMEP });
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.fault(), null);
  t.is(g.vcpu.getSregs().cr4, cr4 & ~X86_CR4_SMEP);
  // CR4 bit 15 is reserved on every x86 CPU (CR4_RESERVED_BITS): kvm_set_cr4() refuses it.
  g.start('writeCr4', { rax: cr4 | (1n << 15n) });
  g.runExpecting('KVM_EXIT_HLT');
  t.like(g.fault(), { vector: GP, errorCode: 0 });
  t.is(g.vcpu.getSregs().cr4, cr4 & ~X86_CR4_SMEP);
});

realTest('a guest that never exits ends at the deadline with KVM_EXIT_INTR, timed out, never a hang', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  const code = g.startCode(['eb fe | jmp short 0x100000']);
  const before = monotonicNow();
  const deadline = deadlineIn(200);
  const exit = g.vcpu.run({ deadline });
  const ms = Number(monotonicNow() - before) / 1e6;
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.true(exit.timed_out);
  t.true(ms >= 199 && ms < 3000, `${ms} ms`);
  t.is(g.regs().rip, BigInt(code.base));
  t.is(g.vcpu.stat.timeouts, 1);
  // The same deadline again, now past: the run ends at once instead of running unbounded.
  const again = g.vcpu.run({ deadline });
  t.true(again.timed_out);
  t.is(g.vcpu.stat.timeouts, 2);
  // A new deadline re-arms the timer.
  t.true(g.vcpu.run({ deadline: deadlineIn(50) }).timed_out);
});

realTest('after close, the VM, its memory, its vCPU and an exit already returned answer EBADF', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.startCode(['f4 | hlt']);
  const exit = g.run();
  t.is(exit.reason, 'KVM_EXIT_HLT');
  g.vm.close();
  t.true(g.vcpu.closed);
  const ebadf = { instanceOf: KvmError, message: /EBADF/ };
  t.throws(() => g.vcpu.run(), ebadf);
  t.throws(() => g.vcpu.getRegs(), ebadf);
  t.throws(() => g.vcpu.setSregs(g.vcpu.getSregs()), ebadf);
  t.throws(() => g.vm.memory.read64(0x1000), ebadf);
  t.throws(() => g.vm.memory.writeBytes(0, new Uint8Array(4)), ebadf);
  t.throws(() => g.vm.createVcpu(1), ebadf);
  t.throws(() => g.vm.setMsrFilter({ flags: 0 }), ebadf);
  t.throws(() => exit.reason, ebadf);
  t.throws(() => g.vcpu.kvmRun.cr8, ebadf);
  t.throws(() => { exit.immediate_exit = true; }, ebadf);
  t.notThrows(() => g.vm.close(), 'closing twice is harmless');
});

realTest('kernel refusals arrive as KvmError with the kernel\'s errno', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  t.throws(() => g.vm.setMsrFilter({ flags: KVM_MSR_FILTER_DEFAULT_DENY }), { instanceOf: KvmError, message: /^KVM_X86_SET_MSR_FILTER: EINVAL/ });
  t.throws(() => g.vm.enableCap(KVM_CAP_X86_USER_SPACE_MSR, [1n << 20n]), { instanceOf: KvmError, message: /EINVAL/ });
  // A range whose bitmap cannot be read: the kernel's memdup_user() fails.
  t.throws(() => g.vm.setMsrFilter({ flags: KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: KVM_MSR_FILTER_READ, base: 0, nmsrs: 1 }] }), { instanceOf: KvmError, message: /^KVM_X86_SET_MSR_FILTER: EFAULT/ });
  t.throws(() => g.vcpu.getMsrs(Array.from({ length: 256 }, () => MSR_STAR)), { instanceOf: KvmError, message: /^KVM_GET_MSRS: E2BIG/ });
  // Long mode without paging is refused by kvm_is_valid_sregs().
  const s = g.vcpu.getSregs();
  t.throws(() => g.vcpu.setSregs({ ...s, cr0: s.cr0 & ~(1n << 31n) }), { instanceOf: KvmError, message: /^KVM_SET_SREGS: EINVAL/ });
  // Values a C field cannot hold never reach the kernel.
  t.throws(() => g.vcpu.setRegs({ ...g.regs(), rax: -1n }), { instanceOf: KvmError, message: /rax must be a u64/ });
});

realTest('without Heki in the kernel, the Heki capabilities answer 0 and cannot be enabled', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  const v2 = HEKI_PROFILES.v2;
  t.is(g.vm.checkExtension(v2.KVM_CAP_HEKI_CONFIGURE), 0);
  t.is(g.vm.checkExtension(v2.KVM_CAP_HEKI_DENIAL), 0);
  t.is(kvm.checkExtension(v2.KVM_CAP_HEKI_CONFIGURE), 0);
  t.throws(() => g.vm.enableCap(v2.KVM_CAP_HEKI_DENIAL, [3]), { instanceOf: KvmError, message: /no Heki/ });
  t.is(g.vm.checkExtension(KVM_CAP_X86_USER_SPACE_MSR), 1);
});

realTest('kvm_run.s.regs is synced in place (KVM_CAP_SYNC_REGS)', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.startCode(['48 89 c3 | mov rbx, rax', 'f4 | hlt'], { rax: 0x1234n });
  const exit = g.vcpu.kvmRun;
  exit.kvm_valid_regs = 1;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(exit.s.regs.rbx, 0x1234n);
  g.startCode(['f4 | hlt']);
  // s.regs still holds the registers of the last exit: every field is loaded, so RIP too.
  exit.s.regs.rdx = 0xabcdn;
  exit.s.regs.rip = BigInt(g.boot.kernelExecSlot(0).base);
  exit.kvm_dirty_regs = 1;
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rdx, 0xabcdn);
  t.is(exit.kvm_dirty_regs, 0, 'the kernel clears the dirty bit it loaded');
});

realTest('a triple fault (no IDT to deliver #UD through) exits as KVM_EXIT_SHUTDOWN', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  g.startCode(['0f 0b | ud2']);
  g.vcpu.setSregs({ ...g.vcpu.getSregs(), idt: { base: 0n, limit: 0 } });
  const exit = g.run();
  t.is(exit.reason, 'KVM_EXIT_SHUTDOWN');
});

realTest('the CPUID by features, as the model\'s setCpuid(): the named bits change, the others stay', (t, kvm) => {
  const vm = kvm.createVm();
  t.teardown(() => vm.close());
  const vcpu = vm.createVcpu(0);
  t.deepEqual(vcpu.getCpuid2(), [], 'a new vCPU has no CPUID');
  // On a vCPU with no CPUID, setCpuid() starts from KVM_GET_SUPPORTED_CPUID.
  vcpu.setCpuid({});
  t.is(vcpu.getCpuid2().length, kvm.getSupportedCpuid().length);
  const leaf = (f: number) => vcpu.getCpuid2().find((e) => e.function === f && e.index === 0)!;
  const before = leaf(1).ecx;
  t.not(before & (1 << 21), 0, 'the kernel offers x2APIC');
  vcpu.setCpuid({ x2apic: false, maxPhysAddr: 40, kvmPvFeatures: 0 });
  t.is(leaf(1).ecx, (before & ~(1 << 21)) >>> 0, 'CPUID.1:ECX lost x2APIC and nothing else');
  t.is(leaf(0x8000_0008).eax & 0xff, 40);
  t.is(leaf(0x4000_0001).eax, 0);
  t.like(vcpu.getCpuid(), { x2apic: false, maxPhysAddr: 40, kvmPvFeatures: 0 });
  t.throws(() => vcpu.setCpuid({ smep: 1 as unknown as boolean }), { instanceOf: KvmError, message: /guestCpuid.smep must be a boolean/ });
  t.throws(() => vcpu.setCpuid({ nosuch: true } as never), { instanceOf: KvmError, message: /no feature "nosuch"/ });
});
