/**
 * Pacing as a bystander sees it (host/vmm/run/pacer.ts): one VM runs a hostile request while a
 * guest of another VM of the same VMM reads EFER over and over; how long each of its answers took
 * says whether the hostile request gave the event loop back.
 */
import type { GuestResult, Machine } from '../../host/vmm/index.js';

const EFER = 0xc0000080;

/** How long the attacks of the pacing tests run (their maxRequestMs). */
export const ATTACK_MS = 1000;

export interface UnderAttack {
  /** What the hostile request came to. */
  readonly result: GuestResult;
  /** The bystander's answers while it ran, in ms each (at most `samples`). */
  readonly latencies: number[];
}

/** The hostile request is an exec of `code` at `cpl`. */
export async function bystanderUnderAttack(hostile: Machine, bystander: Machine, code: Uint8Array, cpl: 0 | 3 = 0, samples = 20): Promise<UnderAttack> {
  await bystander.perform(0, { op: 'rdmsr', index: EFER });
  let done = false;
  const attack = hostile.perform(0, { op: 'exec', code, cpl }).finally(() => {
    done = true;
  });
  const latencies: number[] = [];
  await new Promise((resolve) => setTimeout(resolve, 20));
  while (!done && latencies.length < samples) {
    const s = performance.now();
    await bystander.perform(0, { op: 'rdmsr', index: EFER });
    latencies.push(performance.now() - s);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return { result: await attack, latencies };
}
