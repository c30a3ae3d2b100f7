/**
 * The frame reader (protocol/msgpack-reader.ts, behind decodeMsgpack) against msgpackr's unpack
 * as an independent oracle: the same bytes must give the same value. Frames are written here
 * with every header width msgpack allows for each value (not only the shortest, which is all
 * pinbox sends but not all a peer may), so every format the reader knows is read.
 */
import { isDeepStrictEqual } from 'node:util';
import test from 'ava';
import { Unpackr } from 'msgpackr';
import { decodeMsgpack } from '../../protocol/codec.js';
import { xorshift } from '../x86/harness/prng.js';
import { randomValue } from './random-values.js';

const oracle = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'bigint', structuredClone: false, moreTypes: false });

/** msgpackr gives bin as a view into the frame (a Buffer here); compare bytes as plain arrays. */
function plain(v: unknown): unknown {
  if (v instanceof Uint8Array) return Uint8Array.from(v);
  if (Array.isArray(v)) return v.map(plain);
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, plain(x)]));
  return v;
}

/** msgpack bytes for `v`, each header picked at random among the widths that hold it. */
function encodeAnyWidth(v: unknown, next: () => number): number[] {
  const out: number[] = [];
  const be = (n: bigint, bytes: number): void => {
    for (let i = bytes - 1; i >= 0; i--) out.push(Number((BigInt.asUintN(64, n) >> BigInt(8 * i)) & 0xffn));
  };
  const header = (n: number, fix: number | undefined, fixMax: number, codes: [number, number][]): void => {
    const choices: (() => void)[] = [];
    if (fix !== undefined && n <= fixMax) choices.push(() => out.push(fix | n));
    for (const [code, bytes] of codes) if (n < 2 ** (8 * bytes)) choices.push(() => (out.push(code), be(BigInt(n), bytes)));
    choices[next() % choices.length]!();
  };
  const walk = (x: unknown): void => {
    if (x === null) out.push(0xc0);
    else if (typeof x === 'boolean') out.push(x ? 0xc3 : 0xc2);
    else if (typeof x === 'number' || typeof x === 'bigint') {
      const n = BigInt(x);
      const choices: (() => void)[] = [];
      if (n >= 0n && n <= 0x7fn) choices.push(() => out.push(Number(n)));
      if (n >= -32n && n < 0n) choices.push(() => out.push(Number(n) & 0xff));
      for (const [code, bytes, signed] of [[0xcc, 1, false], [0xcd, 2, false], [0xce, 4, false], [0xcf, 8, false], [0xd0, 1, true], [0xd1, 2, true], [0xd2, 4, true], [0xd3, 8, true]] as const) {
        const bits = BigInt(8 * bytes);
        const fits = signed ? n >= -(1n << (bits - 1n)) && n < 1n << (bits - 1n) : n >= 0n && n < 1n << bits;
        if (fits) choices.push(() => (out.push(code), be(n, bytes)));
      }
      choices[next() % choices.length]!();
    } else if (typeof x === 'string') {
      const bytes = Buffer.from(x, 'utf8');
      header(bytes.length, 0xa0, 31, [[0xd9, 1], [0xda, 2], [0xdb, 4]]);
      out.push(...bytes);
    } else if (x instanceof Uint8Array) {
      header(x.length, undefined, 0, [[0xc4, 1], [0xc5, 2], [0xc6, 4]]);
      out.push(...x);
    } else if (Array.isArray(x)) {
      header(x.length, 0x90, 15, [[0xdc, 2], [0xdd, 4]]);
      for (const item of x) walk(item);
    } else {
      const entries = Object.entries(x as Record<string, unknown>);
      header(entries.length, 0x80, 15, [[0xde, 2], [0xdf, 4]]);
      for (const [k, item] of entries) {
        walk(k);
        walk(item);
      }
    }
  };
  walk(v);
  return out;
}

test('the reader gives what msgpackr gives for thousands of frames in every header width', (t) => {
  const next = xorshift(0x5eed_0003);
  let compared = 0;
  for (let i = 0; i < 3000; i++) {
    const bytes = Uint8Array.from(encodeAnyWidth(randomValue(next, 1 + (next() % 5)), next));
    const ours = decodeMsgpack(bytes);
    const theirs = plain(oracle.unpack(bytes));
    if (!isDeepStrictEqual(ours, theirs)) {
      t.fail(`${Buffer.from(bytes).toString('hex')}: reader ${String(ours)}, msgpackr ${String(theirs)}`);
      return;
    }
    compared++;
  }
  t.is(compared, 3000);
});

test('bin comes out as a plain Uint8Array with bytes of its own, not a view of the frame', (t) => {
  const frame = Uint8Array.from([0x81, 0xa1, 0x62, 0xc4, 0x03, 1, 2, 3]);
  const { b } = decodeMsgpack(frame) as { b: Uint8Array };
  frame.fill(0);
  t.is(b.constructor, Uint8Array);
  t.deepEqual([...b], [1, 2, 3]);
  t.is(b.byteLength, b.buffer.byteLength);
});

test('short strings that share a slot of the intern table stay apart', (t) => {
  // 20000 distinct short keys and values over a 4096-slot table: slots are shared many times.
  const names = Array.from({ length: 20_000 }, (_, i) => `k${i.toString(36)}`);
  for (let round = 0; round < 2; round++) {
    for (let i = 0; i < names.length; i += 500) {
      const chunk = names.slice(i, i + 500);
      const bytes: number[] = [0xde, chunk.length >> 8, chunk.length & 0xff];
      for (const name of chunk) {
        const key = Buffer.from(name);
        const value = Buffer.from(`${name}v`);
        bytes.push(0xa0 | key.length, ...key, 0xa0 | value.length, ...value);
      }
      const got = decodeMsgpack(Uint8Array.from(bytes)) as Record<string, string>;
      t.deepEqual(Object.keys(got), chunk);
      if (!chunk.every((name) => got[name] === `${name}v`)) t.fail(`round ${round}, chunk at ${i}`);
    }
  }
});
