/**
 * How the commands print: to a pair of text sinks (the process's stdout/stderr, or a test's
 * buffers), 64-bit values as "0x…" (JSON Lines too, as the trace format does, so that no JSON
 * reader rounds them), events one per line.
 */
import { hex } from '../../protocol/notation.js';
import type { Event } from '../vmm/events/index.js';

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

/** An event as one JSON object: {"event": name, "seq", "time", "vm", "vcpu"?, "rip"?, "fields"}. */
export function eventJson(e: Event): object {
  return {
    event: e.name,
    seq: e.seq,
    time: e.time,
    vm: e.vm,
    ...(e.vcpu !== undefined && { vcpu: e.vcpu }),
    ...(e.rip !== undefined && { rip: e.rip }),
    fields: e.fields,
  };
}

/** An event as one readable line: `vcpu 0 @0x100004  kvm_msr  write=false ecx=0xc0000080 …`. */
export function eventText(e: Event): string {
  const where = e.vcpu === undefined ? e.vm : `vcpu ${e.vcpu}${e.rip === undefined ? '' : ` @${hex(e.rip)}`}`;
  const fields = Object.entries(e.fields)
    .map(([k, v]) => `${k}=${typeof v === 'bigint' ? hex(v) : k === 'ecx' || k === 'index' || k === 'port' ? hex(v as number) : String(v)}`)
    .join(' ');
  return `  ${where.padEnd(20)} ${e.name.padEnd(18)} ${fields}`.trimEnd() + '\n';
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
