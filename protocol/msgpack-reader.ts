/**
 * Builds the value of a frame body that checkMsgpackSubset() has already vetted (PROTOCOL.md
 * §2): maps become plain objects, arrays arrays, strings strings, bin a fresh Uint8Array that
 * owns its bytes, integers of the 8/16/32-bit formats numbers and of the 64-bit formats bigints,
 * nil null. Nothing else can reach it: no ext, no float, no non-string or duplicate key, no
 * `__proto__`, valid UTF-8, nothing truncated, no deeper than the channel's limit (so the
 * recursion here is as deep as the frame was allowed to be).
 *
 * Why not msgpackr's unpack: a batch frame is thousands of small maps with the same few keys
 * and short strings ("ok", "result", "rdmsr"). msgpackr caches keys only in frames under 180
 * bytes and otherwise decodes every key anew — a new string per key per map, stored through a
 * key V8 has not seen — which made decoding the largest protocol cost on both ends of a batch.
 * Here short strings (keys and values alike) are interned in a small table keyed by their
 * bytes, so a batch's maps are built from the same few strings.
 */

const EMPTY = new Uint8Array(0);
let src: Uint8Array = EMPTY;
let pos = 0;

/** Strings up to this many bytes are looked up in, and kept in, the intern table. */
const INTERNED_BYTES = 32;
const TABLE_SIZE = 4096;
const internedText: (string | undefined)[] = new Array<string | undefined>(TABLE_SIZE);
const internedBytes: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(TABLE_SIZE);
const utf8 = new TextDecoder('utf-8');

/** The value of a vetted frame body. */
export function readMsgpack(body: Uint8Array): unknown {
  src = body;
  pos = 0;
  try {
    return value();
  } finally {
    src = EMPTY;
  }
}

function value(): unknown {
  const b = src[pos++]!;
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b <= 0x8f) return map(b & 0x0f);
  if (b <= 0x9f) return array(b & 0x0f);
  if (b <= 0xbf) return text(b & 0x1f);
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return bytes(src[pos++]!);
    case 0xc5: return bytes(u16());
    case 0xc6: return bytes(u32());
    case 0xcc: return src[pos++]!;
    case 0xcd: return u16();
    case 0xce: return u32();
    case 0xcf: return u64();
    case 0xd0: return (src[pos++]! << 24) >> 24;
    case 0xd1: return (u16() << 16) >> 16;
    case 0xd2: return u32() | 0;
    case 0xd3: return BigInt.asIntN(64, u64());
    case 0xd9: return text(src[pos++]!);
    case 0xda: return text(u16());
    case 0xdb: return text(u32());
    case 0xdc: return array(u16());
    case 0xdd: return array(u32());
    case 0xde: return map(u16());
    case 0xdf: return map(u32());
    default:
      // The scanner lets nothing else through; reaching here means it was not run.
      throw new Error(`msgpack byte 0x${b.toString(16)} at offset ${pos - 1} was not vetted`);
  }
}

// Big-endian integers, read byte by byte: a DataView per frame would cost more than a small
// frame's whole decoding.
function u16(): number {
  const n = (src[pos]! << 8) | src[pos + 1]!;
  pos += 2;
  return n;
}

function u32(): number {
  const n = ((src[pos]! << 24) | (src[pos + 1]! << 16) | (src[pos + 2]! << 8) | src[pos + 3]!) >>> 0;
  pos += 4;
  return n;
}

function u64(): bigint {
  const high = u32();
  return (BigInt(high) << 32n) | BigInt(u32());
}

function map(count: number): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (let i = 0; i < count; i++) {
    const b = src[pos++]!;
    const key = b <= 0xbf ? text(b & 0x1f) : text(b === 0xd9 ? src[pos++]! : b === 0xda ? u16() : u32());
    out[key] = value();
  }
  return out;
}

function array(count: number): unknown[] {
  const out = new Array<unknown>(count);
  for (let i = 0; i < count; i++) out[i] = value();
  return out;
}

function bytes(length: number): Uint8Array {
  const start = pos;
  pos += length;
  return new Uint8Array(src.subarray(start, pos));
}

function text(length: number): string {
  const start = pos;
  const end = start + length;
  pos = end;
  if (length > INTERNED_BYTES) return utf8.decode(src.subarray(start, end));
  let hash = length;
  for (let i = start; i < end; i++) hash = (Math.imul(hash, 31) + src[i]!) | 0;
  const slot = (hash ^ (hash >>> 12)) & (TABLE_SIZE - 1);
  const known = internedBytes[slot];
  if (known !== undefined && known.length === length) {
    let i = 0;
    while (i < length && known[i] === src[start + i]) i++;
    if (i === length) return internedText[slot]!;
  }
  const s = utf8.decode(src.subarray(start, end));
  internedBytes[slot] = new Uint8Array(src.subarray(start, end));
  internedText[slot] = s;
  return s;
}
