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
 *
 * Every frame passes here, a batch's thousands of small maps included, so the scan is one loop
 * that keeps the innermost container's state in local variables and touches the stacks only
 * when a container opens or closes.
 */
import { isUtf8 } from 'node:buffer';
import { ProtocolError } from './errors.js';

const EMPTY = new Uint8Array(0);
const PROTO_KEY = Uint8Array.from(Buffer.from('__proto__'));
/** Above this many keys a map's duplicate check switches from hashed pairs to a Set. */
const PAIRWISE_KEYS = 64;

// Scanner state. checkMsgpackSubset() is synchronous and never re-entered, so one set serves.
let src: Uint8Array = EMPTY;
// The enclosing containers of the innermost one, by depth: items left in each, whether it is a
// map, and where its keys (if a map) start in the key stack.
let outerLeft = new Float64Array(16);
let outerIsMap = new Uint8Array(16);
let outerKeyBase = new Int32Array(16);
/** Keys of a map with more than PAIRWISE_KEYS keys, by the map's depth (rarely any: see key()). */
let keySets: (Set<string> | undefined)[] = [];
let keySetsUsed = false;
// The key stack: every key of every open map, as (hash, offset, length).
let keyHash: Int32Array = new Int32Array(256);
let keyStart: Int32Array = new Int32Array(256);
let keyLength: Int32Array = new Int32Array(256);
let keyTop = 0;

/** Throws `bad_frame` or `too_deep` unless `bytes` is exactly one value of the subset. */
export function checkMsgpackSubset(bytes: Uint8Array, maxDepth: number): void {
  if (bytes.length === 0) throw bad('the frame body is empty');
  src = bytes;
  keyTop = 0;
  let end: number;
  try {
    end = scan(bytes, maxDepth);
  } finally {
    src = EMPTY;
    if (keySetsUsed) {
      keySets = [];
      keySetsUsed = false;
    }
  }
  if (end !== bytes.length) throw bad(`${bytes.length - end} trailing bytes after the value (it ends at offset ${end})`);
}

/** Reads one value from offset 0 and returns the offset just after it. */
function scan(s: Uint8Array, maxDepth: number): number {
  const size = s.length;
  let pos = 0;
  let depth = 0;
  // The innermost open container (at depth 0: the frame, which holds one value).
  let left = 1;
  let isMap = false;
  let keyNext = false;
  let keyBase = 0;
  for (;;) {
    while (left === 0) {
      if (depth === 0) return pos;
      if (isMap) keyTop = keyBase;
      depth--;
      left = outerLeft[depth]!;
      isMap = outerIsMap[depth] === 1;
      keyBase = outerKeyBase[depth]!;
      // A container is never a key: what follows it in a map is the next key.
      keyNext = isMap;
    }
    const at = pos;
    if (at >= size) throw truncated(at);
    const b = s[at]!;
    left--;

    if (keyNext) {
      keyNext = false;
      let header: number;
      let length: number;
      if (b >= 0xa0 && b <= 0xbf) {
        header = 1;
        length = b & 0x1f;
      } else if (b === 0xd9 || b === 0xda || b === 0xdb) {
        header = b === 0xd9 ? 2 : b === 0xda ? 3 : 5;
        length = lengthAt(s, at, header);
      } else {
        throw bad(`the map key at offset ${at} is not a string (byte 0x${hex(b)})`);
      }
      pos = at + header + length;
      if (pos > size) throw truncated(at);
      key(s, at, at + header, length, depth, keyBase);
      continue;
    }
    if (isMap) keyNext = true;

    // Scalars: positive and negative fixint, nil, false, true.
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      pos = at + 1;
      continue;
    }
    let count: number;
    let opensMap: boolean;
    if (b <= 0x8f) {
      count = b & 0x0f;
      opensMap = true;
      pos = at + 1;
    } else if (b <= 0x9f) {
      count = b & 0x0f;
      opensMap = false;
      pos = at + 1;
    } else if (b <= 0xbf) {
      pos = string(s, at, 1, b & 0x1f);
      continue;
    } else {
      switch (b) {
        case 0xc4: case 0xc5: case 0xc6: {
          const header = b === 0xc4 ? 2 : b === 0xc5 ? 3 : 5;
          pos = at + header + lengthAt(s, at, header);
          if (pos > size) throw truncated(at);
          continue;
        }
        case 0xcc: case 0xd0: pos = fixed(at, 2, size); continue;
        case 0xcd: case 0xd1: pos = fixed(at, 3, size); continue;
        case 0xce: case 0xd2: pos = fixed(at, 5, size); continue;
        case 0xcf: case 0xd3: pos = fixed(at, 9, size); continue;
        case 0xd9: pos = string(s, at, 2, lengthAt(s, at, 2)); continue;
        case 0xda: pos = string(s, at, 3, lengthAt(s, at, 3)); continue;
        case 0xdb: pos = string(s, at, 5, lengthAt(s, at, 5)); continue;
        case 0xdc: case 0xdd:
          count = lengthAt(s, at, b === 0xdc ? 3 : 5);
          opensMap = false;
          pos = at + (b === 0xdc ? 3 : 5);
          break;
        case 0xde: case 0xdf:
          count = lengthAt(s, at, b === 0xde ? 3 : 5);
          opensMap = true;
          pos = at + (b === 0xde ? 3 : 5);
          break;
        case 0xc1: throw bad(`reserved byte 0xc1 at offset ${at}`);
        case 0xca: case 0xcb: throw bad(`a float at offset ${at}: the protocol carries no floating-point values`);
        default: throw bad(`an ext value (byte 0x${hex(b)}) at offset ${at}: the protocol uses no ext types`);
      }
    }

    // An empty container is at its level too (PROTOCOL.md §2: the root map is level 1), though
    // it opens nothing to scan.
    if (depth >= maxDepth) {
      throw new ProtocolError('too_deep', `arrays and maps nest deeper than ${maxDepth} levels (at offset ${at})`);
    }
    if (count === 0) continue;
    if (depth === outerLeft.length) growOuter();
    outerLeft[depth] = left;
    outerIsMap[depth] = isMap ? 1 : 0;
    outerKeyBase[depth] = keyBase;
    depth++;
    left = opensMap ? count * 2 : count;
    isMap = opensMap;
    keyNext = opensMap;
    if (opensMap) {
      keyBase = keyTop;
      if (keySetsUsed) keySets[depth] = undefined;
    }
  }
}

