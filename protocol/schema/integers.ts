/** Integer schemas: small ones delivered as numbers, 64-bit ones as bigints (PROTOCOL.md §2, §4.2). */
import { Schema } from './base.js';

/** An integer in [min, max] (both within ±2^53), delivered as a number. */
export class IntSchema extends Schema<number> {
  readonly expected: string;
  constructor(readonly name: string, readonly min: number, readonly max: number) {
    super();
    this.expected = `${name} (an integer ${min}..${max})`;
  }
  parse(v: unknown): number {
    if (typeof v === 'number') {
      if (Number.isInteger(v) && v >= this.min && v <= this.max) return v;
    } else if (typeof v === 'bigint') {
      if (v >= BigInt(this.min) && v <= BigInt(this.max)) return Number(v);
    }
    return this.fail(v);
  }
}

export const TWO_POW_64 = 1n << 64n;
const TWO_POW_63 = 1n << 63n;
const TWO_POW_32 = 1n << 32n;

/**
 * A 64-bit integer in [min, max), delivered as a bigint. On the wire a value that fits a
 * 32-bit format is packed as a number (shortest form), anything else as a bigint.
 */
export class BigIntSchema extends Schema<bigint> {
  constructor(readonly expected: string, readonly min: bigint, readonly limit: bigint) {
    super();
  }
  parse(v: unknown): bigint {
    if (typeof v === 'bigint') {
      if (v >= this.min && v < this.limit) return v;
    } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
      const b = BigInt(v);
      if (b >= this.min && b < this.limit) return b;
    }
    return this.fail(v);
  }
  override wire(v: unknown): unknown {
    return integerToWire(this.parse(v));
  }
}

/** Shortest-form packing: msgpackr packs a number in 1–5 bytes, a bigint always in 9. */
export function integerToWire(b: bigint): number | bigint {
  return b >= -0x8000_0000n && b < TWO_POW_32 ? Number(b) : b;
}

export const u8 = new IntSchema('u8', 0, 0xff);
export const u16 = new IntSchema('u16', 0, 0xffff);
export const u32 = new IntSchema('u32', 0, 0xffff_ffff);
export const i32 = new IntSchema('i32', -0x8000_0000, 0x7fff_ffff);
export const u64 = new BigIntSchema('u64 (an integer 0..2^64-1)', 0n, TWO_POW_64);
export const i64OrU64 = new BigIntSchema('an integer -2^63..2^64-1', -TWO_POW_63, TWO_POW_64);
export const int = (min: number, max: number): IntSchema => new IntSchema('an integer', min, max);
export const uint = (max: number): IntSchema => int(0, max);
