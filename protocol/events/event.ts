/**
 * One recorded event, in the shape of the protocol's `Event` (PROTOCOL.md §6: seq u64, time u64,
 * name, vm, vcpu?, rip?, fields), each field of the JavaScript type its catalogue type gives
 * (bigint for u64, number for u32 and number). Treat it as read-only: the VMM's log hands the
 * same object to the ring, every subscriber and every trace.
 */
import { EVENT_CATALOGUE, isEventName, type EventName } from './catalogue.js';

export type EventFieldValue = bigint | number | string | boolean;
export type EventFields = Readonly<Record<string, EventFieldValue>>;

export interface Event {
  /** Position in the log, from 0, one more for every event. */
  readonly seq: bigint;
  /** Nanoseconds since the log was created (monotonic clock). */
  readonly time: bigint;
  readonly name: EventName;
  readonly vm: string;
  readonly vcpu?: number;
  readonly rip?: bigint;
  readonly fields: EventFields;
}

/** The `vm` of events about the VMM itself rather than one VM (control_connected). */
export const VMM_EVENTS = '-';

const U32_MAX = 0xffffffff;

/**
 * What is wrong with an event against the catalogue (unknown name, missing, extra or mistyped
 * fields): for tests of the code that emits events, not for the hot path.
 */
export function eventProblems(event: Event): string[] {
  if (!isEventName(event.name)) return [`unknown event name ${JSON.stringify(event.name)}`];
  const spec = EVENT_CATALOGUE[event.name].fields as Readonly<Record<string, { type: string; optional?: boolean }>>;
  const problems: string[] = [];
  for (const [field, { type, optional }] of Object.entries(spec)) {
    const v = event.fields[field];
    if (v === undefined) {
      if (!optional) problems.push(`${event.name}: missing field ${field}`);
      continue;
    }
    const ok =
      type === 'u64' ? typeof v === 'bigint' && v >= 0n && v < 1n << 64n
      : type === 'u32' ? typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= U32_MAX
      : type === 'number' ? typeof v === 'number'
      : type === 'string' ? typeof v === 'string'
      : typeof v === 'boolean';
    if (!ok) problems.push(`${event.name}: field ${field} should be ${type}, got ${typeof v} ${String(v)}`);
  }
  for (const field of Object.keys(event.fields)) {
    if (!(field in spec)) problems.push(`${event.name}: field ${field} is not in the catalogue`);
  }
  // PROTOCOL.md §2: a VMM sends the fields in the catalogue's order.
  const order = Object.keys(spec);
  const given = Object.keys(event.fields).filter((f) => f in spec);
  if (given.some((f, i) => i > 0 && order.indexOf(f) < order.indexOf(given[i - 1]!))) {
    problems.push(`${event.name}: fields ${given.join(', ')} are not in the catalogue's order (${order.join(', ')})`);
  }
  if (event.vcpu !== undefined && !(Number.isInteger(event.vcpu) && event.vcpu >= 0)) {
    problems.push(`${event.name}: vcpu ${event.vcpu} is not a vCPU number`);
  }
  return problems;
}
