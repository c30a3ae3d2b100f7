/**
 * How the commands print: to a pair of text sinks (the process's stdout/stderr, or a test's
 * buffers). Events are written one per line, as text or JSON, by the one rule of
 * docs/events.md (protocol/events); other JSON output follows it too: 64-bit register and MSR
 * values as "0x…" strings, so that no JSON reader rounds them, counts as JSON numbers.
 */
import { eventText, type Event } from '../../protocol/events/index.js';
import { hex } from '../../protocol/notation.js';

export interface Output {
  out(text: string): void;
  err(text: string): void;
  /** `out` is a terminal (reporters may then redraw a progress line). */
  readonly isTTY?: boolean;
}

const silenced = { stdout: false, stderr: false };

export const processOutput: Output = {
  out: (text) => void (silenced.stdout || process.stdout.write(text)),
  err: (text) => void (silenced.stderr || process.stderr.write(text)),
  isTTY: process.stdout.isTTY === true,
};

/** Drops what is written to a stream from now on: its reader has gone (broken-pipe.ts). */
export function silenceProcessOutput(stream: 'stdout' | 'stderr'): void {
  silenced[stream] = true;
}

/** A value for JSON output: bigints as "0x…" strings. */
export function jsonValue(v: unknown): unknown {
  if (typeof v === 'bigint') return hex(v);
  if (Array.isArray(v)) return v.map(jsonValue);
  if (v instanceof Uint8Array) return Buffer.from(v).toString('hex');
  if (typeof v === 'object' && v !== null) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, jsonValue(x)]));
  return v;
}

export function jsonLine(value: object): string {
  return JSON.stringify(jsonValue(value)) + '\n';
}

/** An event as its one line of text (docs/events.md), indented, newline included. */
export function eventLine(e: Event): string {
  return `  ${eventText(e)}\n`;
}

/** Nanoseconds as seconds with microseconds, as trace-cmd prints time: `12.000345`. */
export function seconds(ns: bigint): string {
  const us = ns / 1000n;
  return `${us / 1_000_000n}.${String(us % 1_000_000n).padStart(6, '0')}`;
}

const REG_ROWS = [
  ['rax', 'rbx', 'rcx', 'rdx'],
  ['rsi', 'rdi', 'rsp', 'rbp'],
  ['r8', 'r9', 'r10', 'r11'],
  ['r12', 'r13', 'r14', 'r15'],
  ['rip', 'rflags'],
] as const;

/** A register dump, four to a line, 16 hex digits each. */
export function registerTable(values: Readonly<Record<string, bigint>>, rows: readonly (readonly string[])[] = REG_ROWS): string {
  return rows
    .map((row) => '  ' + row.map((name) => `${name.padStart(6)} ${values[name]!.toString(16).padStart(16, '0')}`).join('  ') + '\n')
    .join('');
}
