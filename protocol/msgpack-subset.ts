/**
 * The structural check every received frame body passes before msgpackr sees it
 * (PROTOCOL.md §2, "The msgpack subset"). One pass over the headers, no recursion, and no
 * allocation in the common case (the scanner's stacks are module-level and reused):
 *
 * - exactly one value, no trailing bytes, nothing truncated;
 * - containers nest at most `maxDepth` deep — msgpackr recurses once per level and has no
 *   limit of its own (100k nested arrays overflow its stack), so this is what keeps hostile
 *   input a clean `too_deep` instead of a RangeError;
 * - no ext types at all (msgpackr's ext handlers are where CVE-2023-52079 lived; timestamps,
 *   records, structured-clone references and bundled strings all ride on ext), no reserved
 *   0xc1, no floats (the protocol carries none);
 * - map keys are strings, unique within their map, and never `__proto__`;
 * - strings are valid UTF-8.
 */
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './errors.js';

const EMPTY = new Uint8Array(0);
const PROTO_KEY = Uint8Array.from(Buffer.from('__proto__'));
/** Above this many keys a map's duplicate check switches from hashed pairs to a Set. */
const PAIRWISE_KEYS = 64;

// Scanner state. checkMsgpackSubset() is synchronous and never re-entered, so one set serves.
let src: Uint8Array = EMPTY;
let pos = 0;
let depth = 0;
/** Items still to read in each open container (a map counts keys and values: 2n). */
const remaining: number[] = [];
const isMap: boolean[] = [];
/** Where each open map's keys start in the key stack. */
const keyBase: number[] = [];
/** Keys of a map with more than PAIRWISE_KEYS keys. */
const keySets: (Set<string> | undefined)[] = [];
// The key stack: every key of every open map, as (hash, offset, length).
let keyHash: Int32Array = new Int32Array(256);
let keyStart: Int32Array = new Int32Array(256);
let keyLength: Int32Array = new Int32Array(256);
let keyTop = 0;

/** Throws `bad_frame` or `too_deep` unless `bytes` is exactly one value of the subset. */
export function checkMsgpackSubset(bytes: Uint8Array, maxDepth: number): void {
  if (bytes.length === 0) throw bad('the frame body is empty');
  src = bytes;
  pos = 0;
  depth = 0;
  keyTop = 0;
  try {
    do item(maxDepth);
    while (depth > 0);
  } finally {
    src = EMPTY;
    keySets.length = 0;
  }
  if (pos !== bytes.length) throw bad(`${bytes.length - pos} trailing bytes after the value (it ends at offset ${pos})`);
}

/** Reads one item's header (and a string or bin body), then closes finished containers. */
function item(maxDepth: number): void {
  const at = pos;
  if (at >= src.length) throw truncated(at);
  const b = src[at]!;
  const top = depth - 1;
  const isKey = top >= 0 && isMap[top]! && remaining[top]! % 2 === 0;
  if (top >= 0) remaining[top]!--;
  if (isKey && !(b >= 0xa0 && b <= 0xbf) && b !== 0xd9 && b !== 0xda && b !== 0xdb) {
    throw bad(`the map key at offset ${at} is not a string (byte 0x${hex(b)})`);
  }

  if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
    pos = at + 1;
  } else if (b <= 0x8f) {
    return open(at, 1, b & 0x0f, true, maxDepth);
  } else if (b <= 0x9f) {
    return open(at, 1, b & 0x0f, false, maxDepth);
  } else if (b <= 0xbf) {
    string(at, 1, b & 0x1f, isKey);
  } else {
    switch (b) {
      case 0xc4: body(at, 2, u8(at + 1)); break;
      case 0xc5: body(at, 3, u16(at + 1)); break;
      case 0xc6: body(at, 5, u32(at + 1)); break;
      case 0xcc: case 0xd0: fixed(at, 2); break;
      case 0xcd: case 0xd1: fixed(at, 3); break;
      case 0xce: case 0xd2: fixed(at, 5); break;
      case 0xcf: case 0xd3: fixed(at, 9); break;
      case 0xd9: string(at, 2, u8(at + 1), isKey); break;
      case 0xda: string(at, 3, u16(at + 1), isKey); break;
      case 0xdb: string(at, 5, u32(at + 1), isKey); break;
      case 0xdc: return open(at, 3, u16(at + 1), false, maxDepth);
      case 0xdd: return open(at, 5, u32(at + 1), false, maxDepth);
      case 0xde: return open(at, 3, u16(at + 1), true, maxDepth);
      case 0xdf: return open(at, 5, u32(at + 1), true, maxDepth);
      case 0xc1: throw bad(`reserved byte 0xc1 at offset ${at}`);
      case 0xca: case 0xcb: throw bad(`a float at offset ${at}: the protocol carries no floating-point values`);
      default: throw bad(`an ext value (byte 0x${hex(b)}) at offset ${at}: the protocol uses no ext types`);
    }
  }
  closeFinished();
}

