/**
 * Shared reporting for benchmarks. A benchmark measures a figure several times and reports the
 * median (these machines are shared and noisy); `--json` prints one JSON Lines object per figure,
 * `{"name", "value", "unit"}`, and the human form adds min and max.
 */

export const jsonOutput = process.argv.includes('--json');

/** How many times each figure is measured: `--runs N`, default 5. */
export const runs = (() => {
  const i = process.argv.indexOf('--runs');
  const n = i >= 0 ? Number(process.argv[i + 1]) : 5;
  if (!Number.isInteger(n) || n < 1) throw new Error(`--runs takes a positive whole number, got ${process.argv[i + 1]}`);
  return n;
})();

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Reports one figure from its samples (one per run). */
export function report(name: string, samples: readonly number[], unit: string): void {
  const value = median(samples);
  if (jsonOutput) {
    process.stdout.write(JSON.stringify({ name, value: round(value), unit }) + '\n');
  } else {
    const min = Math.min(...samples);
    const max = Math.max(...samples);
    process.stdout.write(
      `${name.padEnd(28)} median ${fmt(value)} ${unit}  (min ${fmt(min)}, max ${fmt(max)}, ${samples.length} runs)\n`,
    );
  }
}

function round(v: number): number {
  return Number(v.toPrecision(6));
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(3);
}

/** Runs `body` `runs` times and returns one sample per run. */
export async function sample(body: () => number | Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) out.push(await body());
  return out;
}
