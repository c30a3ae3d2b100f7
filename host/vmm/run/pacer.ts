/**
 * Turns for long work (issue 9, finding 2). One event loop serves every VM and every client:
 * work that runs long — a request whose guest exits again and again, a batch of thousands of
 * ops — must give the loop back now and then, or no other client is answered until it ends.
 * Such work asks `due(start)` between its steps (an exit answered, a KVM_RUN, an op of a batch)
 * and, when it is, awaits `rest()`: the event loop then reads every socket and answers what it can
 * before the work goes on. A KVM_RUN is one step however long the guest runs without an exit, so
 * the runner gives it the turn's end as its deadline (`turnEnd`).
 *
 * The slice is shared. `rest()` resolves on the next turn of the loop (setImmediate, which runs
 * after the loop has polled its sockets), and all work resumed by that turn measures its slice
 * from the same moment; each piece makes at least one step per turn (a KVM_RUN gets at least
 * MIN_STEP_MS: `runUntil`). However many clients are busy, the loop polls its sockets about every
 * `sliceMs` plus one step of each.
 */

/** How long work runs before it lets the event loop poll its sockets, unless configured. */
export const DEFAULT_SLICE_MS = 10;
/** The least a KVM_RUN is given, however late in a shared slice its work resumed (ms). */
export const MIN_STEP_MS = 1;

export class Pacer {
  /** When the work resumed by the last rest started its shared slice. */
  private sliceStart = 0;
  private wake: Promise<void> | undefined;

  constructor(readonly sliceMs: number = DEFAULT_SLICE_MS) {
    if (!(sliceMs > 0)) throw new RangeError(`sliceMs must be a positive number, got ${sliceMs}`);
  }

  /** Whether work that started at `start` (performance.now()) has had its turn by `now` (default: now). */
  due(start: number, now: number = performance.now()): boolean {
    return now >= this.turnEnd(start);
  }

  /**
   * When the turn of work that started at `start` ends (performance.now()): a KVM_RUN that would
   * go on past it is given it as its deadline, so that a guest that never exits yields too.
   */
  turnEnd(start: number): number {
    return (start > this.sliceStart ? start : this.sliceStart) + this.sliceMs;
  }

  /**
   * KVM_RUN's deadline for work that started at `start` and enters KVM_RUN at `now`: the end of
   * its turn, but at least MIN_STEP_MS away. The works resumed by one rest share a slice, and the
   * first to resume may spend all of it (a guest that never exits runs to the turn's end); a
   * deadline that had passed would then end the next one's KVM_RUN before its guest ran, turn
   * after turn, for as long as the first went on. So each makes a step in every turn.
   */
  runUntil(start: number, now: number): number {
    const end = this.turnEnd(start);
    return end > now + MIN_STEP_MS ? end : now + MIN_STEP_MS;
  }

  /** Resolves once the event loop has had a turn; every caller until then shares it. */
  rest(): Promise<void> {
    this.wake ??= new Promise((resolve) => {
      setImmediate(() => {
        this.wake = undefined;
        this.sliceStart = performance.now();
        resolve();
      });
    });
    return this.wake;
  }
}
