/**
 * Requests on one vCPU run one at a time, in the order they came (a vCPU runs one thing); a
 * request that finishes without awaiting anything gives its value back at once — no promise —
 * which saves a server a promise per operation.
 */

function isPromise<T>(v: unknown): v is Promise<T> {
  return typeof (v as { then?: unknown } | undefined)?.then === 'function';
}

export class OneAtATime {
  private busy = false;
  private readonly waiting: (() => void)[] = [];

  /**
   * @param finish runs when each task ends, before its outcome is handed back; if it throws,
   *   the task fails with that error (the VMM flushes its trace here).
   */
  constructor(private readonly finish: () => void) {}

  /**
   * Runs `task(a, b)` after those already waiting: its value (or a thrown error) at once when it
   * can, else a promise. The arguments travel beside the task so that a caller with a task of its
   * own (made once) pays no closure per call.
   */
  run<A, B, T>(task: (a: A, b: B) => T | Promise<T>, a: A, b: B): T | Promise<T> {
    if (!this.busy) return this.start(task, a, b);
    return new Promise<T>((resolve, reject) => {
      this.waiting.push(() => {
        try {
          resolve(this.start(task, a, b));
        } catch (e) {
          reject(e);
        }
      });
    });
  }

  private start<A, B, T>(task: (a: A, b: B) => T | Promise<T>, a: A, b: B): T | Promise<T> {
    this.busy = true;
    let result: T | Promise<T>;
    try {
      result = task(a, b);
    } catch (e) {
      this.ended();
      throw e;
    }
    if (!isPromise<T>(result)) {
      this.ended();
      return result;
    }
    return result.then(
      (r) => {
        this.ended();
        return r;
      },
      (e: unknown) => {
        this.ended();
        throw e;
      },
    );
  }

  /** The task is over: `finish`, then the next waiting task starts, on a later microtask. */
  private ended(): void {
    try {
      this.finish();
    } finally {
      this.busy = false;
      const next = this.waiting.shift();
      if (next !== undefined) queueMicrotask(next);
    }
  }
}
