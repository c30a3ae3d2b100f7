/**
 * pinbox's secure register intercepts at the KVM API (docs/register-intercepts.md): one vCPU's
 * HV_REGISTER_CR_INTERCEPT_CONTROL and masks (Hyper-V TLFS, "Secure Register Intercepts"), an
 * exit for each covered access before KVM does anything with it, and the monitor's answer —
 * allow, deny with #GP(0), or a value to emulate with — completed on the next KVM_RUN.
 * Expectations come from the TLFS's bit list and from that design.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { layout as L } from '../../host/vmm/boot/index.js';
import { Guest } from './guest.js';

const SMEP = abi.X86_CR4_SMEP;
const WP = abi.X86_CR0_WP;
const GP = abi.GP_VECTOR;
const BOOT_CR4 = 0x310ea0n;
const ALL = (1n << 64n) - 1n;
const bit = (name: abi.HvCrInterceptName): bigint => abi.hvCrInterceptBit(name);
const number = (name: abi.HvCrInterceptName): number => abi.HV_CR_INTERCEPT_BIT_NAMES.indexOf(name);

function arm(g: Guest, control: bigint, masks: { cr0?: bigint; cr4?: bigint; misc?: bigint } = {}, n = 0): void {
  g.vcpu(n).setRegisterIntercepts({ control, cr0Mask: masks.cr0 ?? ALL, cr4Mask: masks.cr4 ?? ALL, miscEnableMask: masks.misc ?? ALL });
}

test('the TLFS bit order: Cr0Write 0, Cr4Write 1, … GdtrWrite 15, IdtrWrite 16, LdtrWrite 17, TrWrite 18, MsrTscAuxWrite 23', (t) => {
  t.deepEqual(
    ['Cr0Write', 'Cr4Write', 'XCr0Write', 'IA32MiscEnableRead', 'MsrLstarWrite', 'MsrEferWrite', 'GdtrWrite', 'IdtrWrite', 'LdtrWrite', 'TrWrite', 'MsrSysenterCsWrite', 'MsrTscAuxWrite', 'MsrSgxLaunchControlWrite'].map((n) => number(n as abi.HvCrInterceptName)),
    [0, 1, 2, 3, 6, 14, 15, 16, 17, 18, 19, 23, 24],
  );
  t.is(abi.HV_X64_REGISTER_CR_INTERCEPT_CONTROL, 0xe0000);
});

test('set: RsvdZ bits, XCr0Write and the SGX bit are EINVAL and change nothing; get reads back', (t) => {
  const g = new Guest();
  arm(g, bit('Cr4Write'), { cr4: SMEP });
  for (const control of [1n << 25n, bit('XCr0Write'), bit('MsrSgxLaunchControlWrite')]) {
    t.is(t.throws(() => arm(g, control), { instanceOf: KvmError })?.code, 'EINVAL');
  }
  t.is(t.throws(() => g.vcpu().setRegisterIntercepts({ control: 1n, cr0Mask: 0n, cr4Mask: 0n, miscEnableMask: 5 as never }), { instanceOf: KvmError })?.code, 'EINVAL');
  t.deepEqual(g.vcpu().getRegisterIntercepts(), { control: bit('Cr4Write'), cr0Mask: ALL, cr4Mask: SMEP, miscEnableMask: ALL });
});

test('a CR4 write that changes a masked bit exits with the intercept\'s bit, old and new; deny is #GP(0), allow loads, a value emulates', (t) => {
  const g = new Guest();
  arm(g, bit('Cr4Write'), { cr4: SMEP });
  const op = g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(exit.exit_reason, 0x5042_0002);
  t.is(exit.reg_intercept.intercept, 1);
  t.is(exit.reg_intercept.old_value, BOOT_CR4);
  t.is(exit.reg_intercept.new_value, BOOT_CR4 & ~SMEP);
  t.is(exit.reg_intercept.rip, BigInt(op.entry));
  exit.reg_intercept.action = abi.PINBOX_ANSWER_DENY;
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(g.cr(4), BOOT_CR4);

  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(g.finish().fault, null, 'allow (KVM\'s preset answer)');
  t.is(g.cr(4), BOOT_CR4 & ~SMEP);

  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP & ~abi.X86_CR4_SMAP });
  t.is(g.finish().fault, null, 'SMAP is not in the mask and SMEP does not change: no intercept');

  g.start('writeCr4', { rax: BOOT_CR4 });
  const emulate = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  emulate.reg_intercept.action = abi.PINBOX_ANSWER_VALUE;
  emulate.reg_intercept.value = BOOT_CR4 & ~abi.X86_CR4_SMAP;
  t.is(g.finish().fault, null);
  t.is(g.cr(4), BOOT_CR4 & ~abi.X86_CR4_SMAP);
});

test('the monitor comes before the host\'s CR filter: allowed by it, the write then meets the filter', (t) => {
  const g = new Guest();
  arm(g, bit('Cr0Write'), { cr0: WP });
  g.vm.setCrFilter({ flags: 0, cr0Mask: WP, cr4Mask: 0n });
  g.start('writeCr0', { rax: 0x80050033n & ~WP });
  g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  const filter = g.runExpecting('KVM_EXIT_PINBOX_CR_FILTER');
  t.is(filter.cr_filter.new_value, 0x80050033n & ~WP);
  filter.cr_filter.action = abi.PINBOX_ANSWER_DENY;
  t.is(g.finish().fault?.vector, GP);
});

test('MSR intercepts: a LSTAR write exits with the MSR and both values; allow writes, deny #GPs, a value is written instead', (t) => {
  const g = new Guest();
  arm(g, bit('MsrLstarWrite'));
  const wrmsr = (value: bigint): void => {
    g.start('wrmsr', { rcx: BigInt(abi.MSR_LSTAR), rax: value & 0xffff_ffffn, rdx: value >> 32n });
  };
  const lstar = (): bigint => g.vcpu().getMsrs([abi.MSR_LSTAR])[0]!.data;
  wrmsr(0xffff_ffff_8100_0000n);
  const exit = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(exit.reg_intercept.intercept, number('MsrLstarWrite'));
  t.is(exit.reg_intercept.msr, abi.MSR_LSTAR);
  t.is(exit.reg_intercept.old_value, 0n);
  t.is(exit.reg_intercept.new_value, 0xffff_ffff_8100_0000n);
  t.is(g.finish().fault, null);
  t.is(lstar(), 0xffff_ffff_8100_0000n);

  wrmsr(0x4141_4141n);
  g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT').reg_intercept.action = abi.PINBOX_ANSWER_DENY;
  t.is(g.finish().fault?.vector, GP);
  t.is(lstar(), 0xffff_ffff_8100_0000n);

  wrmsr(0x4141_4141n);
  const v = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT').reg_intercept;
  v.action = abi.PINBOX_ANSWER_VALUE;
  v.value = 0xffff_ffff_8200_0000n;
  t.is(g.finish().fault, null);
  t.is(lstar(), 0xffff_ffff_8200_0000n);

  g.start('rdmsr', { rcx: BigInt(abi.MSR_LSTAR) });
  t.is(g.finish().regs.rax, 0x8200_0000n, 'reads are not intercepted without MsrLstarRead');
});

test('an MSR read intercept emulated with a value: the guest reads the monitor\'s value', (t) => {
  const g = new Guest();
  arm(g, bit('MsrEferRead'));
  g.start('rdmsr', { rcx: BigInt(abi.MSR_EFER) });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(exit.reg_intercept.old_value, 0xd01n);
  exit.reg_intercept.action = abi.PINBOX_ANSWER_VALUE;
  exit.reg_intercept.value = 0x1234_5678_9abc_def0n;
  const out = g.finish();
  t.is(out.regs.rax, 0x9abc_def0n);
  t.is(out.regs.rdx, 0x1234_5678n);
});

test('an allowed MSR access goes on to KVM\'s own path: the MSR filter and its user-space exit still apply', (t) => {
  const g = new Guest();
  arm(g, bit('MsrStarWrite'));
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [BigInt(abi.KVM_MSR_EXIT_REASON_FILTER)]);
  // STAR denied: a write range over it with its bit 0.
  g.vm.setMsrFilter({ flags: abi.KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [{ flags: abi.KVM_MSR_FILTER_WRITE, base: abi.MSR_STAR, nmsrs: 1, bitmap: new Uint8Array(8) }] });
  g.start('wrmsr', { rcx: BigInt(abi.MSR_STAR), rax: 1n, rdx: 0n });
  g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  const msr = g.runExpecting('KVM_EXIT_X86_WRMSR');
  t.is(msr.msr.reason, abi.KVM_MSR_EXIT_REASON_FILTER);
  msr.msr.error = 1;
  t.is(g.finish().fault?.vector, GP);
});

const IDTR_AT = L.KERNEL_SCRATCH;

/** Writes a 10-byte pseudo-descriptor (limit, base) at IDTR_AT. */
function pseudoDescriptor(g: Guest, base: bigint, limit: number): void {
  g.vm.memory.write16(IDTR_AT, limit);
  g.vm.memory.write64(IDTR_AT + 2, base);
}

