/**
 * A connection seen as a stream of msgpack values: frames in (read, decoded, vetted), frames
 * out (packed, length-prefixed, size-checked). Shared by both session kinds.
 */
import { decodeMsgpack, encodeMsgpackAfter } from './codec.js';
import type { ProtocolError } from './errors.js';
import { FRAME_HEADER_BYTES, FrameReader, checkMaxFrame, frameInPlace } from './framing.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME } from './limits.js';
import type { Connection } from './transports/connection.js';

export interface ChannelOptions {
  /** Largest frame body accepted and sent (default 1 MiB). */
  maxFrame?: number;
  /** Deepest nesting accepted (default 64). */
  maxDepth?: number;
}

export interface ChannelHandlers {
  /** A decoded value (not yet validated against any message schema). */
  message(value: unknown): void;
  /** A frame that could not be decoded. After a fatal one the channel reads nothing more. */
  badFrame(error: ProtocolError, fatal: boolean): void;
}

export class Channel {
  readonly maxFrame: number;
  private readonly maxDepth: number;
  private readonly reader: FrameReader;

  constructor(readonly connection: Connection, handlers: ChannelHandlers, options: ChannelOptions = {}) {
    this.maxFrame = checkMaxFrame(options.maxFrame ?? DEFAULT_MAX_FRAME);
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 1) throw new RangeError(`maxDepth must be a positive integer, got ${this.maxDepth}`);
    this.reader = new FrameReader(
      {
        frame: (body) => {
          let value: unknown;
          try {
            value = decodeMsgpack(body, this.maxDepth);
          } catch (e) {
            handlers.badFrame(e as ProtocolError, false);
            return;
          }
          handlers.message(value);
        },
        error: (e, fatal) => handlers.badFrame(e, fatal),
      },
      this.maxFrame,
    );
    connection.onData((chunk) => this.reader.push(chunk));
  }

  /** Packs and sends one wire value; throws `limit` (sending nothing) if it exceeds maxFrame. */
  send(value: unknown): void {
    this.connection.write(frameInPlace(encodeMsgpackAfter(FRAME_HEADER_BYTES, value), this.maxFrame));
  }
}
