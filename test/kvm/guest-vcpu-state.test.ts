/**
 * KVM_GET/SET_REGS and KVM_GET/SET_SREGS on a vCPU of the default core, checked against what
 * guest instructions then see: the values round-trip, RFLAGS bit 1 reads as 1
 * (kvm_set_rflags()), kvm_is_valid_sregs() refuses what KVM refuses with nothing applied, CR8
 * and the APIC base go to the in-kernel LAPIC (__set_sregs_common()), and a state the core
 * cannot run is accepted by the ioctl and refused at entry (KVM_EXIT_FAIL_ENTRY).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import type { Regs, Sregs } from '../../host/kvm/api/regs.js';
import { GPR_NAMES } from '../../host/x86/state.js';
import { Guest } from './guest.js';

test('KVM_SET_REGS then KVM_GET_REGS round-trips all 18 fields, with RFLAGS bit 1 forced on', (t) => {
  const g = new Guest();
  const regs = {} as Regs;
  GPR_NAMES.forEach((name, k) => (regs[name] = 0x0101_0101_0101_0101n * BigInt(k + 1)));
  regs.rip = BigInt(g.boot.kernelExecSlot(0).base);
  regs.rflags = 0x40n; // ZF, bit 1 clear
  g.vcpu().setRegs(regs);
  t.deepEqual(g.regs(), { ...regs, rflags: 0x42n });
});

test('the guest runs on the registers user space set: RAX and RDX reach an OUT', (t) => {
  const g = new Guest();
  g.startCode(['ef | out dx, eax', 'f4 | hlt'], { rax: 0xffff_ffff_cafe_f00dn, rdx: 0x1234n });
  const exit = g.runExpecting('KVM_EXIT_IO');
  t.deepEqual([exit.io.port, exit.io.data], [0x1234, 0xcafe_f00d]);
});

test('KVM_SET_REGS with a value no __u64 can hold is EINVAL naming the field, and sets nothing', (t) => {
  const g = new Guest();
  const before = g.regs();
  t.throws(() => g.vcpu().setRegs({ ...before, rax: 5n, r9: -1n }), { instanceOf: KvmError, code: 'EINVAL', message: /r9/ });
  t.throws(() => g.vcpu().setRegs({ ...before, rip: 1n << 64n }), { instanceOf: KvmError, code: 'EINVAL', message: /rip/ });
  t.deepEqual(g.regs(), before);
});

test('KVM_GET_SREGS returns what KVM_SET_SREGS loaded; CR8 and the APIC base come from the LAPIC', (t) => {
  const g = new Guest();
  const sregs: Sregs = { ...g.vcpu().getSregs(), cr8: 3n, apicBase: 0xfee00d00n };
  g.vcpu().setSregs(sregs);
  t.deepEqual(g.vcpu().getSregs(), sregs);
  g.start('readCr8', { rax: 0n });
  t.is(g.finish().regs.rax, 3n, 'MOV from CR8 reads the TPR that KVM_SET_SREGS set');
  g.start('rdmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE) });
  t.is(g.finish().regs.rax, 0xfee00d00n);
  g.start('rdmsr', { rcx: 0x802n });
  t.is(g.finish().fault, null, 'the host turned x2APIC on: its MSRs answer');
});

const INVALID_SREGS: ReadonlyArray<readonly [string, (s: Sregs) => Sregs, RegExp]> = [
  ['CR4.PKE without PKU', (s) => ({ ...s, cr4: s.cr4 | abi.X86_CR4_PKE }), /CR4/],
  ['CR0.NW without CD', (s) => ({ ...s, cr0: s.cr0 | abi.X86_CR0_NW }), /CR0/],
  ['long mode without CR4.PAE', (s) => ({ ...s, cr4: s.cr4 & ~abi.X86_CR4_PAE }), /PAE/],
  ['long mode without EFER.LMA', (s) => ({ ...s, efer: s.efer & ~abi.EFER_LMA }), /LMA/],
  ['CS.L outside long mode', (s) => ({ ...s, cr0: s.cr0 & ~abi.X86_CR0_PG, efer: s.efer & ~abi.EFER_LMA }), /CS\.L/],
  ['CR3 above MAXPHYADDR', (s) => ({ ...s, cr3: s.cr3 | (1n << 50n) }), /CR3/],
  ['an APIC base with reserved bits', (s) => ({ ...s, apicBase: s.apicBase | 1n }), /APIC base/],
];

for (const [what, change, message] of INVALID_SREGS) {
  test(`KVM_SET_SREGS refuses ${what} with EINVAL and applies nothing`, (t) => {
    const g = new Guest();
    const before = g.vcpu().getSregs();
    t.throws(() => g.vcpu().setSregs(change(before)), { instanceOf: KvmError, code: 'EINVAL', message });
    t.deepEqual(g.vcpu().getSregs(), before);
    g.startCode(['f4 | hlt']);
    g.runExpecting('KVM_EXIT_HLT');
  });
}

test('KVM_SET_SREGS accepts a valid state this core cannot run (compatibility mode); KVM_RUN then fails entry', (t) => {
  const g = new Guest();
  const s = g.vcpu().getSregs();
  g.vcpu().setSregs({ ...s, cs: { ...s.cs, l: false, db: true } });
  const exit = g.runExpecting('KVM_EXIT_FAIL_ENTRY');
  t.regex(exit.fail_entry.detail, /CS\.L/);
  g.vcpu().setSregs(s);
  g.startCode(['f4 | hlt']);
  g.runExpecting('KVM_EXIT_HLT');
});
