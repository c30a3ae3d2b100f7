/**
 * How a policy writes numbers (after schema validation has checked their form): JSON numbers
 * up to 2^53 - 1, hex strings "0x…" for anything (64-bit values above 2^53 must be hex, since
 * JSON.parse would already have rounded them), and memory sizes with IEC units.
 */

/** A validated integer field: a safe JSON integer or a "0x…" hex string. */
export type IntegerText = number | string;

export function toBigInt(value: IntegerText): bigint {
  return typeof value === 'number' ? BigInt(value) : BigInt(value);
}

/** For fields known to fit 32 bits (MSR indices, counts). */
export function toU32(value: IntegerText): number {
  return Number(toBigInt(value));
}

const UNITS: Readonly<Record<string, number>> = { B: 1, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 };

/** "16MiB", "1 GiB", "0x1000000" or 16777216 → bytes (may exceed 2^32: the caller checks limits). */
export function parseMemorySize(value: IntegerText): number {
  if (typeof value === 'number') return value;
  if (value.startsWith('0x')) return Number(BigInt(value));
  const m = /^([0-9]+) ?(B|KiB|MiB|GiB)$/.exec(value);
  if (m === null) throw new RangeError(`not a memory size: ${value}`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

/** Bytes as the largest IEC unit that divides them ("16 MiB", "4097 KiB"). */
export function formatSize(bytes: number): string {
  for (const unit of ['GiB', 'MiB', 'KiB'] as const) {
    const n = UNITS[unit]!;
    if (bytes >= n && bytes % n === 0) return `${bytes / n} ${unit}`;
  }
  return `${bytes} bytes`;
}

/** "00ff 0f" → bytes in that order (the form was checked by the schema). */
export function parseHexBytes(text: string): Uint8Array {
  const digits = text.replace(/ /g, '');
  const out = new Uint8Array(digits.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(digits.slice(2 * i, 2 * i + 2), 16);
  return out;
}
