/**
 * An event as one line for people: `pinbox serve`'s console, `pinbox run` and `pinbox events`
 * (docs/events.md). The same rule as the JSON form (json.ts), in text:
 *
 *   VM "harden" vcpu 0 @0x100004 kvm_msr write=false ecx=0xc0000080 data=0xd01 exception=false
 *   VM "harden" vcpu 1 @0xf012 heki_denial reason=2(CR4) cr=4 cr_value=0x210ea0 path=exit action=log
 *   VMM control_connected connection=3 client="pinbox events"
 *
 * Every line names the VM (or `VMM` for events of the VMM itself, whose vm is "-"), then the
 * vCPU and guest RIP where the event has them, the event's name, and its fields in catalogue
 * order: hex-notation values as 0x…, other integers in decimal, a raw number that has a name
 * with the name beside it in parentheses, strings bare unless they hold spaces or quotes.
 */
import { EVENT_CATALOGUE, isEventName, type EventFieldSpec } from './catalogue.js';
import { VMM_EVENTS, type Event, type EventFieldValue } from './event.js';
import { isHexField } from './json.js';

const BARE = /^[A-Za-z0-9_.:/@+-]+$/;

/** One field's value as text, by the catalogue's notation. */
export function fieldText(value: EventFieldValue, spec: EventFieldSpec | undefined): string {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'string') return BARE.test(value) ? value : JSON.stringify(value);
  const raw = isHexField(spec, value) ? `${value < 0 ? '-' : ''}0x${(value < 0 ? -value : value).toString(16)}` : String(value);
  const symbol = spec?.symbols?.[Number(value)];
  return symbol === undefined ? raw : `${raw}(${symbol})`;
}

/** The fields as `key=value` words, separated by spaces. */
export function fieldsText(event: Event): string {
  const spec = isEventName(event.name) ? (EVENT_CATALOGUE[event.name].fields as Readonly<Record<string, EventFieldSpec>>) : {};
  return Object.entries(event.fields)
    .map(([k, v]) => `${k}=${fieldText(v, spec[k])}`)
    .join(' ');
}

/** Where an event happened: `VM "harden" vcpu 0 @0x100004`, `VM "harden"` or `VMM`. */
export function eventPlace(event: Event): string {
  const vm = event.vm === VMM_EVENTS ? 'VMM' : `VM ${JSON.stringify(event.vm)}`;
  if (event.vcpu === undefined) return vm;
  return `${vm} vcpu ${event.vcpu}${event.rip === undefined ? '' : ` @0x${event.rip.toString(16)}`}`;
}

/** The whole line, without a newline. */
export function eventText(event: Event): string {
  const fields = fieldsText(event);
  return `${eventPlace(event)} ${event.name}${fields === '' ? '' : ' ' + fields}`;
}