/** The big-endian length in the `header - 1` bytes after the type byte at `at`. */
function lengthAt(s: Uint8Array, at: number, header: number): number {
  if (at + header > s.length) throw truncated(at);
  if (header === 2) return s[at + 1]!;
  if (header === 3) return (s[at + 1]! << 8) | s[at + 2]!;
  return ((s[at + 1]! << 24) | (s[at + 2]! << 16) | (s[at + 3]! << 8) | s[at + 4]!) >>> 0;
}

function fixed(at: number, size: number, end: number): number {
  if (at + size > end) throw truncated(at);
  return at + size;
}

/** A string value: its body must be there and be UTF-8. Returns the offset after it. */
function string(s: Uint8Array, at: number, header: number, length: number): number {
  const start = at + header;
  const end = start + length;
  if (end > s.length) throw truncated(at);
  for (let i = start; i < end; i++) {
    if (s[i]! >= 0x80) {
      if (!isUtf8(s.subarray(start, end))) throw bad(`the string at offset ${at} is not valid UTF-8`);
      break;
    }
  }
  return end;
}

/** A map key (its body is there): UTF-8, not `__proto__`, and new in its map. */
function key(s: Uint8Array, at: number, start: number, length: number, depth: number, base: number): void {
  const end = start + length;
  // FNV-1a over the key's bytes, computed in the same pass as the ASCII check.
  let hash = 0x811c9dc5 | 0;
  let ascii = true;
  for (let i = start; i < end; i++) {
    const c = s[i]!;
    if (c >= 0x80) ascii = false;
    hash = Math.imul(hash ^ c, 0x01000193);
  }
  if (!ascii && !isUtf8(s.subarray(start, end))) throw bad(`the string at offset ${at} is not valid UTF-8`);
  if (length === PROTO_KEY.length && equalBytes(start, PROTO_KEY, 0, length)) {
    throw bad(`the map key "__proto__" at offset ${at} is not allowed`);
  }
  const set = keySetsUsed ? keySets[depth] : undefined;
  if (set) {
    const text = keyText(start, length);
    if (set.has(text)) throw duplicate(text, at);
    set.add(text);
    return;
  }
  for (let i = base; i < keyTop; i++) {
    if (keyHash[i] === hash && keyLength[i] === length && equalBytes(keyStart[i]!, s, start, length)) {
      throw duplicate(keyText(start, length), at);
    }
  }
  if (keyTop - base >= PAIRWISE_KEYS) {
    // A large map (hostile, since no message has one): a Set keeps the check linear.
    const all = new Set<string>();
    for (let i = base; i < keyTop; i++) all.add(keyText(keyStart[i]!, keyLength[i]!));
    all.add(keyText(start, length));
    keySets[depth] = all;
    keySetsUsed = true;
    return;
  }
  if (keyTop === keyHash.length) growKeyStack();
  keyHash[keyTop] = hash;
  keyStart[keyTop] = start;
  keyLength[keyTop] = length;
  keyTop++;
}

function keyText(start: number, length: number): string {
  return Buffer.from(src.buffer, src.byteOffset + start, length).toString('utf8');
}

function grow<A extends Float64Array | Int32Array | Uint8Array>(a: A): A {
  const b = new (a.constructor as new (n: number) => A)(a.length * 2);
  b.set(a);
  return b;
}

function growOuter(): void {
  outerLeft = grow(outerLeft);
  outerIsMap = grow(outerIsMap);
  outerKeyBase = grow(outerKeyBase);
}

function growKeyStack(): void {
  keyHash = grow(keyHash);
  keyStart = grow(keyStart);
  keyLength = grow(keyLength);
}

/** src[a..a+n) equals other[b..b+n) */
function equalBytes(a: number, other: Uint8Array, b: number, n: number): boolean {
  for (let i = 0; i < n; i++) if (src[a + i] !== other[b + i]) return false;
  return true;
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
