/**
 * The bystander checker (issue 9): while something hostile runs against a server, an innocent
 * guest on a VM of its own and an innocent control client keep asking small things, one at a
 * time, and the checker records how long each answer took. A server that lets one client
 * starve the others shows it here as an answer that took as long as the attack.
 */
import type { ClientSession } from '../../protocol/index.js';
import type { Guest } from '../../guest-sdk/index.js';

export interface Latencies {
  /** Every answer's round trip, in ms, in order. */
  readonly samples: readonly number[];
  readonly median: number;
  readonly min: number;
  readonly max: number;
}

export function summarize(samples: readonly number[]): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    samples,
    median: sorted.length === 0 ? NaN : sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0] ?? NaN,
    max: sorted.at(-1) ?? NaN,
  };
}

export function formatLatencies(l: Latencies): string {
  return `${l.samples.length} answers, median ${l.median.toFixed(1)} ms (min ${l.min.toFixed(1)}, max ${l.max.toFixed(1)})`;
}

export interface Bystanders {
  /** A guest on a VM nobody else uses. */
  readonly guest?: Guest;
  /** A control client (already greeted). */
  readonly control?: ClientSession;
}

/**
 * Asks the bystanders one small thing after another (an RDMSR of EFER, control `stats`), with
 * `gapMs` between, until `attack` settles; returns the attack's outcome and the latencies. An
 * answer that is an error counts as a failure of the server, not as a sample.
 */
export async function whileAttacked<T>(bystanders: Bystanders, attack: Promise<T>, gapMs = 5): Promise<{ outcome: T; guest: Latencies; control: Latencies }> {
  let settled = false;
  const done = attack.finally(() => {
    settled = true;
  });
  const guest: number[] = [];
  const control: number[] = [];
  const ask = async (samples: number[], question: () => Promise<unknown>): Promise<void> => {
    while (!settled) {
      const start = performance.now();
      await question();
      samples.push(performance.now() - start);
      await new Promise((resolve) => setTimeout(resolve, gapMs));
    }
  };
  const askers: Promise<void>[] = [];
  if (bystanders.guest !== undefined) askers.push(ask(guest, () => bystanders.guest!.rdmsr(0xc0000080)));
  if (bystanders.control !== undefined) askers.push(ask(control, () => bystanders.control!.request('stats', {})));
  const outcome = await done;
  await Promise.all(askers);
  return { outcome, guest: summarize(guest), control: summarize(control) };
}

/** out 0x80, al; jmp $-2: a user-space exit every second instruction, for ever. */
export const OUT_LOOP = Uint8Array.from([0xe6, 0x80, 0xeb, 0xfc]);

/** A batch of `n` execs of OUT_LOOP from `guest`: the costliest single request. */
export async function outLoopBatch(guest: Guest, n: number): Promise<string[]> {
  const batch = guest.batch();
  const results = Array.from({ length: n }, () => batch.exec(OUT_LOOP).then((r) => r.stop, (e: { code?: string }) => e.code ?? String(e)));
  await batch.send();
  return Promise.all(results);
}
