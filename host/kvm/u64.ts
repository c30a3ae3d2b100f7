/**
 * Checks for the integer arguments of the ioctl-like API. The C ABI carries __u32/__u64
 * fields that cannot hold anything else; a JavaScript caller can pass anything, so each
 * entry point turns what it was given into the C type or says exactly what is wrong.
 */

export const U64_MAX = (1n << 64n) - 1n;
export const U32_MAX = 0xffff_ffff;

/** A __u64 given as a bigint or a non-negative safe integer; undefined if it is neither. */
export function toU64(value: unknown): bigint | undefined {
  if (typeof value === 'bigint') return value >= 0n && value <= U64_MAX ? value : undefined;
  if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 0) return BigInt(value);
  return undefined;
}

export function isU32(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= U32_MAX;
}

export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}
