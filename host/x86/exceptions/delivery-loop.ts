/**
 * Exception loops: a guest whose exception handler cannot run (its gate points at unmapped or
 * non-executable memory, the stub page is gone) takes a fault fetching the handler's first
 * instruction, delivers it through the same gate, and faults again — with an IST stack the
 * delivery lands in exactly the same state every time, and no instruction ever retires. A real
 * CPU spins there for ever; KVM_RUN only returns when a signal reaches the vCPU thread, so ending
 * it is the VMM's watchdog's job (there is no VM exit for it: this is not a triple fault, every
 * delivery succeeds).
 *
 * The core does two things about it (run() in cpu.ts): every delivery of a fault costs the run
 * budget one unit, as an instruction does, so that any storm of deliveries ends within the
 * budget; and this watch ends the run at once when the loop is exact. Two deliveries in a row
 * that take the same fault (vector, error code, address) from the same state and leave the same
 * state (RIP, RSP, RFLAGS), with no instruction retired in between, wrote the same frame to the
 * same stack slot: from then on the machine repeats itself, so stopping changes nothing the
 * guest could observe. It takes two repeats, not one: the first delivery's frame still holds the
 * interrupted context's RSP, the second and later ones the loop's own.
 */
import type { CpuCore } from '../core.js';
import { readFlags } from '../flags.js';

/** What the watch found: the exception being delivered over and over, and where. */
export interface ExceptionLoop {
  readonly vector: number;
  /** The error code pushed, or undefined for a vector that pushes none. */
  readonly errorCode: number | undefined;
  /** The handler address the guest cannot get past (RIP after each delivery). */
  readonly rip: bigint;
  /** Deliveries in a row the watch saw before it stopped the run. */
  readonly deliveries: number;
}

/** Deliveries identical to the one before them (no instruction between) that prove a loop. */
const REPEATS_FOR_A_LOOP = 2;

export class DeliveryWatch {
  private retired = -1;
  private vector = -1;
  private errorCode = 0;
  private address = 0;
  private rip = 0;
  private rspLo = 0;
  private rspHi = 0;
  private flags = 0;
  private repeats = 0;

  /** A new run(): a loop can only be seen within one. */
  reset(): void {
    this.retired = -1;
    this.repeats = 0;
  }

  /**
   * The fault (vector, errorCode, address) was delivered; the core is in the handler's state.
   * Returns the loop when this delivery proved one, else null.
   */
  delivered(c: CpuCore, vector: number, errorCode: number, address: number): ExceptionLoop | null {
    const flags = readFlags(c);
    if (
      c.retired === this.retired && vector === this.vector && errorCode === this.errorCode && address === this.address &&
      c.rip === this.rip && c.lo[4] === this.rspLo && c.hi[4] === this.rspHi && flags === this.flags
    ) {
      if (++this.repeats < REPEATS_FOR_A_LOOP) return null;
      return {
        vector,
        errorCode: errorCode < 0 ? undefined : errorCode >>> 0,
        rip: BigInt.asUintN(64, BigInt(c.rip)),
        deliveries: this.repeats + 1,
      };
    }
    this.retired = c.retired;
    this.vector = vector;
    this.errorCode = errorCode;
    this.address = address;
    this.rip = c.rip;
    this.rspLo = c.lo[4]!;
    this.rspHi = c.hi[4]!;
    this.flags = flags;
    this.repeats = 0;
    return null;
  }
}
