/**
 * Framing (PROTOCOL.md §1): a frame is a 4-byte big-endian length N (1 ≤ N ≤ the receiver's
 * maximum) followed by N bytes holding exactly one msgpack value.
 */
import { ProtocolError } from './errors.js';
import { DEFAULT_MAX_FRAME, MAX_CONFIGURABLE_FRAME, MIN_MAX_FRAME } from './limits.js';

export const FRAME_HEADER_BYTES = 4;
const EMPTY = new Uint8Array(0);

/** Checks a configured frame maximum; a typo must not silently disable the limit. */
export function checkMaxFrame(maxFrame: number): number {
  if (!Number.isInteger(maxFrame) || maxFrame < MIN_MAX_FRAME || maxFrame > MAX_CONFIGURABLE_FRAME) {
    throw new RangeError(`maxFrame must be an integer ${MIN_MAX_FRAME}..${MAX_CONFIGURABLE_FRAME}, got ${maxFrame}`);
  }
  return maxFrame;
}

function tooLarge(length: number, maxFrame: number): ProtocolError {
  return new ProtocolError('limit', `a ${length}-byte message exceeds the frame maximum of ${maxFrame} bytes`);
}

/** Prefixes a packed body with its length; refuses a body the peer could not accept either. */
export function frameBody(body: Uint8Array, maxFrame: number = DEFAULT_MAX_FRAME): Uint8Array {
  if (body.length > maxFrame) throw tooLarge(body.length, maxFrame);
  const frame = Buffer.allocUnsafe(FRAME_HEADER_BYTES + body.length);
  frame.writeUInt32BE(body.length, 0);
  frame.set(body, FRAME_HEADER_BYTES);
  return frame;
}

/**
 * Writes the length of the body that follows the first FRAME_HEADER_BYTES bytes of `frame`
 * into them (encodeMsgpackAfter left them free); refuses a body the peer could not accept.
 */
export function frameInPlace(frame: Uint8Array, maxFrame: number = DEFAULT_MAX_FRAME): Uint8Array {
  const length = frame.length - FRAME_HEADER_BYTES;
  if (length > maxFrame) throw tooLarge(length, maxFrame);
  frame[0] = length >>> 24;
  frame[1] = (length >>> 16) & 0xff;
  frame[2] = (length >>> 8) & 0xff;
  frame[3] = length & 0xff;
  return frame;
}

export interface FrameSink {
  /** One complete body. It may be a view into a received chunk: copy what must outlive the call. */
  frame(body: Uint8Array): void;
  /**
   * A framing error. `fatal` means the stream cannot be resynchronised (an oversized length):
   * the reader discards everything after it and the owner should answer and close.
   */
  error(error: ProtocolError, fatal: boolean): void;
}

/**
 * Incremental frame reader. Chunks are queued as they come; a frame that lies within one chunk
 * is handed out as a view (no copy), one that spans chunks is copied once into its own buffer,
 * so every byte is copied at most once however the stream is split. An announced length over
 * the maximum is reported before a single body byte is buffered, and the reader then drops all
 * further input.
 */
export class FrameReader {
  /** Pending chunks from index `head` on (a head index, not shift(), keeps dequeuing O(1)). */
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Read position in chunks[head]. */
  private offset = 0;
  private buffered = 0;
  /** Body length of the frame being read, or -1 while reading a header. */
  private need = -1;
  private failed = false;
  private paused = false;
  /** Complete frames handed to the sink so far. */
  framesRead = 0;
  readonly maxFrame: number;

  constructor(private readonly sink: FrameSink, maxFrame: number = DEFAULT_MAX_FRAME) {
    this.maxFrame = checkMaxFrame(maxFrame);
  }

  /** Bytes held while waiting for the rest of a frame. */
  get bufferedBytes(): number {
    return this.buffered;
  }

  /** True once a fatal error was reported; all input is discarded from then on. */
  get stopped(): boolean {
    return this.failed;
  }

  /** Part of a frame has arrived and the rest has not (or whole frames wait while paused). */
  get midFrame(): boolean {
    return this.buffered > 0 || this.need >= 0;
  }

  /** Stops handing out frames (input is still queued) until resume(): the owner's backpressure. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.parse();
  }

  push(chunk: Uint8Array): void {
    if (this.failed || chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    if (!this.paused) this.parse();
  }

  private parse(): void {
    while (!this.failed && !this.paused) {
      if (this.need < 0) {
        if (this.buffered < FRAME_HEADER_BYTES) return;
        const length = this.readHeader();
        if (length === 0) {
          this.sink.error(new ProtocolError('bad_frame', 'a zero-length frame (a frame holds exactly one msgpack value)'), false);
          continue;
        }
        if (length > this.maxFrame) {
          this.failed = true;
          this.chunks = [];
          this.head = 0;
          this.buffered = 0;
          this.sink.error(new ProtocolError(
            'frame_too_large',
            `the frame announces ${length} bytes, more than this endpoint's maximum of ${this.maxFrame} bytes`,
          ), true);
          return;
        }
        this.need = length;
      }
      if (this.buffered < this.need) return;
      const body = this.take(this.need);
      this.need = -1;
      this.framesRead++;
      this.sink.frame(body);
    }
  }

  private readHeader(): number {
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= FRAME_HEADER_BYTES) {
      const o = this.offset;
      const n = ((first[o]! << 24) | (first[o + 1]! << 16) | (first[o + 2]! << 8) | first[o + 3]!) >>> 0;
      this.advance(FRAME_HEADER_BYTES);
      return n;
    }
    const h = this.take(FRAME_HEADER_BYTES);
    return ((h[0]! << 24) | (h[1]! << 16) | (h[2]! << 8) | h[3]!) >>> 0;
  }

  /** Removes n bytes (n ≤ buffered) from the front of the queue. */
  private take(n: number): Uint8Array {
    const first = this.chunks[this.head]!;
    if (first.length - this.offset >= n) {
      const out = first.subarray(this.offset, this.offset + n);
      this.advance(n);
      return out;
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[this.head]!;
      const count = Math.min(c.length - this.offset, n - filled);
      out.set(c.subarray(this.offset, this.offset + count), filled);
      filled += count;
      this.advance(count);
    }
    return out;
  }

  private advance(n: number): void {
    this.buffered -= n;
    this.offset += n;
    if (this.offset === this.chunks[this.head]!.length) {
      this.chunks[this.head++] = EMPTY;
      this.offset = 0;
      if (this.head === this.chunks.length) {
        this.chunks.length = 0;
        this.head = 0;
      } else if (this.head >= 1024 && this.head * 2 >= this.chunks.length) {
        this.chunks = this.chunks.slice(this.head);
        this.head = 0;
      }
    }
  }
}
