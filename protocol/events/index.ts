/**
 * The events of the VMM's log as the protocol carries them and as pinbox writes them: the
 * catalogue of every event and field (catalogue.ts), the Event shape (event.ts), one JSON line
 * per event (json.ts: traces and every --json output), one text line (text.ts: consoles), and
 * the conversion of a wire event into the catalogue's types (wire.ts). docs/events.md says it
 * for people.
 */
export {
  EVENT_CATALOGUE, EVENT_NAMES, isEventName, type EventFieldSpec, type EventFieldsOf, type EventFieldType, type EventName, type EventSpec,
} from './catalogue.js';
export { eventProblems, VMM_EVENTS, type Event, type EventFields, type EventFieldValue } from './event.js';
export { decodeEventLine, encodeEventLine, isHexField, readTrace, TraceFormatError, type TraceContents } from './json.js';
export { eventPlace, eventText, fieldsText, fieldText } from './text.js';
export { eventFromWire } from './wire.js';
