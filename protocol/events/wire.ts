/**
 * Events as they arrive from a server (a push, an `events` page) into the catalogue's types. The
 * wire carries every integer of `fields` as a msgpack integer, which the codec decodes as a
 * bigint (PROTOCOL.md §2); the catalogue says which are u64 (bigint) and which are u32 or i32
 * (number), so that a client holds the same Event a VMM in its own process would hand it.
 */
import type { Event as WireEvent } from '../messages/common.js';
import { EVENT_CATALOGUE, isEventName, type EventFieldSpec, type EventName } from './catalogue.js';
import type { Event, EventFieldValue } from './event.js';

function fieldFromWire(value: bigint | string | boolean, spec: EventFieldSpec | undefined): EventFieldValue {
  if (typeof value !== 'bigint' || spec === undefined) return value;
  return spec.type === 'u32' || spec.type === 'number' ? Number(value) : value;
}

/** A validated wire event, each field of the type its catalogue entry gives; unknown names and fields pass as they are. */
export function eventFromWire(wire: WireEvent): Event {
  const spec: Readonly<Record<string, EventFieldSpec>> = isEventName(wire.name) ? EVENT_CATALOGUE[wire.name].fields : {};
  const fields: Record<string, EventFieldValue> = {};
  for (const [k, v] of Object.entries(wire.fields)) fields[k] = fieldFromWire(v, spec[k]);
  return {
    seq: wire.seq,
    time: wire.time,
    name: wire.name as EventName,
    vm: wire.vm,
    ...(wire.vcpu !== undefined && { vcpu: wire.vcpu }),
    ...(wire.rip !== undefined && { rip: wire.rip }),
    fields,
  };
}
