/**
 * Writes events to a JSON Lines trace file (one line per event: protocol/events/json.ts), buffered in memory and written
 * with writeSync — by `flush()`, and whenever the buffer passes `bufferBytes`.
 *
 * The guarantee the VMM builds on: "nothing the guest has seen answered is missing after a
 * crash". The VMM calls `log.flush()` (which flushes every attached TraceWriter) right before
 * it sends a guest its answer; flush() returns only once the kernel holds the bytes, so they
 * survive the process being killed at any later point. With `durable: true`, flush() also
 * calls fdatasync, so they survive the machine going down too (at a cost per answer).
 *
 * A failed write (disk full, ...) keeps the unwritten lines and throws TraceWriteError; the
 * next flush() tries them again.
 */
import { closeSync, fdatasyncSync, openSync, writeSync } from 'node:fs';
import type { Event } from '../../../protocol/events/event.js';
import { encodeEventLine } from '../../../protocol/events/json.js';
import type { EventSink } from './event-log.js';

export interface TraceWriterOptions {
  /** Append to an existing file instead of replacing it. Default false. */
  readonly append?: boolean;
  /** Write out once this many bytes (roughly: UTF-16 units) are buffered. Default 64 KiB. */
  readonly bufferBytes?: number;
  /** fdatasync after every flush. Default false. */
  readonly durable?: boolean;
}

export class TraceWriteError extends Error {
  override readonly name = 'TraceWriteError';
  constructor(readonly path: string, cause: unknown) {
    super(`cannot write trace ${path}: ${(cause as Error).message ?? String(cause)}`, { cause });
  }
}

export class TraceWriter implements EventSink {
  private fd: number | undefined;
  private pending: string[] = [];
  private pendingLength = 0;
  private readonly bufferBytes: number;
  private readonly durable: boolean;

  private constructor(readonly path: string, fd: number, options: TraceWriterOptions) {
    this.fd = fd;
    this.bufferBytes = options.bufferBytes ?? 64 * 1024;
    this.durable = options.durable ?? false;
  }

  /** Opens (creates, or truncates unless `append`) the trace file. */
  static open(path: string, options: TraceWriterOptions = {}): TraceWriter {
    let fd: number;
    try {
      fd = openSync(path, options.append ? 'a' : 'w');
    } catch (e) {
      throw new TraceWriteError(path, e);
    }
    return new TraceWriter(path, fd, options);
  }

  /** Events buffered and not yet written. */
  get pendingEvents(): number {
    return this.pending.length;
  }

  write(event: Event): void {
    if (this.fd === undefined) throw new TraceWriteError(this.path, new Error('the trace is closed'));
    const line = encodeEventLine(event);
    this.pending.push(line);
    this.pendingLength += line.length;
    if (this.pendingLength >= this.bufferBytes) this.flush();
  }

  flush(): void {
    if (this.pending.length === 0 || this.fd === undefined) return;
    const bytes = Buffer.from(this.pending.join(''), 'utf8');
    let written = 0;
    try {
      while (written < bytes.length) written += writeSync(this.fd, bytes, written);
      if (this.durable) fdatasyncSync(this.fd);
    } catch (e) {
      // Keep exactly what did not reach the file, so a retry neither loses nor repeats lines.
      const rest = bytes.subarray(written).toString('utf8');
      this.pending = rest === '' ? [] : [rest];
      this.pendingLength = rest.length;
      throw new TraceWriteError(this.path, e);
    }
    this.pending = [];
    this.pendingLength = 0;
  }

  /** Flushes and closes; later writes throw. */
  close(): void {
    if (this.fd === undefined) return;
    this.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }
}
