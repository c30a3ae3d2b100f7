/**
 * Numbers and bytes as a scenario writes them, once the schema has checked their form:
 * integers as JSON numbers or "0x…" strings (64-bit values as bigint), signed 64-bit values as
 * two's complement, and hex byte strings with repeat groups ("ff*0x600", "0f 32").
 */

/** A validated integer field: a safe JSON integer or a "0x…" (or "-0x…") hex string. */
export type IntegerText = number | string;

const U64_LIMIT = 1n << 64n;

export function toBigInt(text: IntegerText): bigint {
  if (typeof text === 'number') return BigInt(text);
  return text.startsWith('-') ? -BigInt(text.slice(1)) : BigInt(text);
}

/** For fields the schema bounds to 32 bits. */
export function toNumber(text: IntegerText): number {
  return Number(toBigInt(text));
}

/**
 * A 64-bit value that may be written negative: -22 and "-0x16" are 0xffffffffffffffea, as the
 * hypercall return -KVM_EINVAL is (PROTOCOL.md §4.2). undefined if it does not fit 64 bits.
 */
export function toU64TwosComplement(text: IntegerText): bigint | undefined {
  const v = toBigInt(text);
  if (v >= U64_LIMIT || v < -(1n << 63n)) return undefined;
  return v < 0n ? U64_LIMIT + v : v;
}

/** The byte count of a hex-bytes string, without building it (for limits). */
export function hexBytesLength(text: string): number {
  let total = 0;
  for (const group of text.trim().split(/ +/)) {
    if (group === '') continue;
    const [bytes, times] = group.split('*');
    total += (bytes!.length / 2) * (times === undefined ? 1 : Number(times));
  }
  return total;
}

/**
 * "00ff 0f" → 00 ff 0f; "ff*3 00" → ff ff ff 00: space-separated groups of hex bytes, each
 * optionally repeated with *N (decimal or 0x hex). Call hexBytesLength first to bound the size.
 */
export function parseHexBytes(text: string): Uint8Array {
  const out = new Uint8Array(hexBytesLength(text));
  let at = 0;
  for (const group of text.trim().split(/ +/)) {
    if (group === '') continue;
    const [digits, times] = group.split('*');
    const bytes = new Uint8Array(digits!.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(digits!.slice(2 * i, 2 * i + 2), 16);
    const n = times === undefined ? 1 : Number(times);
    for (let k = 0; k < n; k++) {
      out.set(bytes, at);
      at += bytes.length;
    }
  }
  return out;
}
