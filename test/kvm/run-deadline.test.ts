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

/**
 * Code that rewrites itself: each store lands in the block being run, so the core decodes it
 * again every time — about a thousand times slower per instruction than a translated loop.
 */
const SELF_MODIFYING = ['c6 05 00 00 00 00 90 | mov byte [rel 0x100007], 0x90', '90 | nop', 'eb f6 | jmp short 0x100000'];

test('self-modifying code ends near its deadline too, even right after fast code (the model sizes its slices by time)', (t) => {
  const g = new Guest();
  // Fast code first, so that the vCPU's slices have grown to their largest.
  g.startCode(['eb fe | jmp short 0x100000']);
  t.true(g.vcpu().run({ deadline: now() + 20n * MS }).timed_out);
  g.startCode(SELF_MODIFYING);
  for (const ms of [30n, 30n]) {
    const retired = g.vcpu().instructionsRetired;
    const started = now();
    const exit = g.vcpu().run({ deadline: started + ms * MS });
    const took = Number(now() - started) / 1e6;
    t.true(exit.timed_out);
    t.log(`a ${ms} ms deadline: ${took.toFixed(1)} ms, ${g.vcpu().instructionsRetired - retired} instructions`);
    t.true(g.vcpu().instructionsRetired - retired > 10, 'the code ran');
    // The model's largest slice (8,192 units) is about 65 ms of this code on an idle machine, a
    // few hundred on this shared one; the sizes themselves are tested on a clock the test drives
    // (deadline-watch.test.ts). Here: the run ends, and within a generous bound.
    t.true(took < Number(ms) + 2000, `a ${ms} ms deadline ended the run after ${took.toFixed(1)} ms`);
  }
});

test('runs with one deadline share it: a guest that exits at every run still times out once it passes, and every later run with it ends at once', (t) => {
  const g = new Guest();
  g.startCode(['e6 80 | out 0x80, al', 'eb fc | jmp short 0x100000']);
  const deadline = now() + 20n * MS;
  let exits = 0;
  let exit = g.vcpu().run({ deadline });
  for (; exit.reason === 'KVM_EXIT_IO' && exits < 1_000_000; exits++) exit = g.vcpu().run({ deadline });
  const late = Number(now() - deadline) / 1e6;
  t.is(exit.reason, 'KVM_EXIT_INTR');
  t.true(exit.timed_out);
  t.true(exits > 10, `${exits} exits first`);
  t.true(late >= 0 && late < 1000, `timed out ${late.toFixed(1)} ms after the deadline`);
  const rip = g.regs().rip;
  t.true(g.vcpu().run({ deadline }).timed_out, 'the same deadline again: at once');
  t.is(g.regs().rip, rip, 'and the guest did not run');
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
