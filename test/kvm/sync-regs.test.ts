/**
 * KVM_CAP_SYNC_REGS (api.rst "kvm_valid_regs / kvm_dirty_regs"; x86.c store_regs(),
 * sync_regs()): registers stored into kvm_run.s at every exit, loaded from it before a run
 * when marked dirty, the dirty bit cleared, bad masks EINVAL.
 */
import test from 'ava';
import {
  KVM_CAP_SYNC_REGS, KVM_SYNC_X86_EVENTS, KVM_SYNC_X86_REGS, KVM_SYNC_X86_SREGS, MSR_EFER, X86_CR4_SMEP,
} from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Kvm } from '../../host/kvm/kvm.js';
import { copyRegs } from '../../host/kvm/api/regs.js';
import { Cpu } from '../../host/x86/cpu.js';
import { bootVcpu, buildBootImage, layout as L } from '../../host/vmm/boot/index.js';

/** EFER after boot: SCE|LME|LMA|NXE (SDM vol. 3A §2.2.1; layout of host/vmm/boot). */
const BOOT_EFER = 0xd01n;

function booted() {
  const kvm = new Kvm({ createCpu: (memory) => new Cpu(memory) });
  const vm = kvm.createVm();
  const image = buildBootImage(vm.memory, { vcpus: 1 });
  const vcpu = vm.createVcpu(0);
  bootVcpu(vcpu, image, 0);
  return { kvm, vm, vcpu, image };
}

/** A booted vCPU syncing its registers, after an RDMSR of EFER loaded through s.regs. */
function afterRdmsrOfEfer() {
  const b = booted();
  const run = b.vcpu.kvmRun;
  run.kvm_valid_regs = KVM_SYNC_X86_REGS;
  const op = b.image.text.kernelOps.rdmsr;
  run.s.regs.rcx = BigInt(MSR_EFER);
  run.s.regs.rip = BigInt(op.entry);
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  b.vcpu.run();
  return { ...b, run, op };
}

/** Stores the registers without running the guest: KVM_RUN with immediate_exit. */
function storeOnly(vcpu: ReturnType<typeof booted>['vcpu']): void {
  const run = vcpu.kvmRun;
  run.immediate_exit = true;
  const exit = vcpu.run();
  run.immediate_exit = false;
  if (exit.reason !== 'KVM_EXIT_INTR') throw new Error(`immediate_exit gave ${exit.reason}`);
}

test('KVM_CHECK_EXTENSION(KVM_CAP_SYNC_REGS) answers REGS|SREGS (pinbox has no vCPU events)', (t) => {
  t.is(new Kvm().checkExtension(KVM_CAP_SYNC_REGS), KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS);
});

test('with KVM_SYNC_X86_REGS valid, every exit stores the registers; dirty ones are loaded and the bit cleared', (t) => {
  const { vcpu, image } = booted();
  const run = vcpu.kvmRun;
  run.kvm_valid_regs = KVM_SYNC_X86_REGS;
  storeOnly(vcpu);
  t.is(run.s.regs.rip, BigInt(image.text.doneHalt), 'the boot RIP');
  t.is(run.s.regs.rsp, BigInt(L.kernelStackTop(0)));

  const op = image.text.kernelOps.rdmsr;
  run.s.regs.rcx = BigInt(MSR_EFER);
  run.s.regs.rip = BigInt(op.entry);
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  t.is(vcpu.run().reason, 'KVM_EXIT_HLT');
  t.is(run.kvm_dirty_regs, 0, 'sync_regs() clears the bit it loaded');
  t.is(run.s.regs.rax, BOOT_EFER, 'RDMSR EFER: EAX');
  t.is(run.s.regs.rdx, 0n, 'RDMSR EFER: EDX');
  t.is(run.s.regs.rip, BigInt(op.epilogue + 1), 'past the HLT');
  t.deepEqual(copyRegs(run.s.regs), vcpu.getRegs(), 's.regs is what KVM_GET_REGS gives');
});