test('IdtrWrite: LIDT exits with the IDTR now and what it would load; deny is #GP(0), allow loads it, a value loads the monitor\'s', (t) => {
  const g = new Guest();
  const before = g.vcpu().getSregs().idt;
  arm(g, bit('IdtrWrite'));
  pseudoDescriptor(g, 0x12_3000n, 0xfff);
  const code = g.startCode(['0f 01 18 | lidt [rax]', 'f4 | hlt'], { rax: BigInt(IDTR_AT) });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(exit.reg_intercept.intercept, 16);
  t.is(exit.reg_intercept.old_value, before.base);
  t.is(exit.reg_intercept.old_limit, before.limit);
  t.is(exit.reg_intercept.new_value, 0x12_3000n);
  t.is(exit.reg_intercept.new_limit, 0xfff);
  exit.reg_intercept.action = abi.PINBOX_ANSWER_DENY;
  // The boot IDT's #GP stub records the fault and resumes at the fix-up: the HLT of the stub.
  g.run();
  t.deepEqual(g.faultRecord().vector, GP);
  t.is(g.faultRecord().rip, BigInt(code.base));
  t.deepEqual(g.vcpu().getSregs().idt, before);

  g.startCode(['0f 01 18 | lidt [rax]', 'f4 | hlt'], { rax: BigInt(IDTR_AT) });
  const v = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT').reg_intercept;
  v.action = abi.PINBOX_ANSWER_VALUE;
  v.value = before.base;
  v.limit = 0x7ff;
  t.is(g.run().reason, 'KVM_EXIT_HLT');
  t.deepEqual(g.vcpu().getSregs().idt, { base: before.base, limit: 0x7ff });

  g.startCode(['0f 01 18 | lidt [rax]', 'f4 | hlt'], { rax: BigInt(IDTR_AT) });
  g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(g.run().reason, 'KVM_EXIT_HLT');
  t.deepEqual(g.vcpu().getSregs().idt, { base: 0x12_3000n, limit: 0xfff }, 'allowed: LIDT loaded it');
});

