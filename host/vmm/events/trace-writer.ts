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
 *
 * Size (issue 9, finding 4): with `maxBytes`, a file that an event would take past it is
 * rotated — written out, renamed PATH.1 (PATH.1 becomes PATH.2 and so on; the oldest beyond
 * `keep` is deleted) — and a new PATH begins with a `trace_rotated` line that records the cut:
 * where the events before it went, how large that file was, and which file was deleted. The disk
 * a trace takes is then at most (keep + 1) · maxBytes, plus one line.
 */
import { closeSync, fdatasyncSync, fstatSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
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
  /** Rotate the file before it passes this many bytes (default: no limit). */
  readonly maxBytes?: number;
  /** Rotated files kept (PATH.1 … PATH.keep; default 1; 0 keeps none). */
  readonly keep?: number;
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
  readonly maxBytes: number;
  readonly keep: number;
  /** Bytes in the current file, written and pending. */
  private fileBytes: number;
  /** Files rotated away so far. */
  rotations = 0;

  private constructor(readonly path: string, fd: number, options: TraceWriterOptions) {
    this.fd = fd;
    this.bufferBytes = options.bufferBytes ?? 64 * 1024;
    this.durable = options.durable ?? false;
    this.maxBytes = options.maxBytes ?? Infinity;
    this.keep = options.keep ?? 1;
    if (!(this.maxBytes >= 1024)) throw new RangeError(`a trace's maxBytes must be at least 1024, got ${this.maxBytes}`);
    if (!Number.isInteger(this.keep) || this.keep < 0 || this.keep > 1000) throw new RangeError(`a trace's keep must be a whole number 0..1000, got ${this.keep}`);
    this.fileBytes = fstatSync(fd).size;
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
    if (this.maxBytes !== Infinity) {
      const bytes = Buffer.byteLength(line, 'utf8');
      if (this.fileBytes > 0 && this.fileBytes + bytes > this.maxBytes) this.rotate(event);
      this.fileBytes += bytes;
    }
    this.pending.push(line);
    this.pendingLength += line.length;
    if (this.pendingLength >= this.bufferBytes) this.flush();
  }

  /**
   * Writes out the full file, moves it to PATH.1 (older ones one up, the oldest beyond `keep`
   * deleted) and starts PATH again with the line that records the cut; `next` is the event
   * that did not fit, whose seq and time the line takes.
   */
  private rotate(next: Event): void {
    this.flush();
    const previousBytes = this.fileBytes;
    closeSync(this.fd!);
    this.fd = undefined;
    let removed = '';
    try {
      if (this.keep === 0) {
        rmSync(this.path, { force: true });
        removed = this.path;
      } else {
        const oldest = `${this.path}.${this.keep}`;
        rmSync(oldest, { force: true });
        for (let k = this.keep - 1; k >= 1; k--) renameIfThere(`${this.path}.${k}`, `${this.path}.${k + 1}`);
        renameSync(this.path, `${this.path}.1`);
        if (this.rotations >= this.keep) removed = oldest;
      }
      this.fd = openSync(this.path, 'w');
    } catch (e) {
      throw new TraceWriteError(this.path, e);
    }
    this.rotations++;
    this.fileBytes = 0;
    const fields = { previous: this.keep === 0 ? '' : `${this.path}.1`, previous_bytes: BigInt(previousBytes), ...(removed !== '' && { removed }) };
    const line = encodeEventLine({ seq: next.seq, time: next.time, name: 'trace_rotated', vm: '-', fields });
    this.pending.push(line);
    this.pendingLength += line.length;
    this.fileBytes += Buffer.byteLength(line, 'utf8');
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

function renameIfThere(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
