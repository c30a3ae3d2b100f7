/**
 * A connection over a Node readable/writable pair: a socket (both are the socket), a child
 * process (its stdout and stdin) or this process's own stdin/stdout.
 */
import type { Readable, Writable } from 'node:stream';
import { BaseConnection } from './connection.js';

/** How long close() waits for queued bytes to drain before it tears the stream down. */
const CLOSE_GRACE_MS = 2000;

export class StreamConnection extends BaseConnection {
  private failure: Error | undefined;
  /** One duplex stream (a socket) rather than two pipes. */
  private readonly duplex: boolean;

  constructor(private readonly input: Readable, private readonly output: Writable, readonly peer: string) {
    super();
    this.duplex = (output as unknown) === input;
    input.on('data', (chunk: Uint8Array) => this.deliver(chunk));
    input.on('end', () => this.gone());
    input.on('close', () => this.gone());
    input.on('error', (e: Error) => this.gone(e));
    if (!this.duplex) {
      output.on('error', (e: Error) => this.gone(e));
      output.on('close', () => this.gone());
    }
    output.on('drain', () => this.drained());
  }

  override get unsentBytes(): number {
    return this.output.writableLength;
  }

  override pauseReading(): void {
    super.pauseReading();
    this.input.pause();
  }

  override resumeReading(): void {
    if (!this.closed) this.input.resume();
    super.resumeReading();
  }

  write(chunk: Uint8Array): void {
    if (this.closed || this.output.writableEnded || this.output.destroyed) return;
    this.output.write(chunk);
  }

  close(): void {
    if (!this.beginClose()) return;
    // Let queued frames (an error response, say) reach the peer, then tear down; a peer that
    // stops reading must not keep us waiting forever.
    const teardown = (): void => {
      clearTimeout(timer);
      this.input.destroy();
      this.output.destroy();
      this.gone();
    };
    const timer = setTimeout(teardown, CLOSE_GRACE_MS);
    timer.unref();
    try {
      this.output.end(teardown);
    } catch {
      teardown();
    }
  }

  private gone(error?: Error): void {
    if (error && !this.failure) this.failure = error;
    if (this.beginClose()) {
      this.input.destroy();
      if (!this.duplex) this.output.end();
    }
    this.finished(this.failure);
  }
}
