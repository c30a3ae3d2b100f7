/**
 * A seeded random source for the fuzz suite (mulberry32: 32 bits of state, fast, and enough for
 * test inputs — not for anything secret). A campaign derives one generator per case from its
 * seed and the case number, so that any single case can be run again on its own.
 */

export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** The generator for case `n` of the campaign seeded with `seed`. */
  static forCase(seed: number, n: number): Random {
    return new Random(Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(n + 1, 0xc2b2ae35));
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.below(hi - lo + 1);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }

  u64(): bigint {
    return (BigInt(this.u32()) << 32n) | BigInt(this.u32());
  }

  bytes(n: number): Uint8Array {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff;
    return out;
  }
}

/** A seed from the environment (PINBOX_FUZZ_SEED, decimal or 0x-hex), else `fallback`. */
export function seedFrom(env: string | undefined, fallback: number): number {
  if (env === undefined || env === '') return fallback >>> 0;
  const n = Number(env);
  if (!Number.isSafeInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`PINBOX_FUZZ_SEED must be a 32-bit unsigned integer, got ${env}`);
  return n;
}
