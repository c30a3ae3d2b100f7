/**
 * The frame scanner (protocol/msgpack-subset.ts) against a reference written here from the
 * rules of PROTOCOL.md §2 and the msgpack spec's format table: a plain recursive reader that
 * decodes what it checks. Thousands of seeded inputs — valid frames of random values, then the
 * same frames cut short, with a byte changed, or with bytes added — must get the same verdict
 * (accepted, bad_frame or too_deep) from both. Each mutation keeps the scanner's contract of
 * reporting the first problem in byte order, which the recursive reader finds the same way.
 */
import test from 'ava';
import { encodeMsgpack } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';
import { checkMsgpackSubset } from '../../protocol/msgpack-subset.js';
import { xorshift } from '../x86/harness/prng.js';
import { randomValue } from './random-values.js';

type Verdict = 'ok' | 'bad_frame' | 'too_deep';

class Refused extends Error {
  constructor(readonly code: 'bad_frame' | 'too_deep') {
    super(code);
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** The reference: reads one value recursively; containers deeper than maxDepth are too_deep. */
function reference(bytes: Uint8Array, maxDepth: number): Verdict {
  let pos = 0;
  const need = (n: number): number => {
    if (pos + n > bytes.length) throw new Refused('bad_frame');
    const at = pos;
    pos += n;
    return at;
  };
  const uint = (n: number): number => {
    const at = need(n);
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + bytes[at + i]!;
    return v;
  };
  const text = (n: number): string => {
    const at = need(n);
    try {
      return utf8.decode(bytes.subarray(at, at + n));
    } catch {
      throw new Refused('bad_frame');
    }
  };
  const container = (count: number, isMap: boolean, depth: number): void => {
    if (depth >= maxDepth) throw new Refused('too_deep');
    if (count === 0) return;
    const keys = new Set<string>();
    for (let i = 0; i < count; i++) {
      if (isMap) {
        const key = readKey();
        if (key === '__proto__' || keys.has(key)) throw new Refused('bad_frame');
        keys.add(key);
      }
      value(depth + 1);
    }
  };
  const readKey = (): string => {
    const b = uint(1);
    if (b >= 0xa0 && b <= 0xbf) return text(b & 0x1f);
    if (b === 0xd9) return text(uint(1));
    if (b === 0xda) return text(uint(2));
    if (b === 0xdb) return text(uint(4));
    throw new Refused('bad_frame');
  };
  const value = (depth: number): void => {
    const b = uint(1);
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) return;
    if (b <= 0x8f) return container(b & 0x0f, true, depth);
    if (b <= 0x9f) return container(b & 0x0f, false, depth);
    if (b <= 0xbf) return void text(b & 0x1f);
    switch (b) {
      case 0xc4: return void need(uint(1));
      case 0xc5: return void need(uint(2));
      case 0xc6: return void need(uint(4));
      case 0xcc: case 0xd0: return void need(1);
      case 0xcd: case 0xd1: return void need(2);
      case 0xce: case 0xd2: return void need(4);
      case 0xcf: case 0xd3: return void need(8);
      case 0xd9: return void text(uint(1));
      case 0xda: return void text(uint(2));
      case 0xdb: return void text(uint(4));
      case 0xdc: return container(uint(2), false, depth);
      case 0xdd: return container(uint(4), false, depth);
      case 0xde: return container(uint(2), true, depth);
      case 0xdf: return container(uint(4), true, depth);
      // 0xc1 (never used), floats, and every ext format
      default: throw new Refused('bad_frame');
    }
  };
  try {
    if (bytes.length === 0) throw new Refused('bad_frame');
    value(0);
    if (pos !== bytes.length) throw new Refused('bad_frame');
    return 'ok';
  } catch (e) {
    if (e instanceof Refused) return e.code;
    throw e;
  }
}

function scanner(bytes: Uint8Array, maxDepth: number): Verdict {
  try {
    checkMsgpackSubset(bytes, maxDepth);
    return 'ok';
  } catch (e) {
    if (e instanceof ProtocolError && (e.code === 'bad_frame' || e.code === 'too_deep')) return e.code as Verdict;
    throw e;
  }
}

test('the scanner and the recursive reference agree on thousands of valid and damaged frames', (t) => {
  const next = xorshift(0x5eed_0002);
  const tally = { ok: 0, bad_frame: 0, too_deep: 0 };
  const check = (bytes: Uint8Array, maxDepth: number, what: string): void => {
    const want = reference(bytes, maxDepth);
    const got = scanner(bytes, maxDepth);
    tally[want]++;
    if (got !== want) t.fail(`${what}: scanner ${got}, reference ${want} for ${Buffer.from(bytes).toString('hex')} (maxDepth ${maxDepth})`);
  };
  for (let i = 0; i < 3000; i++) {
    const frame = encodeMsgpack(randomValue(next, 1 + (next() % 5)));
    const maxDepth = 1 + (next() % 6);
    check(frame, maxDepth, 'as encoded');
    const cut = frame.subarray(0, next() % frame.length);
    check(cut, maxDepth, 'cut short');
    const changed = Uint8Array.from(frame);
    changed[next() % changed.length] = next() & 0xff;
    check(changed, maxDepth, 'a byte changed');
    const at = next() % (frame.length + 1);
    const added = new Uint8Array(frame.length + 1);
    added.set(frame.subarray(0, at));
    added[at] = next() & 0xff;
    added.set(frame.subarray(at), at + 1);
    check(added, maxDepth, 'a byte added');
  }
  // Every verdict occurred often enough for the agreement to mean something.
  t.true(tally.ok > 1000 && tally.bad_frame > 1000 && tally.too_deep > 200, JSON.stringify(tally));
});

test('hand-made frames the random ones rarely reach: duplicate and __proto__ keys, large maps, 32-bit headers', (t) => {
  const hex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h.replace(/\s+/g, ''), 'hex'));
  const key = (i: number): string => `a2 ${(0x41 + (i >> 4)).toString(16)} ${(0x41 + (i & 15)).toString(16)} c0`;
  const bigMap = (n: number, extra = ''): string =>
    `de ${(n + (extra ? 1 : 0)).toString(16).padStart(4, '0')} ${Array.from({ length: n }, (_, i) => key(i)).join(' ')} ${extra}`;
  for (const frame of [
    '82 a1 61 01 a1 61 02', '81 a9 5f5f70726f746f5f5f 01', '81 d9 01 61 01', '81 da 0001 61 01', '81 db 00000001 61 01',
    '82 d9 01 61 01 a1 61 02', 'dd 00000001 c0', 'df 00000001 a1 61 c0', 'db 00000002 c3 a9', 'c6 00000001 ff',
    bigMap(70), bigMap(70, key(3)), bigMap(70, key(69)), bigMap(64, key(0)), `92 ${bigMap(70)} ${bigMap(70)}`,
    `82 a1 61 ${bigMap(66)} a1 62 ${bigMap(66, key(65))}`, '93 81 a1 61 81 a1 61 c0 81 a1 61 c0 c0',
  ]) {
    const bytes = hex(frame);
    t.is(scanner(bytes, 64), reference(bytes, 64), frame);
    t.is(scanner(bytes, 1), reference(bytes, 1), `${frame} (maxDepth 1)`);
  }
});
