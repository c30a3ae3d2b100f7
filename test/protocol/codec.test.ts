/**
 * The msgpack subset of PROTOCOL.md §2 on hostile input. Bytes are written by hand from the
 * msgpack spec; every case must end in a ProtocolError with the right code, never another
 * exception.
 */
import test from 'ava';
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.js';
import { ProtocolError } from '../../protocol/errors.js';

const bytes = (hex: string): Uint8Array => Uint8Array.from(Buffer.from(hex.replace(/\s+/g, ''), 'hex'));

function refused(t: import('ava').ExecutionContext, body: Uint8Array, code: string, message?: RegExp): void {
  const e = t.throws(() => decodeMsgpack(body), { instanceOf: ProtocolError });
  t.is(e.code, code, e.message);
  if (message) t.regex(e.message, message);
}

test('100k nested arrays and maps are a clean too_deep, and the process goes on', (t) => {
  const arrays = new Uint8Array(100_001).fill(0x91);
  arrays[100_000] = 0xc0;
  refused(t, arrays, 'too_deep', /deeper than 64 levels/);
  // {"a": {"a": … }} 100k deep
  const maps = new Uint8Array(100_000 * 3 + 1);
  for (let i = 0; i < 100_000; i++) maps.set([0x81, 0xa1, 0x61], i * 3);
  maps[maps.length - 1] = 0xc0;
  refused(t, maps, 'too_deep');
  // A declared but absent deep structure (dd = array32 of 2^32-1 items, repeated) fails fast too.
  refused(t, new Uint8Array(5 * 200).fill(0xdd), 'too_deep');
  t.deepEqual(decodeMsgpack(bytes('81 a1 61 01')), { a: 1 });
});

test('nesting up to the limit is fine; one more level is not', (t) => {
  const nested = (levels: number): Uint8Array => {
    const b = new Uint8Array(levels + 1).fill(0x91);
    b[levels] = 0x01;
    return b;
  };
  let expected: unknown = 1;
  for (let i = 0; i < 64; i++) expected = [expected];
  t.deepEqual(decodeMsgpack(nested(64)), expected);
  refused(t, nested(65), 'too_deep');
  t.notThrows(() => decodeMsgpack(nested(65), 65));
  // An empty container counts at its level (PROTOCOL.md §2): the 65th level may not be an empty
  // array or map either, and the 64th may.
  const withEmpty = (levels: number, empty: number): Uint8Array => {
    const b = new Uint8Array(levels).fill(0x91);
    b[levels - 1] = empty;
    return b;
  };
  refused(t, withEmpty(65, 0x90), 'too_deep', /deeper than 64 levels \(at offset 64\)/);
  refused(t, withEmpty(65, 0x80), 'too_deep');
  t.notThrows(() => decodeMsgpack(withEmpty(64, 0x90)));
  t.notThrows(() => decodeMsgpack(withEmpty(64, 0x80)));
});

test('every ext format is refused, timestamps and structured-clone references included', (t) => {
  for (const hex of [
    'd4 01 00', 'd5 01 0000', 'd6 ff 00000000', 'd7 ff 0000000000000000', 'd8 01 ' + '00'.repeat(16),
    'c7 01 01 00', 'c8 0001 01 00', 'c9 00000001 01 00',
    'd4 00 00', // msgpackr's "undefined"
    'c7 01 70 00', 'd6 69 00000000', // structured-clone pointer/ref ext types (0x70, 0x69)
    'd4 72 00', // msgpackr records
    '81 a1 61 d6 ff 00000000', // nested inside a map
  ]) {
    refused(t, bytes(hex), 'bad_frame', /ext value/);
  }
});

test('reserved 0xc1 and floats are refused', (t) => {
  refused(t, bytes('c1'), 'bad_frame', /reserved byte 0xc1 at offset 0/);
  refused(t, bytes('92 01 c1'), 'bad_frame', /offset 2/);
  refused(t, bytes('ca 3f800000'), 'bad_frame', /float/);
  refused(t, bytes('cb 3ff8000000000000'), 'bad_frame', /float/);
});

test('truncated values are refused wherever they stop', (t) => {
  for (const hex of [
    '', 'cd 01', 'ce 000000', 'cf 00000000000000', 'd3 ff', 'a5 6869', 'd9', 'd9 05 6869', 'da 00',
    'db 00000005 68', 'c4 02 01', 'c5 0001', 'c6 00000010 00', '92 01', '82 a1 61 01 a1 62', 'dc 0002 01',
    'dd 00000003 01 02', 'de 0001 a1 61', '81', '81 a1',
  ]) {
    refused(t, bytes(hex), 'bad_frame');
  }
  refused(t, bytes('92 01'), 'bad_frame', /truncated/);
});

