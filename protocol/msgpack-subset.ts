/**
 * The structural check every received frame body passes before msgpackr sees it
 * (PROTOCOL.md §2, "The msgpack subset"). One pass over the headers, no recursion, no
 * allocation beyond a stack of `maxDepth` counters:
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

/** Throws `bad_frame` or `too_deep` unless `bytes` is exactly one value of the subset. */
export function checkMsgpackSubset(bytes: Uint8Array, maxDepth: number): void {
  new SubsetScanner(bytes, maxDepth).run();
}

const PROTO_KEY = '__proto__';

class SubsetScanner {
  private pos = 0;
  /** Items still to read in each open container (a map counts keys and values: 2n). */
  private readonly remaining: number[] = [];
  private readonly isMap: boolean[] = [];
  /** Keys seen so far in each open map. */
  private readonly keys: (string[] | Set<string> | undefined)[] = [];
  private depth = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array, private readonly maxDepth: number) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  run(): void {
    const end = this.bytes.length;
    if (end === 0) throw bad('the frame body is empty');
    do {
      this.item();
    } while (this.depth > 0);
    if (this.pos !== end) throw bad(`${end - this.pos} trailing bytes after the value (it ends at offset ${this.pos})`);
  }

  /** Reads one item's header (and a string or bin body), then closes finished containers. */
  private item(): void {
    const at = this.pos;
    const b = this.byte(at);
    const top = this.depth - 1;
    const isKey = top >= 0 && this.isMap[top]! && this.remaining[top]! % 2 === 0;
    if (top >= 0) this.remaining[top]!--;
    if (isKey && !(b >= 0xa0 && b <= 0xbf) && b !== 0xd9 && b !== 0xda && b !== 0xdb) {
      throw bad(`the map key at offset ${at} is not a string (byte 0x${hex(b)})`);
    }

    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      this.pos = at + 1;
    } else if (b <= 0x8f) {
      this.open(at, 1, b & 0x0f, true);
      return;
    } else if (b <= 0x9f) {
      this.open(at, 1, b & 0x0f, false);
      return;
    } else if (b <= 0xbf) {
      this.string(at, 1, b & 0x1f, isKey);
    } else {
      switch (b) {
        case 0xc4: this.body(at, 2, this.u8(at + 1)); break;
        case 0xc5: this.body(at, 3, this.u16(at + 1)); break;
        case 0xc6: this.body(at, 5, this.u32(at + 1)); break;
        case 0xcc: case 0xd0: this.fixed(at, 2); break;
        case 0xcd: case 0xd1: this.fixed(at, 3); break;
        case 0xce: case 0xd2: this.fixed(at, 5); break;
        case 0xcf: case 0xd3: this.fixed(at, 9); break;
        case 0xd9: this.string(at, 2, this.u8(at + 1), isKey); break;
        case 0xda: this.string(at, 3, this.u16(at + 1), isKey); break;
        case 0xdb: this.string(at, 5, this.u32(at + 1), isKey); break;
        case 0xdc: this.open(at, 3, this.u16(at + 1), false); return;
        case 0xdd: this.open(at, 5, this.u32(at + 1), false); return;
        case 0xde: this.open(at, 3, this.u16(at + 1), true); return;
        case 0xdf: this.open(at, 5, this.u32(at + 1), true); return;
        case 0xc1: throw bad(`reserved byte 0xc1 at offset ${at}`);
        case 0xca: case 0xcb: throw bad(`a float at offset ${at}: the protocol carries no floating-point values`);
        default: throw bad(`an ext value (byte 0x${hex(b)}) at offset ${at}: the protocol uses no ext types`);
      }
    }
    this.closeFinished();
  }

  private open(at: number, header: number, count: number, map: boolean): void {
    this.pos = at + header;
    if (this.pos > this.bytes.length) throw this.truncated(at);
    if (count === 0) {
      this.closeFinished();
      return;
    }
    if (this.depth >= this.maxDepth) {
      throw new ProtocolError('too_deep', `arrays and maps nest deeper than ${this.maxDepth} levels (at offset ${at})`);
    }
    this.remaining[this.depth] = map ? count * 2 : count;
    this.isMap[this.depth] = map;
    this.keys[this.depth] = undefined;
    this.depth++;
  }

  private closeFinished(): void {
    while (this.depth > 0 && this.remaining[this.depth - 1] === 0) this.depth--;
  }

  private fixed(at: number, size: number): void {
    if (at + size > this.bytes.length) throw this.truncated(at);
    this.pos = at + size;
  }

  private body(at: number, header: number, length: number): number {
    const start = at + header;
    if (start + length > this.bytes.length) throw this.truncated(at);
    this.pos = start + length;
    return start;
  }

  private string(at: number, header: number, length: number, isKey: boolean): void {
    const start = this.body(at, header, length);
    const end = start + length;
    let ascii = true;
    for (let i = start; i < end; i++) {
      if (this.bytes[i]! >= 0x80) {
        ascii = false;
        break;
      }
    }
    if (!ascii && !isUtf8(this.bytes.subarray(start, end))) throw bad(`the string at offset ${at} is not valid UTF-8`);
    if (isKey) this.key(at, start, end, ascii);
  }

  private key(at: number, start: number, end: number, ascii: boolean): void {
    const text = ascii && end - start <= 64
      ? String.fromCharCode(...this.bytes.subarray(start, end))
      : Buffer.from(this.bytes.buffer, this.bytes.byteOffset + start, end - start).toString('utf8');
    if (text === PROTO_KEY) throw bad(`the map key "__proto__" at offset ${at} is not allowed`);
    const top = this.depth - 1;
    const seen = this.keys[top];
    // A short list for the usual handful of keys; a set once a map is large, so a hostile map
    // of 100k keys costs linear time.
    if (seen === undefined) this.keys[top] = [text];
    else if (Array.isArray(seen)) {
      if (seen.includes(text)) throw duplicate(text, at);
      if (seen.length < 16) seen.push(text);
      else this.keys[top] = new Set([...seen, text]);
    } else {
      if (seen.has(text)) throw duplicate(text, at);
      seen.add(text);
    }
  }

  private byte(at: number): number {
    if (at >= this.bytes.length) throw this.truncated(at);
    return this.bytes[at]!;
  }
  private u8(at: number): number {
    return this.byte(at);
  }
  private u16(at: number): number {
    if (at + 2 > this.bytes.length) throw this.truncated(at - 1);
    return this.view.getUint16(at);
  }
  private u32(at: number): number {
    if (at + 4 > this.bytes.length) throw this.truncated(at - 1);
    return this.view.getUint32(at);
  }

  private truncated(at: number): ProtocolError {
    return bad(`the value at offset ${at} runs past the end of the ${this.bytes.length}-byte frame (truncated)`);
  }
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
