/**
 * Decoding what a peer may send: frames written here, by an encoder of the test's own, with
 * every header width msgpack allows for each value (not only the shortest, which is all pinbox
 * sends but not all a peer may), must pass the subset check and decode to the value written.
 */
import test from 'ava';
import { decodeMsgpack } from '../../protocol/codec.js';
import { xorshift } from '../x86/harness/prng.js';
import { randomValue } from './random-values.js';


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

/** Integers compare by value whatever their width decoded them as (small ones as numbers, 64-bit forms as bigint). */
function sameValue(a: unknown, b: unknown): boolean {
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) {
    return BigInt(a) === BigInt(b);
  }
  if (a instanceof Uint8Array && b instanceof Uint8Array) return Buffer.from(a).equals(Buffer.from(b));
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((x, i) => sameValue(x, b[i]));
  if (a !== null && b !== null && typeof a === 'object' && typeof b === 'object') {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
  }
  return a === b;
}

test('a frame written with any header width the msgpack spec allows passes the subset check and decodes to the value written', (t) => {
  const next = xorshift(0x5eed_0003);
  let compared = 0;
  for (let i = 0; i < 3000; i++) {
    const value = randomValue(next, 1 + (next() % 5));
    const bytes = Uint8Array.from(encodeAnyWidth(value, next));
    const decoded = decodeMsgpack(bytes);
    if (!sameValue(decoded, value)) {
      t.fail(`${Buffer.from(bytes).toString('hex')}: decoded ${String(decoded)}, wrote ${String(value)}`);
      return;
    }
    compared++;
  }
  t.is(compared, 3000);
});

test('bin comes out with bytes of its own, not a view of the frame', (t) => {
  const frame = Uint8Array.from([0x81, 0xa1, 0x62, 0xc4, 0x03, 1, 2, 3]);
  const { b } = decodeMsgpack(frame) as { b: Uint8Array };
  frame.fill(0);
  t.true(b instanceof Uint8Array);
  t.deepEqual([...b], [1, 2, 3]);
});