test('trailing bytes after the value are refused', (t) => {
  refused(t, bytes('01 02'), 'bad_frame', /1 trailing bytes/);
  refused(t, bytes('81 a1 61 01 c0 c0 c0'), 'bad_frame', /3 trailing bytes .* offset 4/);
});

test('map keys are strings, unique, and never __proto__', (t) => {
  refused(t, bytes('81 01 02'), 'bad_frame', /not a string/);
  refused(t, bytes('81 c4 01 61 02'), 'bad_frame', /not a string/);
  refused(t, bytes('81 90 02'), 'bad_frame', /not a string/);
  refused(t, bytes('82 a1 61 01 a1 61 02'), 'bad_frame', /"a" at offset 4 appears twice/);
  refused(t, bytes('81 a9 5f5f70726f746f5f5f 01'), 'bad_frame', /__proto__/);
  // Duplicates are found among many keys, both below and above the size where a set takes over
  // from hashed pairs (64 keys).
  const key = (i: number): string => `a3 6b ${(0x41 + (i >> 4)).toString(16)} ${(0x41 + (i & 15)).toString(16)} 00`;
  const keys = (n: number): string => Array.from({ length: n }, (_, i) => key(i)).join(' ');
  const map16 = (n: number): string => `de ${n.toString(16).padStart(4, '0')}`;
  refused(t, bytes(`${map16(41)} ${keys(40)} ${key(3)}`), 'bad_frame', /"kAD" .* appears twice/);
  refused(t, bytes(`${map16(101)} ${keys(100)} ${key(70)}`), 'bad_frame', /"kEG" .* appears twice/);
  refused(t, bytes(`${map16(101)} ${keys(100)} ${key(5)}`), 'bad_frame', /"kAF" .* appears twice/);
  t.is(Object.keys(decodeMsgpack(bytes(`${map16(100)} ${keys(100)}`)) as object).length, 100);
  // Keys of a nested map do not clash with the keys of the map around it, before or after.
  t.deepEqual(decodeMsgpack(bytes('83 a1 61 01 a1 62 82 a1 61 02 a1 63 03 a1 63 04')), { a: 1, b: { a: 2, c: 3 }, c: 4 });
  refused(t, bytes('83 a1 61 01 a1 62 81 a1 61 02 a1 62 03'), 'bad_frame', /"b" .* appears twice/);
  // The same key in different maps is fine.
  t.deepEqual(decodeMsgpack(bytes('82 a1 61 81 a1 61 01 a1 62 81 a1 61 02')), { a: { a: 1 }, b: { a: 2 } });
  t.false(Object.hasOwn(Object.prototype, 'polluted'));
});

test('strings must be valid UTF-8', (t) => {
  refused(t, bytes('a2 ff fe'), 'bad_frame', /UTF-8/);
  refused(t, bytes('a3 e2 82'), 'bad_frame'); // truncated body
  refused(t, bytes('a2 c0 80'), 'bad_frame', /UTF-8/); // overlong NUL
  refused(t, bytes('a3 ed a0 80'), 'bad_frame', /UTF-8/); // a surrogate
  t.is(decodeMsgpack(bytes('a3 e2 82 ac')), '€');
});

test('integers decode to numbers in the 8/16/32-bit formats and bigints in the 64-bit ones', (t) => {
  t.is(decodeMsgpack(bytes('7f')), 127);
  t.is(decodeMsgpack(bytes('40')), 64); // not a msgpackr record id: records are off
  t.is(decodeMsgpack(bytes('ce ffffffff')), 0xffffffff);
  t.is(decodeMsgpack(bytes('d2 80000000')), -0x80000000);
  t.is(decodeMsgpack(bytes('cf 0000000000000005')), 5n);
  t.is(decodeMsgpack(bytes('cf ffffffffffffffff')), (1n << 64n) - 1n);
  t.is(decodeMsgpack(bytes('d3 ffffffffffffffea')), -22n);
});

test('binaries decode to Uint8Array and survive encoding', (t) => {
  const value = decodeMsgpack(bytes('c4 03 010203'));
  t.true(value instanceof Uint8Array);
  t.deepEqual(Array.from(value as Uint8Array), [1, 2, 3]);
  t.is(Buffer.from(encodeMsgpack(Uint8Array.from([1, 2, 3]))).toString('hex'), 'c403010203');
});
