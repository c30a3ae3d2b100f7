/**
 * Every KVM_RUN has a deadline: a guest that never exits (a spin loop, or a CPL0 hypercall,
 * which never completes on a PVM host: docs/real-kvm.md §4) must end KVM_RUN with
 * EINTR, never hang. The clock is one POSIX timer per thread (CLOCK_MONOTONIC, absolute
 * expiry) that sends SIGALRM to that thread alone (SIGEV_THREAD_ID).
 *
 * Race-free by signal masking, as QEMU once did it: SIGALRM is blocked in the thread, and each
 * vCPU's KVM_SET_SIGNAL_MASK unblocks it only while KVM_RUN runs. A timer that expires outside
 * KVM_RUN leaves the signal pending, so the next KVM_RUN returns EINTR before the guest runs;
 * one that expires inside ends it. Either way the signal is never delivered to a handler (the
 * kernel restores the blocked mask before returning, and complete_signal() consults the
 * pre-KVM_RUN mask, `real_blocked`, before treating a default-action signal as fatal), so no
 * handler is needed — a worker thread cannot install one from JavaScript — and the pending
 * signal is taken with sigtimedwait() after each EINTR.
 *
 * The timer is armed once per deadline, not per run: a VMM that passes the same deadline to
 * every run() of one operation pays for one timer_settime (≈ 2 µs) per operation. Deadlines
 * are absolute, on the clock of `process.hrtime.bigint()` (CLOCK_MONOTONIC, in ns).
 */
import {
  CLOCK_MONOTONIC, SIGALRM, SIGEV_THREAD_ID, SIGEVENT, SIG_BLOCK, SIZEOF_ITIMERSPEC, SIZEOF_KERNEL_SIGSET,
  SIZEOF_LIBC_SIGSET, SIZEOF_SIGEVENT, TIMER_ABSTIME, type Libc,
} from './libc.js';
import { errnoError } from './errno.js';
import { SIZEOF_SIGNAL_MASK } from './uapi.js';

/** A run() without a deadline gets one 10–11 s away (see defaultDeadline). */
export const DEFAULT_RUN_TIMEOUT_MS = 10_000;
const SECOND = 1_000_000_000n;
const NONE = -1n;

/** CLOCK_MONOTONIC now, in ns: the clock deadlines are on. */
export function monotonicNow(): bigint {
  return process.hrtime.bigint();
}

/** The deadline `ms` milliseconds from now. */
export function deadlineIn(ms: number): bigint {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`a timeout must be a non-negative number of ms, got ${ms}`);
  return monotonicNow() + BigInt(Math.ceil(ms * 1e6));
}

/**
 * DEFAULT_RUN_TIMEOUT_MS from now, rounded up to a whole second, so that back-to-back runs
 * without a deadline of their own share one armed timer instead of re-arming on each run.
 */
export function defaultDeadline(): bigint {
  const t = monotonicNow() + BigInt(DEFAULT_RUN_TIMEOUT_MS) * 1_000_000n;
  return (t / SECOND + 1n) * SECOND;
}

/** The sigset holding SIGALRM alone, in glibc's layout. */
function sigalrmSet(): Uint8Array {
  const set = new Uint8Array(SIZEOF_LIBC_SIGSET);
  set[(SIGALRM - 1) >> 3] = 1 << ((SIGALRM - 1) & 7);
  return set;
}

export class ThreadTimer {
  private armed = NONE;
  private readonly itimerspec = new DataView(new ArrayBuffer(SIZEOF_ITIMERSPEC));
  private readonly alrm = sigalrmSet();
  private readonly zeroTimeout = new Uint8Array(16);

  private constructor(
    private readonly libc: Libc,
    private readonly timer: bigint,
  ) {}

  /** This thread's timer, made (and SIGALRM blocked in this thread) on first use. */
  static forThisThread(libc: Libc): ThreadTimer {
    if (current !== undefined) return current;
    const alrm = sigalrmSet();
    const err = libc.pthreadSigmask(SIG_BLOCK, alrm, null);
    if (err !== 0) throw errnoError(err, 'pthread_sigmask', 'blocking SIGALRM in this thread');
    const sev = new DataView(new ArrayBuffer(SIZEOF_SIGEVENT));
    sev.setInt32(SIGEVENT.signo, SIGALRM, true);
    sev.setInt32(SIGEVENT.notify, SIGEV_THREAD_ID, true);
    sev.setInt32(SIGEVENT.tid, libc.gettid(), true);
    const out = new Uint8Array(8);
    if (libc.timerCreate(CLOCK_MONOTONIC, new Uint8Array(sev.buffer), out) !== 0) {
      throw errnoError(libc.errno(), 'timer_create', 'the KVM_RUN deadline timer of this thread');
    }
    current = new ThreadTimer(libc, new DataView(out.buffer).getBigUint64(0, true));
    return current;
  }

  /**
   * The KVM_SET_SIGNAL_MASK argument for a vCPU run from this thread: this thread's mask
   * (kernel layout, 64 signals) without SIGALRM.
   */
  vcpuSignalMask(): Uint8Array {
    const old = new Uint8Array(SIZEOF_LIBC_SIGSET);
    const err = this.libc.pthreadSigmask(SIG_BLOCK, null, old);
    if (err !== 0) throw errnoError(err, 'pthread_sigmask', 'reading the signal mask of this thread');
    const arg = new Uint8Array(SIZEOF_SIGNAL_MASK + SIZEOF_KERNEL_SIGSET);
    new DataView(arg.buffer).setUint32(0, SIZEOF_KERNEL_SIGSET, true);
    arg.set(old.subarray(0, SIZEOF_KERNEL_SIGSET), SIZEOF_SIGNAL_MASK);
    arg[SIZEOF_SIGNAL_MASK + ((SIGALRM - 1) >> 3)]! &= ~(1 << ((SIGALRM - 1) & 7));
    return arg;
  }

  /** Arms the timer for `deadline` unless it is armed for it already. */
  arm(deadline: bigint): void {
    if (deadline === this.armed) return;
    const v = this.itimerspec;
    // it_interval stays 0 (one shot); it_value is the absolute expiry.
    v.setBigInt64(16, deadline / SECOND, true);
    v.setBigInt64(24, deadline % SECOND, true);
    if (this.libc.timerSettime(this.timer, TIMER_ABSTIME, new Uint8Array(v.buffer)) !== 0) {
      throw errnoError(this.libc.errno(), 'timer_settime', `arming the KVM_RUN deadline ${deadline}`);
    }
    this.armed = deadline;
  }

  /**
   * After KVM_RUN returned EINTR: takes a pending SIGALRM, if any, and tells whether `deadline`
   * has passed. A passed deadline is forgotten, so that a later run with the same deadline
   * arms the timer again (and so ends at once) instead of running unbounded.
   */
  interrupted(deadline: bigint): boolean {
    while (this.libc.sigtimedwait(this.alrm, this.zeroTimeout) === SIGALRM) {
      // taken; a second one cannot be pending (standard signals do not queue), but loop anyway
    }
    if (monotonicNow() < deadline) return false;
    if (this.armed === deadline) this.armed = NONE;
    return true;
  }
}

/** Module state is per thread in Node (each worker has its own): one timer per thread. */
let current: ThreadTimer | undefined;