test('a register changed by KVM_SET_REGS after the store is still loaded from s.regs when dirty', (t) => {
  const { vcpu, image, run, op } = afterRdmsrOfEfer();
  // Now s.regs.rcx == EFER. KVM_SET_REGS moves RCX and RIP elsewhere; s.regs keeps EFER.
  vcpu.setRegs({ ...vcpu.getRegs(), rcx: 0x10n, rip: BigInt(image.text.doneHalt) });
  run.s.regs.rip = BigInt(op.entry);
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  t.is(vcpu.run().reason, 'KVM_EXIT_HLT');
  t.is(run.s.regs.rcx, BigInt(MSR_EFER), '__set_regs() loads every field, RCX included');
  t.is(run.s.regs.rax, BOOT_EFER, 'the RDMSR read EFER, not MSR 0x10');
});

test('without KVM_SYNC_X86_REGS valid, s.regs is left as it was', (t) => {
  const { vcpu } = booted();
  const run = vcpu.kvmRun;
  run.s.regs.rax = 0x1234n;
  storeOnly(vcpu);
  t.is(run.s.regs.rax, 0x1234n);
  t.is(run.s.sregs, undefined);
});

test('a mask bit outside REGS|SREGS is EINVAL and nothing runs; a bad dirty value is EINVAL naming it', (t) => {
  const { vcpu } = booted();
  const run = vcpu.kvmRun;
  const before = vcpu.getRegs();
  run.kvm_valid_regs = KVM_SYNC_X86_EVENTS;
  t.throws(() => vcpu.run(), { instanceOf: KvmError, code: 'EINVAL', message: /kvm_valid_regs/ });
  run.kvm_valid_regs = KVM_SYNC_X86_REGS;
  run.kvm_dirty_regs = 1 << 5;
  t.throws(() => vcpu.run(), { instanceOf: KvmError, code: 'EINVAL', message: /kvm_dirty_regs/ });
  run.kvm_dirty_regs = 0;
  storeOnly(vcpu);
  run.s.regs.rbx = -1n;
  run.s.regs.rcx = 7n;
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  t.throws(() => vcpu.run(), { instanceOf: KvmError, code: 'EINVAL', message: /s\.regs\.rbx/ });
  t.deepEqual(vcpu.getRegs(), before, 'nothing was loaded');
  t.is(run.kvm_dirty_regs, KVM_SYNC_X86_REGS, 'the bit stays set');
});

test('KVM_SYNC_X86_SREGS: stored at exit, loaded through KVM_SET_SREGS (host writes bypass Heki pins)', (t) => {
  const { vm, vcpu, image } = booted();
  const run = vcpu.kvmRun;
  run.kvm_valid_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
  storeOnly(vcpu);
  t.is(run.s.sregs?.cr4, image.cr4);
  t.is(run.s.sregs?.efer, BOOT_EFER);
  // The guest pins CR4.SMEP: KVM_HC_LOCK_CR_UPDATE(4, SMEP) through VMCALL.
  const call = image.text.kernelOps.vmcall;
  Object.assign(run.s.regs, { rax: 13n, rbx: 4n, rcx: X86_CR4_SMEP, rdx: 0n, rip: BigInt(call.entry) });
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  t.is(vcpu.run().reason, 'KVM_EXIT_HLT');
  t.is(run.s.regs.rax, 0n);
  t.is(vm.hekiPins.cr4, X86_CR4_SMEP);
  run.s.sregs!.cr4 = image.cr4 & ~X86_CR4_SMEP;
  run.kvm_dirty_regs = KVM_SYNC_X86_SREGS;
  storeOnly(vcpu);
  t.is(run.kvm_dirty_regs, 0);
  t.is(vcpu.getSregs().cr4, image.cr4 & ~X86_CR4_SMEP, 'the host load is not a guest CR write: no Heki check');
  t.is(run.s.sregs?.cr4, image.cr4 & ~X86_CR4_SMEP);
});

