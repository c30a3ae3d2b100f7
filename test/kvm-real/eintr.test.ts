/**
 * A stray signal during KVM_RUN (SIGCHLD when a child process ends) makes the kernel return
 * EINTR with KVM_EXIT_INTR (vcpu_run(): signal_pending → -EINTR); run() re-enters, so the
 * guest keeps running until run()'s own deadline (docs/real-kvm.md §3). The guest
 * runs in a process of its own (fixtures/eintr-child.ts): see there why.
 */
import { execFileSync } from 'node:child_process';
import { realTest } from './real-guest.js';

const FIXTURE = 'build/test/kvm-real/fixtures/eintr-child.js';

realTest('a SIGCHLD during KVM_RUN is re-entered: the run ends at its deadline, not at the signal', (t) => {
  const out = JSON.parse(execFileSync(process.execPath, [FIXTURE, '800'], { encoding: 'utf8', timeout: 30_000 })) as {
    reason: string; timedOut: boolean; ranMs: number; childExitedAt?: number; stat: { signal_exits: number; timeouts: number }; childCode: number;
  };
  t.log(JSON.stringify(out));
  t.is(out.childCode, 0, 'the child (sleep 0.1) ran and ended');
  t.is(out.reason, 'KVM_EXIT_INTR');
  t.true(out.timedOut);
  t.true(out.ranMs >= 799, `ran ${out.ranMs} ms, past the child's end`);
  t.is(out.stat.timeouts, 1);
  // One EINTR for the SIGCHLD, re-entered, and one for the deadline.
  t.true(out.stat.signal_exits >= 2, `signal_exits ${out.stat.signal_exits}`);
});
