/**
 * The trace file format: JSON Lines, one event per line, UTF-8, in seq order:
 *
 *   {"seq":"0x2a","time":"0x3b9aca00","name":"kvm_msr","vm":"default","vcpu":0,"rip":"0x100004",
 *    "fields":{"write":false,"ecx":16,"data":"0x0","exception":false}}
 *
 * (one line in the file). Keys in that order; `vcpu` and `rip` only where the event has them.
 * Every 64-bit quantity — seq, time (ns since the log was created), rip and the catalogue's
 * u64 fields — is a string "0x…" in lower-case hex, so that no JSON reader rounds it; u32 and
 * number fields are JSON numbers, strings and booleans are themselves. No string field of the
 * catalogue ever holds text of the form "0x…", so a reader without the catalogue may take such
 * strings for 64-bit integers. A process killed while writing may leave a last line without
 * its newline: readers skip it (readTrace reports it).
 */
import { EVENT_CATALOGUE, isEventName, type EventName } from './catalogue.js';
import type { Event, EventFieldValue } from './event.js';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** `"0x…"`; through a double when exact, which is faster than BigInt's own toString(16). */
function hex64(v: bigint): string {
  if (v >= 0n) return v <= SAFE ? '"0x' + Number(v).toString(16) + '"' : '"0x' + v.toString(16) + '"';
  return '"-0x' + (-v).toString(16) + '"';
}

/** JSON-quoted names, cached: field names and VM names repeat on every line. */
const quoted = new Map<string, string>();
function quote(name: string): string {
  let q = quoted.get(name);
  if (q === undefined) {
    q = JSON.stringify(name);
    if (quoted.size < 4096) quoted.set(name, q);
  }
  return q;
}

function encodeValue(v: EventFieldValue): string {
  switch (typeof v) {
    case 'bigint':
      return hex64(v);
    case 'number':
      return Number.isFinite(v) ? String(v) : 'null';
    case 'string':
      return JSON.stringify(v);
    default:
      return v ? 'true' : 'false';
  }
}

/** One event as a line of the trace, newline included. */
export function encodeEventLine(event: Event): string {
  let line = '{"seq":' + hex64(event.seq) + ',"time":' + hex64(event.time) + ',"name":' + quote(event.name) +
    ',"vm":' + quote(event.vm);
  if (event.vcpu !== undefined) line += ',"vcpu":' + event.vcpu;
  if (event.rip !== undefined) line += ',"rip":' + hex64(event.rip);
  line += ',"fields":{';
  let first = true;
  const fields = event.fields;
  for (const key in fields) {
    line += (first ? '' : ',') + quote(key) + ':' + encodeValue(fields[key]!);
    first = false;
  }
  return line + '}}\n';
}

export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';
}

const HEX64 = /^-?0x[0-9a-f]+$/;

function bigintFrom(text: unknown, what: string): bigint {
  if (typeof text !== 'string' || !HEX64.test(text)) throw new TraceFormatError(`${what} must be a "0x…" string, got ${JSON.stringify(text)}`);
  return text.startsWith('-') ? -BigInt(text.slice(1)) : BigInt(text);
}

/** One line back to an event (without its newline). */
export function decodeEventLine(line: string): Event {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new TraceFormatError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TraceFormatError('a trace line must be a JSON object');
  const o = raw as Record<string, unknown>;
  if (typeof o.name !== 'string' || typeof o.vm !== 'string') throw new TraceFormatError('name and vm must be strings');
  if (typeof o.fields !== 'object' || o.fields === null) throw new TraceFormatError('fields must be an object');
  const spec = isEventName(o.name) ? (EVENT_CATALOGUE[o.name].fields as Record<string, { type: string }>) : undefined;
  const fields: Record<string, EventFieldValue> = {};
  for (const [k, v] of Object.entries(o.fields as Record<string, unknown>)) {
    const type = spec?.[k]?.type;
    if (type === 'u64' || (type === undefined && typeof v === 'string' && HEX64.test(v))) fields[k] = bigintFrom(v, `field ${k}`);
    else if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') fields[k] = v;
    else throw new TraceFormatError(`field ${k} has an unsupported value ${JSON.stringify(v)}`);
  }
  const event: { -readonly [K in keyof Event]: Event[K] } = {
    seq: bigintFrom(o.seq, 'seq'),
    time: bigintFrom(o.time, 'time'),
    name: o.name as EventName,
    vm: o.vm,
    fields,
  };
  if (o.vcpu !== undefined) {
    if (typeof o.vcpu !== 'number') throw new TraceFormatError('vcpu must be a number');
    event.vcpu = o.vcpu;
  }
  if (o.rip !== undefined) event.rip = bigintFrom(o.rip, 'rip');
  return event;
}

export interface TraceContents {
  readonly events: Event[];
  /** The text ended in a partial line (the writer was killed mid-write); it was skipped. */
  readonly truncatedTail: boolean;
}

/** A whole trace file's text. A complete line that does not decode is an error naming its number. */
export function readTrace(text: string): TraceContents {
  const lines = text.split('\n');
  const tail = lines.pop()!; // "" when the text ends with a newline
  const events = lines.map((line, i) => {
    try {
      return decodeEventLine(line);
    } catch (e) {
      throw new TraceFormatError(`line ${i + 1}: ${(e as Error).message}`);
    }
  });
  return { events, truncatedTail: tail !== '' };
}
