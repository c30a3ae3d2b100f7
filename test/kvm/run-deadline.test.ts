/**
 * RunOptions on the model (host/kvm/api/vcpu.ts): the instruction budget, the model's own, and
 * the deadline both backends take — as the real backend's timer does, a passed deadline ends
 * KVM_RUN with KVM_EXIT_INTR and `timed_out`, and a deadline already passed when KVM_RUN starts
 * lets the pending completion run but not the guest (docs/real-kvm.md §3).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Guest } from './guest.js';

const MS = 1_000_000n;
const now = (): bigint => process.hrtime.bigint();

test('a guest that never exits ends at the deadline: KVM_EXIT_INTR, timed out, RIP still in its loop', (t) => {
  const g = new Guest();
  const code = g.startCode(['eb fe | jmp short 0x100000']);
  const started = now();
  const exit = g.vcpu().run({ deadline: started + 50n * MS });
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.is(exit.exit_reason, abi.KVM_EXIT_INTR);
  t.true(exit.timed_out);
  t.true(now() - started >= 50n * MS, 'not before the deadline');
  t.is(g.regs().rip, BigInt(code.base));
  t.is(g.vcpu().stat.signal_exits, 1);
});

test('a loop of intercepts KVM handles in the kernel ends at the deadline too', (t) => {
  const g = new Guest();
  g.startCode(['0f 32 | rdmsr', 'eb fc | jmp short 0x100000'], { rcx: BigInt(abi.MSR_EFER) });
  const started = now();
  const exit = g.vcpu().run({ deadline: started + 30n * MS });
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.true(exit.timed_out);
  t.true(now() - started >= 30n * MS);
});

test('a deadline already passed: the pending completion runs, the guest does not', (t) => {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [BigInt(abi.KVM_MSR_EXIT_REASON_UNKNOWN)]);
  const code = g.startCode(['0f 32 | rdmsr', 'f4 | hlt'], { rcx: 0xdeadbeefn });
  g.runExpecting('KVM_EXIT_X86_RDMSR').msr.data = 0x1234n;
  const exit = g.vcpu().run({ deadline: now() - 1n });
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.true(exit.timed_out);
  t.is(g.regs().rip, BigInt(code.base + 2), 'the RDMSR retired, the HLT did not run');
  t.is(g.regs().rax, 0x1234n);
  t.is(g.runExpecting('KVM_EXIT_HLT').timed_out, false, 'the next exit is not a timeout');
});

test('the budget ends a run first when it is spent before the deadline: KVM_EXIT_INTR, not timed out', (t) => {
  const g = new Guest();
  g.startCode(['eb fe | jmp short 0x100000']);
  const exit = g.vcpu().run({ budget: 1000, deadline: now() + 60_000n * MS });
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.false(exit.timed_out);
  t.is(g.vcpu().instructionsRetired, 1000);
});

test('a deadline that is not a bigint is EINVAL and nothing runs', (t) => {
  const g = new Guest();
  const code = g.startCode(['f4 | hlt']);
  t.throws(() => g.vcpu().run({ deadline: 5 as unknown as bigint }), { instanceOf: KvmError, code: 'EINVAL', message: /deadline/ });
  t.is(g.regs().rip, BigInt(code.base));
});
