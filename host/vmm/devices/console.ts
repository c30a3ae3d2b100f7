/**
 * What a VM's serial port transmits, made into `console` events one line at a time — a line
 * per vCPU, so that vCPUs printing at once still give whole lines, each naming its writer — and
 * handed byte by byte to whoever streams the console (`pinbox run`'s stdout or --console file).
 * A line ends at LF; a CR before it is dropped (a guest writing "\r\n" to a terminal).
 */
import type { EventLog } from '../events/index.js';

/**
 * A line longer than this is sent as an event of its own before its end arrives: an event's
 * string field carries at most 1024 bytes (PROTOCOL.md §6.2, protocol/schema/scalars.ts), and a
 * longer one would make every page of the event ring that holds it unreadable.
 */
export const MAX_CONSOLE_LINE = 1024;
/** Raw bytes per event when a line is not UTF-8: each bad byte becomes U+FFFD, three bytes. */
const MAX_RAW_IF_EXPANDED = Math.floor(MAX_CONSOLE_LINE / 3);
const LF = 0x0a;
const CR = 0x0d;

export type ConsoleListener = (vcpu: number, byte: number) => void;

const utf8 = new TextDecoder('utf-8');

/** Guest bytes as text: UTF-8, with U+FFFD for what is not (a guest's bytes are not trusted). */
export function consoleText(bytes: readonly number[]): string {
  return utf8.decode(Uint8Array.from(bytes));
}

export class Console {
  private readonly lines = new Map<number, { bytes: number[]; rip: bigint }>();
  private readonly listeners: ConsoleListener[] = [];

  constructor(private readonly log: EventLog, private readonly vm: string) {}

  /** Streams every byte as it is transmitted; returns the unsubscribe. */
  listen(listener: ConsoleListener): () => void {
    this.listeners.push(listener);
    return () => {
      const i = this.listeners.indexOf(listener);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** One byte vCPU `vcpu` transmitted, its OUT at `rip`. */
  byte(vcpu: number, byte: number, rip: bigint): void {
    for (const l of this.listeners) l(vcpu, byte);
    let line = this.lines.get(vcpu);
    if (line === undefined) {
      line = { bytes: [], rip };
      this.lines.set(vcpu, line);
    }
    if (line.bytes.length === 0) line.rip = rip;
    if (byte === LF) {
      if (line.bytes[line.bytes.length - 1] === CR) line.bytes.pop();
      this.emit(vcpu, line.bytes, line.rip);
      line.bytes = [];
      return;
    }
    line.bytes.push(byte);
    if (line.bytes.length >= MAX_CONSOLE_LINE) {
      this.emit(vcpu, line.bytes, line.rip);
      line.bytes = [];
    }
  }

  /** Sends what is left of each vCPU's line (a program that ended without a newline). */
  flush(): void {
    for (const [vcpu, line] of this.lines) {
      if (line.bytes.length > 0) this.emit(vcpu, line.bytes, line.rip);
      line.bytes = [];
    }
  }

  private emit(vcpu: number, bytes: readonly number[], rip: bigint): void {
    if (!this.log.wants('console', this.vm)) return;
    const text = consoleText(bytes);
    if (Buffer.byteLength(text) <= MAX_CONSOLE_LINE) {
      this.log.emit('console', this.vm, { text }, vcpu, rip);
      return;
    }
    for (let i = 0; i < bytes.length; i += MAX_RAW_IF_EXPANDED) {
      this.log.emit('console', this.vm, { text: consoleText(bytes.slice(i, i + MAX_RAW_IF_EXPANDED)) }, vcpu, rip);
    }
  }
}
