/**
 * The VMM's event log and traces. See event-log.ts for how the VMM emits events, catalogue.ts
 * for every event and its fields, trace-format.ts for the JSON Lines format and
 * trace-writer.ts for the crash guarantee.
 */
export {
  EVENT_CATALOGUE, EVENT_NAMES, isEventName, type EventFieldSpec, type EventFieldsOf, type EventFieldType, type EventName, type EventSpec,
} from './catalogue.js';
export { eventProblems, type Event, type EventFields, type EventFieldValue } from './event.js';
export {
  DEFAULT_EVENT_CAPACITY, EventLog, MAX_EVENTS_PER_QUERY, type EventFilter, type EventListener, type EventLogOptions,
  type EventSink, type EventsSince,
} from './event-log.js';
export { decodeEventLine, encodeEventLine, readTrace, TraceFormatError, type TraceContents } from './trace-format.js';
export { TraceWriteError, TraceWriter, type TraceWriterOptions } from './trace-writer.js';
