/**
 * Where `pinbox run` sends what the guest writes to its serial console: to stdout as it comes,
 * or to `--console FILE` byte for byte. On stdout it shares the page with the event lines, so an
 * event that arrives while the guest is mid-line starts on a line of its own.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { Output } from './output.js';

export class RunConsole {
  private readonly decoder = new TextDecoder('utf-8');
  private readonly fd: number | undefined;
  /** The last byte on stdout was console output that did not end its line. */
  private midLine = false;

  /** Opens `file` (truncated) when given; a failure to open throws (the caller reports it). */
  constructor(private readonly io: Output, file: string | undefined) {
    this.fd = file === undefined ? undefined : openSync(file, 'w');
  }

  byte(byte: number): void {
    if (this.fd !== undefined) {
      writeSync(this.fd, Uint8Array.of(byte));
      return;
    }
    const text = this.decoder.decode(Uint8Array.of(byte), { stream: true });
    if (text === '') return;
    this.io.out(text);
    this.midLine = !text.endsWith('\n');
  }

  /** Before a line of pinbox's own on stdout. */
  lineBreak(): void {
    if (!this.midLine) return;
    this.io.out('\n');
    this.midLine = false;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    else {
      const rest = this.decoder.decode();
      if (rest !== '') this.io.out(rest);
      this.lineBreak();
    }
  }
}