function open(at: number, header: number, count: number, map: boolean, maxDepth: number): void {
  pos = at + header;
  if (count === 0) return closeFinished();
  if (depth >= maxDepth) {
    throw new ProtocolError('too_deep', `arrays and maps nest deeper than ${maxDepth} levels (at offset ${at})`);
  }
  remaining[depth] = map ? count * 2 : count;
  isMap[depth] = map;
  if (map) {
    keyBase[depth] = keyTop;
    keySets[depth] = undefined;
  }
  depth++;
}

function closeFinished(): void {
  while (depth > 0 && remaining[depth - 1] === 0) {
    depth--;
    if (isMap[depth]) keyTop = keyBase[depth]!;
  }
}

function fixed(at: number, size: number): void {
  if (at + size > src.length) throw truncated(at);
  pos = at + size;
}

function body(at: number, header: number, length: number): number {
  const start = at + header;
  if (start + length > src.length) throw truncated(at);
  pos = start + length;
  return start;
}

function string(at: number, header: number, length: number, isKey: boolean): void {
  const start = body(at, header, length);
  const end = start + length;
  // FNV-1a over the key's bytes, computed in the same pass as the ASCII check.
  let hash = 0x811c9dc5 | 0;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const c = src[i]!;
    if (c >= 0x80) ascii = false;
    if (isKey) hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (!ascii && !isUtf8(src.subarray(start, end))) throw bad(`the string at offset ${at} is not valid UTF-8`);
  if (isKey) key(at, start, length, hash);
}

function key(at: number, start: number, length: number, hash: number): void {
  if (length === PROTO_KEY.length && equalBytes(start, PROTO_KEY, 0, length)) {
    throw bad(`the map key "__proto__" at offset ${at} is not allowed`);
  }
  const level = depth - 1;
  const set = keySets[level];
  if (set) {
    const text = Buffer.from(src.buffer, src.byteOffset + start, length).toString('utf8');
    if (set.has(text)) throw duplicate(text, at);
    set.add(text);
    return;
  }
  const base = keyBase[level]!;
  for (let i = base; i < keyTop; i++) {
    if (keyHash[i] === hash && keyLength[i] === length && equalBytes(keyStart[i]!, src, start, length)) {
      throw duplicate(Buffer.from(src.buffer, src.byteOffset + start, length).toString('utf8'), at);
    }
  }
  if (keyTop - base >= PAIRWISE_KEYS) {
    // A large map (hostile, since no message has one): a Set keeps the check linear.
    const all = new Set<string>();
    for (let i = base; i < keyTop; i++) all.add(Buffer.from(src.buffer, src.byteOffset + keyStart[i]!, keyLength[i]!).toString('utf8'));
    all.add(Buffer.from(src.buffer, src.byteOffset + start, length).toString('utf8'));
    keySets[level] = all;
    return;
  }
  if (keyTop === keyHash.length) growKeyStack();
  keyHash[keyTop] = hash;
  keyStart[keyTop] = start;
  keyLength[keyTop] = length;
  keyTop++;
}

function growKeyStack(): void {
  const grow = (a: Int32Array): Int32Array => {
    const b = new Int32Array(a.length * 2);
    b.set(a);
    return b;
  };
  keyHash = grow(keyHash);
  keyStart = grow(keyStart);
  keyLength = grow(keyLength);
}

/** src[a..a+n) equals other[b..b+n) */
function equalBytes(a: number, other: Uint8Array, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (src[a + i] !== other[b + i]) return false;
  return true;
}

function u8(at: number): number {
  if (at >= src.length) throw truncated(at - 1);
  return src[at]!;
}
function u16(at: number): number {
  if (at + 2 > src.length) throw truncated(at - 1);
  return (src[at]! << 8) | src[at + 1]!;
}
function u32(at: number): number {
  if (at + 4 > src.length) throw truncated(at - 1);
  return ((src[at]! << 24) | (src[at + 1]! << 16) | (src[at + 2]! << 8) | src[at + 3]!) >>> 0;
}

function truncated(at: number): ProtocolError {
  return bad(`the value at offset ${at} runs past the end of the ${src.length}-byte frame (truncated)`);
}

function bad(message: string): ProtocolError {
  return new ProtocolError('bad_frame', message);
}

function duplicate(key: string, at: number): ProtocolError {
  return bad(`the map key ${JSON.stringify(key)} at offset ${at} appears twice in one map`);
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0');
}
