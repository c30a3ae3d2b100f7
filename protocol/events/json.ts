/**
 * An event as one line of JSON: the trace file, `pinbox run --json`, `pinbox events --json` and
 * `pinbox ctl events --json` all write this, and nothing else (docs/events.md):
 *
 *   {"seq":42,"time":1000000,"name":"kvm_msr","vm":"default","vcpu":0,"rip":"0x100004",
 *    "fields":{"write":false,"ecx":"0xc0000080","data":"0xd01","exception":false}}
 *
 * (one line). Keys in that order; `vcpu` and `rip` only where the event has them. The rule for
 * integers: a value the catalogue writes in hex — 64-bit register, MSR and address values (its
 * u64 fields, and `rip`), MSR indices, ports — is a string "0x…" in lower-case hex, so that no
 * JSON reader rounds it and it reads as the kernel's trace writes it; every other integer (seq,
 * time in ns since the log was created, vcpu, counts, CR numbers) is a JSON number, or a "0x…"
 * string if it does not fit 2^53. Strings and booleans are themselves. No string field of the
 * catalogue ever holds text of the form "0x…", so a reader without the catalogue may take such
 * strings for integers. A process killed while writing may leave a last line without its
 * newline: readers skip it (readTrace reports it).
 */
import { EVENT_CATALOGUE, isEventName, type EventFieldSpec, type EventName } from './catalogue.js';
import type { Event, EventFieldValue } from './event.js';

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** `"0x…"`; through a double when exact, which is faster than BigInt's own toString(16). */
function hex64(v: bigint): string {
  if (v >= 0n) return v <= SAFE ? '"0x' + Number(v).toString(16) + '"' : '"0x' + v.toString(16) + '"';
  return '"-0x' + (-v).toString(16) + '"';
}

/** A decimal-notation integer: a JSON number when it fits 2^53, else "0x…". */
function decimal(v: bigint | number): string {
  if (typeof v === 'number') return Number.isSafeInteger(v) ? String(v) : Number.isFinite(v) ? hex64(BigInt(v)) : 'null';
  return v <= SAFE && v >= -SAFE ? String(v) : hex64(v);
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

type Fields = Readonly<Record<string, EventFieldSpec>>;
const NO_FIELDS: Fields = {};

function specOf(name: string): Fields {
  return isEventName(name) ? (EVENT_CATALOGUE[name].fields as Fields) : NO_FIELDS;
}

/** Whether a field is written in hex: its notation, or u64 by default; a field the catalogue lacks, when it is a bigint. */
export function isHexField(spec: EventFieldSpec | undefined, value?: EventFieldValue): boolean {
  if (spec === undefined) return typeof value === 'bigint';
  return spec.notation === 'hex' || (spec.type === 'u64' && spec.notation !== 'decimal');
}

function encodeValue(v: EventFieldValue, spec: EventFieldSpec | undefined): string {
  switch (typeof v) {
    case 'bigint':
    case 'number':
      if (!isHexField(spec, v)) return decimal(v);
      if (typeof v === 'bigint') return hex64(v);
      if (!Number.isSafeInteger(v)) return 'null';
      return v >= 0 ? '"0x' + v.toString(16) + '"' : '"-0x' + (-v).toString(16) + '"';
    case 'string':
      return JSON.stringify(v);
    default:
      return v ? 'true' : 'false';
  }
}

/** One event as a line of JSON, newline included. */
export function encodeEventLine(event: Event): string {
  let line = '{"seq":' + decimal(event.seq) + ',"time":' + decimal(event.time) + ',"name":' + quote(event.name) +
    ',"vm":' + quote(event.vm);
  if (event.vcpu !== undefined) line += ',"vcpu":' + event.vcpu;
  if (event.rip !== undefined) line += ',"rip":' + hex64(event.rip);
  line += ',"fields":{';
  let first = true;
  const fields = event.fields;
  const spec = specOf(event.name);
  for (const key in fields) {
    line += (first ? '' : ',') + quote(key) + ':' + encodeValue(fields[key]!, spec[key]);
    first = false;
  }
  return line + '}}\n';
}

export class TraceFormatError extends Error {
  override readonly name = 'TraceFormatError';
}

const HEX = /^-?0x[0-9a-f]+$/;

/** An integer as either form: a JSON number, or a "0x…" string. */
function integerFrom(value: unknown, what: string): bigint {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value);
  if (typeof value === 'string' && HEX.test(value)) return value.startsWith('-') ? -BigInt(value.slice(1)) : BigInt(value);
  throw new TraceFormatError(`${what} must be an integer (a JSON number or a "0x…" string), got ${JSON.stringify(value)}`);
}

function fieldFrom(key: string, value: unknown, spec: EventFieldSpec | undefined): EventFieldValue {
  const what = `field ${key}`;
  if (spec === undefined) {
    // A field the catalogue does not know: "0x…" strings are integers (see above), the rest as written.
    if (typeof value === 'string' && HEX.test(value)) return integerFrom(value, what);
    if (typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean') return value;
    throw new TraceFormatError(`${what} has an unsupported value ${JSON.stringify(value)}`);
  }
  switch (spec.type) {
    case 'u64':
      return integerFrom(value, what);
    case 'u32':
    case 'number':
      return Number(integerFrom(value, what));
    case 'string':
      if (typeof value !== 'string') throw new TraceFormatError(`${what} must be a string, got ${JSON.stringify(value)}`);
      return value;
    case 'bool':
      if (typeof value !== 'boolean') throw new TraceFormatError(`${what} must be true or false, got ${JSON.stringify(value)}`);
      return value;
  }
}

/** One line back to an event (without its newline). */
export function decodeEventLine(line: string): Event {
  let raw: unknown;
  try {
    raw = JSON.parse(line);
  } catch (e) {
    throw new TraceFormatError(`not JSON: ${(e as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TraceFormatError('an event must be a JSON object');
  const o = raw as Record<string, unknown>;
  if (typeof o.name !== 'string' || typeof o.vm !== 'string') throw new TraceFormatError('name and vm must be strings');
  if (typeof o.fields !== 'object' || o.fields === null || Array.isArray(o.fields)) throw new TraceFormatError('fields must be an object');
  const spec = specOf(o.name);
  const fields: Record<string, EventFieldValue> = {};
  for (const [k, v] of Object.entries(o.fields as Record<string, unknown>)) fields[k] = fieldFrom(k, v, spec[k]);
  const event: { -readonly [K in keyof Event]: Event[K] } = {
    seq: integerFrom(o.seq, 'seq'),
    time: integerFrom(o.time, 'time'),
    name: o.name as EventName,
    vm: o.vm,
    fields,
  };
  if (o.vcpu !== undefined) {
    if (typeof o.vcpu !== 'number' || !Number.isSafeInteger(o.vcpu)) throw new TraceFormatError('vcpu must be a whole number');
    event.vcpu = o.vcpu;
  }
  if (o.rip !== undefined) event.rip = integerFrom(o.rip, 'rip');
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
