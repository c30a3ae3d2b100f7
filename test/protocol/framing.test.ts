/** Framing (PROTOCOL.md §1): length prefixes, reassembly at any split, oversized and empty frames. */
import test from 'ava';
import { ProtocolError } from '../../protocol/errors.js';
import { encodeMsgpack, encodeMsgpackAfter } from '../../protocol/codec.js';
import { FRAME_HEADER_BYTES, FrameReader, frameBody, frameInPlace } from '../../protocol/framing.js';

interface Collected {
  frames: string[];
  errors: { code: string; message: string; fatal: boolean }[];
  reader: FrameReader;
}

function collector(maxFrame?: number): Collected {
  const c: Collected = { frames: [], errors: [], reader: undefined as never };
  c.reader = new FrameReader({
    frame: (body) => c.frames.push(Buffer.from(body).toString('hex')),
    error: (e, fatal) => c.errors.push({ code: e.code, message: e.message, fatal }),
  }, maxFrame);
  return c;
}

const frame = (hexBody: string): Uint8Array => {
  const body = Buffer.from(hexBody, 'hex');
  const out = Buffer.alloc(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
};

// Three frames of different sizes, one of them longer than a typical header read.
const BODIES = ['01', '81a161cd0102', 'c4' + '40' + 'ab'.repeat(64)];
const STREAM = Buffer.concat(BODIES.map(frame));

test('frameBody prefixes the length, big-endian', (t) => {
  t.is(Buffer.from(frameBody(Uint8Array.from([0xc0]))).toString('hex'), '00000001c0');
  const body = new Uint8Array(0x10203);
  t.is(Buffer.from(frameBody(body).subarray(0, 4)).toString('hex'), '00010203');
});

test('frameBody refuses a body above the maximum with limit', (t) => {
  const e = t.throws(() => frameBody(new Uint8Array(17), 16), { instanceOf: ProtocolError });
  t.is(e.code, 'limit');
  t.regex(e.message, /17-byte .* maximum of 16 bytes/);
  t.notThrows(() => frameBody(new Uint8Array(16), 16));
});

test('a frame packed in place has the same bytes as one prefixed afterwards, and later packing leaves it alone', (t) => {
  const values = [{ id: 1, ok: true, result: { value: 0xd01 } }, 'x'.repeat(70_000), [1n << 63n, new Uint8Array(3)]];
  const frames = values.map((v) => frameInPlace(encodeMsgpackAfter(FRAME_HEADER_BYTES, v)));
  const hex = frames.map((f) => Buffer.from(f).toString('hex'));
  // Packing more (past the packer's first buffer) must not write over frames still waiting to be sent.
  for (let i = 0; i < 50; i++) encodeMsgpack({ filler: 'y'.repeat(i * 500) });
  t.deepEqual(frames.map((f) => Buffer.from(f).toString('hex')), hex);
  t.deepEqual(hex, values.map((v) => Buffer.from(frameBody(encodeMsgpack(v))).toString('hex')));
});

test('frameInPlace refuses a body above the maximum with limit', (t) => {
  const e = t.throws(() => frameInPlace(new Uint8Array(FRAME_HEADER_BYTES + 17), 16), { instanceOf: ProtocolError });
  t.is(e.code, 'limit');
  t.regex(e.message, /17-byte message exceeds the frame maximum of 16 bytes/);
  t.notThrows(() => frameInPlace(new Uint8Array(FRAME_HEADER_BYTES + 16), 16));
});

test('many frames in one chunk come out in order', (t) => {
  const c = collector();
  const many = Array.from({ length: 500 }, (_, i) => (i % 128).toString(16).padStart(2, '0'));
  c.reader.push(Buffer.concat(many.map(frame)));
  t.deepEqual(c.frames, many);
  t.is(c.reader.bufferedBytes, 0);
});

test('frames split at every byte boundary are reassembled', (t) => {
  for (let cut = 1; cut < STREAM.length; cut++) {
    const c = collector();
    c.reader.push(STREAM.subarray(0, cut));
    c.reader.push(STREAM.subarray(cut));
    t.deepEqual(c.frames, BODIES, `cut at ${cut}`);
    t.deepEqual(c.errors, []);
  }
});

test('frames split at every two byte boundaries are reassembled', (t) => {
  for (let a = 1; a < STREAM.length; a += 3) {
    for (let b = a + 1; b < STREAM.length; b++) {
      const c = collector();
      c.reader.push(STREAM.subarray(0, a));
      c.reader.push(STREAM.subarray(a, b));
      c.reader.push(STREAM.subarray(b));
      if (c.frames.join() !== BODIES.join()) return t.fail(`cuts at ${a} and ${b}: ${c.frames.join()}`);
    }
  }
  t.pass();
});

test('a stream fed one byte at a time is reassembled', (t) => {
  const c = collector();
  for (const byte of Buffer.concat([STREAM, STREAM])) c.reader.push(Uint8Array.of(byte));
  t.deepEqual(c.frames, [...BODIES, ...BODIES]);
  t.is(c.reader.bufferedBytes, 0);
});

test('a frame split across many chunks gets a buffer of its own (later chunks do not alias it)', (t) => {
  const bodies: Uint8Array[] = [];
  const reader = new FrameReader({ frame: (b) => bodies.push(b), error: () => t.fail() });
  const chunk = Buffer.from(frame('aabbccdd'));
  reader.push(chunk.subarray(0, 6));
  reader.push(chunk.subarray(6));
  chunk.fill(0);
  t.is(Buffer.from(bodies[0]!).toString('hex'), 'aabbccdd');
});

test('an announced length over the maximum is fatal, names both numbers and buffers nothing', (t) => {
  const c = collector();
  c.reader.push(frame('01'));
  c.reader.push(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3]));
  t.deepEqual(c.errors, [{
    code: 'frame_too_large',
    message: "the frame announces 4294967295 bytes, more than this endpoint's maximum of 1048576 bytes",
    fatal: true,
  }]);
  t.true(c.reader.stopped);
  // 64 MiB more of the announced body: nothing is kept, nothing more is reported.
  const garbage = new Uint8Array(1 << 20).fill(7);
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < 64; i++) c.reader.push(garbage);
  t.is(c.reader.bufferedBytes, 0);
  t.true(process.memoryUsage().arrayBuffers - before < 4 << 20);
  t.deepEqual(c.frames, ['01']);
  t.is(c.errors.length, 1);
});

test('the maximum is configurable and exact, but never below 8192 bytes', (t) => {
  const c = collector(8192);
  c.reader.push(frame('a0'.repeat(8192)));
  t.is(c.frames.length, 1);
  c.reader.push(Uint8Array.from([0, 0, 0x20, 0x01]));
  t.is(c.errors[0]?.code, 'frame_too_large');
  t.regex(c.errors[0]!.message, /8193 bytes, more than this endpoint's maximum of 8192 bytes/);
  t.throws(() => collector(8191), { instanceOf: RangeError });
  t.throws(() => collector(2 ** 32), { instanceOf: RangeError });
  t.throws(() => collector(8192.5), { instanceOf: RangeError });
});

test('a zero-length frame is a bad_frame and the stream goes on', (t) => {
  const c = collector();
  c.reader.push(Buffer.concat([frame('01'), Uint8Array.from([0, 0, 0, 0]), frame('02')]));
  t.deepEqual(c.frames, ['01', '02']);
  t.deepEqual(c.errors.map((e) => [e.code, e.fatal]), [['bad_frame', false]]);
});