test('s.regs is the snapshot of the exit: KVM_SET_REGS, INIT or a run that stores no new one do not change it', async (t) => {
  const { vcpu, image, run, op } = afterRdmsrOfEfer();
  // Nothing of s.regs has been looked at since the exit.
  vcpu.setRegs({ ...vcpu.getRegs(), rax: 99n, rbx: 98n });
  t.is(run.s.regs.rax, BOOT_EFER, 'RAX as the RDMSR left it, not as KVM_SET_REGS set it');
  t.is(run.s.regs.rbx, 0n);

  run.s.regs.rip = BigInt(op.entry);
  run.s.regs.rcx = 0x10n; // IA32_TSC
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  vcpu.run();
  t.not(run.s.regs.rax, BOOT_EFER, 'a new snapshot: the TSC');
  const rcxAtExit = 0x10n;
  vcpu.init();
  t.is(run.s.regs.rcx, rcxAtExit, 'INIT does not reach into the snapshot');
  t.is(run.s.regs.rip, BigInt(op.epilogue + 1));

  bootVcpu(vcpu, image, 0);
  storeOnly(vcpu);
  run.kvm_valid_regs = 0;
  const snapshotRsp = BigInt(L.kernelStackTop(0)); // the boot RSP, stored by storeOnly() and not looked at since
  vcpu.setRegs({ ...vcpu.getRegs(), rip: BigInt(op.entry), rcx: BigInt(MSR_EFER), rsp: 0x12000n });
  vcpu.run();
  t.is(run.s.regs.rsp, snapshotRsp, 'with KVM_SYNC_X86_REGS no longer valid, the last snapshot stays');
  t.is(vcpu.getRegs().rax, BOOT_EFER);
});

test('a bad reply in kvm_run fails KVM_RUN with EINVAL before the dirty registers are loaded', (t) => {
  const kvm = new Kvm({ createCpu: (memory) => new Cpu(memory) });
  const vm = kvm.createVm();
  const image = buildBootImage(vm.memory, { vcpus: 1 });
  const vcpu = vm.createVcpu(0);
  bootVcpu(vcpu, image, 0);
  // A filtered RDMSR of 0xda0 exits to user space (docs/msr-filter.md §7 #3 setup).
  vm.enableCap(188, [4]);
  vm.setMsrFilter({ flags: 0, ranges: [{ flags: 1, base: 0xda0, nmsrs: 1, bitmap: new Uint8Array(8) }] });
  const run = vcpu.kvmRun;
  run.kvm_valid_regs = KVM_SYNC_X86_REGS;
  run.s.regs.rcx = 0xda0n;
  run.s.regs.rip = BigInt(image.text.kernelOps.rdmsr.entry);
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  const exit = vcpu.run();
  t.is(exit.reason, 'KVM_EXIT_X86_RDMSR');
  const rbxBefore = vcpu.getRegs().rbx;
  if (exit.reason !== 'KVM_EXIT_X86_RDMSR') return;
  exit.msr.error = 300; // not a __u8
  run.s.regs.rbx = 0x99n;
  run.kvm_dirty_regs = KVM_SYNC_X86_REGS;
  const error = t.throws(() => vcpu.run(), { instanceOf: KvmError });
  t.is(error?.code, 'EINVAL');
  t.is(vcpu.getRegs().rbx, rbxBefore, 'RBX not loaded from s.regs');
  t.is(vcpu.getRegs().rip, BigInt(image.text.kernelOps.rdmsr.entry), 'the RDMSR has not retired');
  // A valid reply then completes the access as usual.
  exit.msr.error = 0;
  exit.msr.data = 0x1_0000_0002n;
  run.kvm_dirty_regs = 0;
  t.is(vcpu.run().reason, 'KVM_EXIT_HLT');
  t.like(vcpu.getRegs(), { rax: 2n, rdx: 1n });
});
