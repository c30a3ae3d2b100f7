/**
 * A connection seen as a stream of msgpack values: frames in (read, decoded, vetted), frames
 * out (packed, length-prefixed, size-checked). Shared by both session kinds.
 */
import { decodeMsgpack, encodeMsgpackAfter } from './codec.js';
import { ProtocolError } from './errors.js';
import { FRAME_HEADER_BYTES, FrameReader, checkMaxFrame, frameInPlace } from './framing.js';
import { DEFAULT_MAX_DEPTH, DEFAULT_MAX_FRAME } from './limits.js';
import type { Connection } from './transports/connection.js';

export interface ChannelOptions {
  /** Largest frame body accepted and sent (default 1 MiB). */
  maxFrame?: number;
  /** Deepest nesting accepted (default 64). */
  maxDepth?: number;
  /**
   * A frame begun must be complete within this many ms, or the channel reports a fatal
   * `deadline` error (a slow-loris peer holds its partial frame's memory no longer). Default:
   * no deadline (clients); servers set one.
   */
  frameDeadlineMs?: number;
}

export interface ChannelHandlers {
  /** A decoded value (not yet validated against any message schema), and its frame body's size. */
  message(value: unknown, bytes: number): void;
  /** A frame that could not be decoded. After a fatal one the channel reads nothing more. */
  badFrame(error: ProtocolError, fatal: boolean): void;
}

export class Channel {
  readonly maxFrame: number;
  private readonly maxDepth: number;
  private readonly reader: FrameReader;
  private readonly frameDeadlineMs: number | undefined;
  /** Runs out when the frame being read has taken too long. */
  private frameTimer: ReturnType<typeof setTimeout> | undefined;
  private paused = false;
  private readonly handlers: ChannelHandlers;

  constructor(readonly connection: Connection, handlers: ChannelHandlers, options: ChannelOptions = {}) {
    this.maxFrame = checkMaxFrame(options.maxFrame ?? DEFAULT_MAX_FRAME);
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    if (!Number.isInteger(this.maxDepth) || this.maxDepth < 1) throw new RangeError(`maxDepth must be a positive integer, got ${this.maxDepth}`);
    this.handlers = handlers;
    this.frameDeadlineMs = options.frameDeadlineMs;
    if (this.frameDeadlineMs !== undefined && !(this.frameDeadlineMs > 0)) throw new RangeError(`frameDeadlineMs must be positive, got ${this.frameDeadlineMs}`);
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
          handlers.message(value, body.length);
        },
        error: (e, fatal) => handlers.badFrame(e, fatal),
      },
      this.maxFrame,
    );
    connection.onData((chunk) => {
      const before = this.reader.framesRead;
      this.reader.push(chunk);
      this.watchFrame(before !== this.reader.framesRead);
    });
    connection.onClose(() => this.stopFrameTimer());
  }

  /**
   * The frame deadline: it starts when a frame's first byte arrives and ends with the frame; a
   * new partial frame after complete ones starts it again. Paused (our own backpressure), no
   * frame is being waited for.
   */
  private watchFrame(framesCompleted: boolean): void {
    if (this.frameDeadlineMs === undefined) return;
    if (this.paused || !this.reader.midFrame || this.reader.stopped || this.connection.closed) {
      this.stopFrameTimer();
      return;
    }
    if (this.frameTimer !== undefined && !framesCompleted) return;
    this.stopFrameTimer();
    const ms = this.frameDeadlineMs;
    this.frameTimer = setTimeout(() => {
      this.frameTimer = undefined;
      this.handlers.badFrame(new ProtocolError('deadline', `a frame was begun ${ms} ms ago and is not complete; this endpoint waits ${ms} ms for the rest of a frame`), true);
    }, ms);
    this.frameTimer.unref?.();
  }

  private stopFrameTimer(): void {
    if (this.frameTimer === undefined) return;
    clearTimeout(this.frameTimer);
    this.frameTimer = undefined;
  }

  /** Stops handing out received messages (and reading the connection) until resume(). */
  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.stopFrameTimer();
    this.reader.pause();
    this.connection.pauseReading?.();
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.connection.resumeReading?.();
    const before = this.reader.framesRead;
    this.reader.resume();
    this.watchFrame(before !== this.reader.framesRead);
  }

  /** Packs and sends one wire value; throws `limit` (sending nothing) if it exceeds maxFrame. */
  send(value: unknown): void {
    this.connection.write(frameInPlace(encodeMsgpackAfter(FRAME_HEADER_BYTES, value), this.maxFrame));
  }
}