test('without a descriptor-table intercept LGDT/LIDT run on; with only GdtrWrite, LIDT still does not exit', (t) => {
  const g = new Guest();
  arm(g, bit('GdtrWrite'));
  const idt = g.vcpu().getSregs().idt;
  pseudoDescriptor(g, idt.base, idt.limit);
  g.startCode(['0f 01 18 | lidt [rax]', 'f4 | hlt'], { rax: BigInt(IDTR_AT) });
  t.is(g.run().reason, 'KVM_EXIT_HLT');
  const gdt = g.vcpu().getSregs().gdt;
  pseudoDescriptor(g, gdt.base, gdt.limit);
  g.startCode(['0f 01 10 | lgdt [rax]', 'f4 | hlt'], { rax: BigInt(IDTR_AT) });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(exit.reg_intercept.intercept, 15);
});

test('TrWrite: LTR exits with the selectors; LLDT and LTR take allow or deny, not a value (EINVAL)', (t) => {
  const g = new Guest();
  arm(g, bit('TrWrite'));
  const tr = g.vcpu().getSregs().tr;
  g.startCode(['0f 00 d8 | ltr ax', 'f4 | hlt'], { rax: 0x28n });
  const exit = g.runExpecting('KVM_EXIT_PINBOX_REG_INTERCEPT');
  t.is(exit.reg_intercept.intercept, 18);
  t.is(exit.reg_intercept.old_value, BigInt(tr.selector));
  t.is(exit.reg_intercept.new_value, 0x28n);
  exit.reg_intercept.action = abi.PINBOX_ANSWER_VALUE;
  t.is(t.throws(() => g.run(), { instanceOf: KvmError })?.code, 'EINVAL');
  exit.reg_intercept.action = abi.PINBOX_ANSWER_DENY;
  g.run();
  t.is(g.faultRecord().vector, GP);
});

test('the intercepts survive INIT (the TLFS drops INIT aimed at a lower VTL); they are per vCPU', (t) => {
  const g = new Guest({ vcpus: 2 });
  arm(g, bit('Cr4Write'), { cr4: SMEP });
  g.vcpu().init();
  g.reboot();
  t.deepEqual(g.vcpu().getRegisterIntercepts().control, bit('Cr4Write'));
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP });
  t.is(g.run().reason, 'KVM_EXIT_PINBOX_REG_INTERCEPT');
  g.start('writeCr4', { rax: BOOT_CR4 & ~SMEP }, 1);
  t.is(g.finish(1).fault, null, 'vCPU 1 has none');
});
