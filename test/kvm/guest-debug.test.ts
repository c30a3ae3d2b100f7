/**
 * KVM_SET_GUEST_DEBUG on the model, held to what real KVM does (arch/x86/kvm/x86.c
 * kvm_arch_vcpu_ioctl_set_guest_debug(), vmx.c handle_exception_nmi(), the KVM API
 * documentation §4.66 and §5 "KVM_EXIT_DEBUG"): single step, the debugger's INT3 and hardware
 * breakpoints stop the guest with KVM_EXIT_DEBUG instead of reaching its IDT; TF set for the step
 * is not the guest's; bad arguments are EINVAL.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Guest } from './guest.js';

const TF = 0x100n;
const DR6_BS = BigInt(abi.DR6_BS);

test('single step: each instruction ends in KVM_EXIT_DEBUG #DB with DR6.BS and the next RIP; TF is hidden from KVM_GET_REGS', (t) => {
  const g = new Guest();
  const code = g.startCode(['90 | nop', '48 ff c0 | inc rax', 'f4 | hlt']);
  g.vcpu().setGuestDebug({ control: abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_SINGLESTEP });
  t.is(g.regs().rflags & TF, 0n);
  let exit = g.runExpecting('KVM_EXIT_DEBUG');
  t.is(exit.debug.exception, abi.DB_VECTOR);
  t.is(exit.debug.pc, BigInt(code.base + 1));
  t.is(exit.debug.dr6 & DR6_BS, DR6_BS);
  t.is(g.regs().rflags & TF, 0n);
  exit = g.runExpecting('KVM_EXIT_DEBUG');
  t.is(exit.debug.pc, BigInt(code.base + 4));
  t.is(g.regs().rax, 1n);
  g.vcpu().setGuestDebug({ control: 0 });
  g.runExpecting('KVM_EXIT_HLT');
  t.is(g.regs().rflags & TF, 0n);
});

test('single step over an instruction KVM emulates (CPUID) ends after it, as kvm_skip_emulated_instruction() does', (t) => {
  const g = new Guest();
  const code = g.startCode(['0f a2 | cpuid', '90 | nop', 'f4 | hlt'], { rax: 0n });
  g.vcpu().setGuestDebug({ control: abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_SINGLESTEP });
  const exit = g.runExpecting('KVM_EXIT_DEBUG');
  t.is(exit.debug.pc, BigInt(code.base + 2));
});

test('the debugger\'s INT3 (USE_SW_BP) exits with #BP and the INT3\'s own address; without it the guest\'s IDT gets the #BP', (t) => {
  const g = new Guest();
  const code = g.startCode(['90 | nop', 'cc | int3', 'f4 | hlt']);
  g.vcpu().setGuestDebug({ control: abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_SW_BP });
  const exit = g.runExpecting('KVM_EXIT_DEBUG');
  t.is(exit.debug.exception, abi.BP_VECTOR);
  t.is(exit.debug.pc, BigInt(code.base + 1));
  t.is(g.regs().rip, BigInt(code.base + 1));
  const other = new Guest();
  other.startCode(['cc | int3', 'f4 | hlt']);
  // No KVM_EXIT_DEBUG: the #BP reaches the boot IDT, whose stub halts.
  t.is(other.run().reason, 'KVM_EXIT_HLT');
});

test('hardware breakpoints (USE_HW_BP): DR0-DR3 and DR7 of the debugger stop the guest before the instruction, with B0-B3 in DR6', (t) => {
  const g = new Guest();
  const code = g.startCode(['90 | nop', '90 | nop', '90 | nop', 'f4 | hlt']);
  const debugreg = [0n, 0n, BigInt(code.base + 2), 0n, 0n, 0n, 0n, 0x2n << 4n]; // G2, execute
  g.vcpu().setGuestDebug({ control: abi.KVM_GUESTDBG_ENABLE | abi.KVM_GUESTDBG_USE_HW_BP, debugreg });
  const exit = g.runExpecting('KVM_EXIT_DEBUG');
  t.is(exit.debug.exception, abi.DB_VECTOR);
  t.is(exit.debug.pc, BigInt(code.base + 2));
  t.is(exit.debug.dr6 & 0xfn, 0b100n);
  t.is(exit.debug.dr7, 0x20n);
  // The guest's own view of its debug registers is untouched (KVM keeps vcpu->arch.db apart).
  g.vcpu().setGuestDebug({ control: 0 });
  g.runExpecting('KVM_EXIT_HLT');
});

test('KVM_SET_GUEST_DEBUG refuses control bits outside KVM_GUESTDBG_VALID_MASK and more than 8 debug registers (EINVAL)', (t) => {
  const g = new Guest();
  const e = t.throws(() => g.vcpu().setGuestDebug({ control: abi.KVM_GUESTDBG_ENABLE | 0x100 }), { instanceOf: KvmError });
  t.is(e?.code, 'EINVAL');
  t.throws(() => g.vcpu().setGuestDebug({ control: 1, debugreg: new Array(9).fill(0n) }), { instanceOf: KvmError });
});
