/**
 * kvm_emulate_hypercall() dispatch (arch/x86/kvm/x86.c): CPL check, 32-bit truncation, the
 * PV-feature gating of the mainline hypercalls and the pinbox decisions for them.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { DEFAULT_HOST_CR0, DEFAULT_HOST_CR4 } from '../../host/kvm/kvm.js';
import { HekiState } from '../../host/kvm/heki.js';
import { __kvmEmulateHypercall } from '../../host/kvm/hypercalls.js';

const heki = (): HekiState => new HekiState(DEFAULT_HOST_CR0, DEFAULT_HOST_CR4, abi.HEKI_CR4_PINNABLE_MASK_V2);
const regs = (nr: number | bigint, a0 = 0n, a1 = 0n, a2 = 0n) => ({ nr: BigInt(nr), a0, a1, a2, a3: 0n });
const ENOSYS = BigInt.asUintN(64, -1000n);

test('an unknown hypercall returns -KVM_ENOSYS (0xfffffffffffffc18)', (t) => {
  const r = __kvmEmulateHypercall(regs(0x1234), 0, true, { heki: heki(), pvHas: () => true });
  t.is(r.rax, 0xffff_ffff_ffff_fc18n);
  t.is(r.rax, ENOSYS);
});

test('CPL > 0 gets -KVM_EPERM for every nr, before dispatch', (t) => {
  for (const cpl of [1, 2, 3]) {
    t.is(__kvmEmulateHypercall(regs(abi.KVM_HC_VAPIC_POLL_IRQ), cpl, true, { heki: heki(), pvHas: () => true }).rax, 0xffff_ffff_ffff_ffffn);
    t.is(__kvmEmulateHypercall(regs(0x1234), cpl, true, { heki: heki(), pvHas: () => true }).rax, 0xffff_ffff_ffff_ffffn);
  }
});

test('a 32-bit caller has nr and arguments truncated and gets a 32-bit result', (t) => {
  const h = heki();
  const r = __kvmEmulateHypercall(regs(0xffff_ffff_0000_000dn, 0xffff_ffff_0000_0004n, abi.X86_CR4_SMEP), 0, false, { heki: h, pvHas: () => true });
  t.is(r.rax, 0n, 'nr 13 and a0 4 after truncation');
  t.is(h.pinnedCr4, abi.X86_CR4_SMEP);
  t.is(__kvmEmulateHypercall(regs(0x1234), 0, false, { heki: h, pvHas: () => true }).rax, 0xffff_fc18n);
});

test('mainline hypercalls: KICK_CPU, SEND_IPI and SCHED_YIELD need their PV feature; MAP_GPA_RANGE is ENOSYS; CLOCK_PAIRING is EOPNOTSUPP', (t) => {
  const env = (has: boolean) => ({ heki: heki(), pvHas: () => has });
  t.is(__kvmEmulateHypercall(regs(abi.KVM_HC_VAPIC_POLL_IRQ), 0, true, env(false)).rax, 0n);
  for (const nr of [abi.KVM_HC_KICK_CPU, abi.KVM_HC_SEND_IPI, abi.KVM_HC_SCHED_YIELD]) {
    t.is(__kvmEmulateHypercall(regs(nr), 0, true, env(true)).rax, 0n, `nr ${nr} with its feature`);
    t.is(__kvmEmulateHypercall(regs(nr), 0, true, env(false)).rax, ENOSYS, `nr ${nr} without`);
  }
  t.is(__kvmEmulateHypercall(regs(abi.KVM_HC_MAP_GPA_RANGE), 0, true, env(true)).rax, ENOSYS);
  t.is(__kvmEmulateHypercall(regs(abi.KVM_HC_CLOCK_PAIRING), 0, true, env(true)).rax, BigInt.asUintN(64, -95n));
});

test('the feature asked for is the one upstream checks', (t) => {
  const asked: number[] = [];
  const env = { heki: heki(), pvHas: (f: number) => (asked.push(f), true) };
  __kvmEmulateHypercall(regs(abi.KVM_HC_KICK_CPU), 0, true, env);
  __kvmEmulateHypercall(regs(abi.KVM_HC_SEND_IPI), 0, true, env);
  __kvmEmulateHypercall(regs(abi.KVM_HC_SCHED_YIELD), 0, true, env);
  t.deepEqual(asked, [abi.KVM_FEATURE_PV_UNHALT, abi.KVM_FEATURE_PV_SEND_IPI, abi.KVM_FEATURE_PV_SCHED_YIELD]);
});
