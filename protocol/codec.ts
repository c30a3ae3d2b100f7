/**
 * msgpack encoding and decoding (PROTOCOL.md §2). msgpackr is configured as plain standard
 * msgpack that a C or Rust peer can speak: no records, no bundled strings, no extra types,
 * and `structuredClone` off — the structured-clone reference extensions are where
 * CVE-2023-52079 (GHSA-7hpj-7hhx-2fgx, unbounded recursion through ext 0x70) lived, and msgpackr
 * refuses them only when the option is explicitly false. 64-bit integers decode as bigint.
 *
 * Received bytes are untrusted: checkMsgpackSubset() vets the structure first (depth, ext
 * types, keys, UTF-8, trailing bytes), then msgpackr unpacks inside a try/catch. Binary values
 * are copied out of the frame, so nothing decoded keeps a frame's buffer alive or sees it reused.
 */
import { Packr, RESERVE_START_SPACE, Unpackr, type Options } from 'msgpackr';
import { ProtocolError } from './errors.js';
import { DEFAULT_MAX_DEPTH } from './limits.js';
import { checkMsgpackSubset } from './msgpack-subset.js';

const MSGPACK_OPTIONS: Options = {
  useRecords: false,
  structuredClone: false,
  moreTypes: false,
  bundleStrings: false,
  // Shortest map header (fixmap/map16/map32), as the msgpack spec prefers and the vectors fix.
  variableMapSize: true,
  useFloat32: 0,
  encodeUndefinedAsNil: false,
};

const packr = new Packr(MSGPACK_OPTIONS);
const unpackr = new Unpackr({ ...MSGPACK_OPTIONS, mapsAsObjects: true, int64AsType: 'bigint', copyBuffers: true });

/** Packs a wire value (as produced by a schema's `wire()`). */
export function encodeMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/**
 * Packs a wire value after `room` (1..255) bytes left for the caller (a frame's length), so
 * that the frame needs no copy of its body. msgpackr hands out each packed message as its own
 * stretch of its buffer and never writes there again, so the bytes may wait in a socket's queue.
 */
export function encodeMsgpackAfter(room: number, value: unknown): Uint8Array {
  return packr.pack(value, RESERVE_START_SPACE | room);
}

/** Unpacks one untrusted frame body; throws `bad_frame` or `too_deep`, never anything else. */
export function decodeMsgpack(body: Uint8Array, maxDepth: number = DEFAULT_MAX_DEPTH): unknown {
  checkMsgpackSubset(body, maxDepth);
  try {
    return unpackr.unpack(body);
  } catch (e) {
    throw new ProtocolError('bad_frame', `undecodable msgpack: ${e instanceof Error ? e.message : String(e)}`);
  }
}
