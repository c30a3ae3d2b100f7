/**
 * How the model keeps RunOptions.deadline (host/kvm/api/vcpu.ts). The real backend arms a timer
 * whose signal ends KVM_RUN; the model's core cannot be interrupted, so run() gives it slices of
 * guest work (instructions, fault deliveries, intercepts handled in the kernel) and looks at the
 * clock between them.
 *
 * MODEL DECISION: a slice is sized to about LOOK_EVERY_NS of this vCPU's recent guest code, not to
 * a fixed count. What a unit costs varies a thousandfold — a translated loop retires hundreds of
 * millions of instructions a second, code that rewrites itself (each store invalidates the block
 * it runs in) tens of thousands — so a fixed slice would either read the clock for nothing or
 * overrun a deadline by seconds. A slice that took more than twice the aim shrinks to what fits
 * it; one that took less than half grows fourfold. The size is the vCPU's and carries over from
 * one run() to the next: it starts at the smallest, and a fast guest reaches the largest within
 * six slices. The largest is what bounds an overrun when fast code turns slow (a slice sized for
 * the one, spent on the other): 8,192 units of self-modifying code are about 65 ms, while the
 * fastest code, a jump to itself at about 2 ns a unit, looks at the clock every 16 µs (a cost
 * within the noise of a spin loop; 4,096 cost it about 5%). Otherwise a deadline is kept to
 * within a millisecond or two, whatever the code.
 */

/** How much guest work one slice should be, in ns of the host's time. */
const LOOK_EVERY_NS = 1_000_000;
/** Slices stay between these (units of guest work). */
const MIN_SLICE = 16;
const MAX_SLICE = 1 << 13;

/** The clock deadlines are on: CLOCK_MONOTONIC in ns, as process.hrtime.bigint() reads it. */
export type Clock = () => bigint;

export class DeadlineWatch {
  private slice = MIN_SLICE;
  /** Units of guest work left in the current slice. */
  left = MIN_SLICE;
  /** When the current slice began (process.hrtime.bigint()). */
  private started = 0n;
  /** The deadline being watched (-1: none yet), and whether a look at the clock found it passed. */
  private deadline = -1n;
  private passed = false;

  /** `clock` is for tests that drive the watch with a clock of their own. */
  constructor(private readonly clock: Clock = process.hrtime.bigint) {}

  /** Units of guest work between two looks at the clock, now. */
  get sliceUnits(): number {
    return this.slice;
  }

  /**
   * A run() with this deadline begins; false when it has passed already (the run must not enter
   * the guest). A new deadline is held against the clock at once. The same deadline as the last
   * run's goes on with its slice, as the real backend's timer stays armed for it: the clock is
   * read when the slice runs out, so that back-to-back runs cost no clock read each, and a
   * deadline that passes between two runs is noticed within a slice of work, as one that passes
   * inside a run is.
   */
  begin(deadline: bigint): boolean {
    if (deadline === this.deadline) return !this.passed;
    const now = this.clock();
    this.deadline = deadline;
    this.passed = now >= deadline;
    this.started = now;
    this.left = this.slice;
    return !this.passed;
  }

  /**
   * The guest did `spent` units of work. The clock is read only when that ends the slice; true
   * when the deadline has then passed (and every later run with it ends at once).
   */
  spend(spent: number): boolean {
    this.left -= spent;
    if (this.left > 0) return false;
    const now = this.clock();
    const ns = Number(now - this.started);
    const units = this.slice - this.left;
    if (ns > 2 * LOOK_EVERY_NS) this.slice = Math.max(MIN_SLICE, Math.min(this.slice, Math.floor((units * LOOK_EVERY_NS) / ns)));
    else if (ns < LOOK_EVERY_NS / 2) this.slice = Math.min(MAX_SLICE, this.slice * 4);
    this.started = now;
    this.left = this.slice;
    this.passed = now >= this.deadline;
    return this.passed;
  }
}
