/**
 * The VMM's event log and traces. See event-log.ts for how the VMM emits events and
 * trace-writer.ts for the crash guarantee; the catalogue of every event and field, the Event
 * shape and the one way events are written (JSON lines, text lines) are the protocol's
 * (protocol/events), since clients read them too.
 */
export {
  EVENT_CATALOGUE, EVENT_NAMES, isEventName, type EventFieldSpec, type EventFieldsOf, type EventFieldType, type EventName, type EventSpec,
  eventProblems, VMM_EVENTS, type Event, type EventFields, type EventFieldValue,
  decodeEventLine, encodeEventLine, readTrace, TraceFormatError, type TraceContents, eventText,
} from '../../../protocol/events/index.js';
export {
  DEFAULT_EVENT_CAPACITY, EventLog, MAX_EVENTS_PER_QUERY, type EventFilter, type EventListener, type EventLogOptions,
  type EventSink, type EventsSince,
} from './event-log.js';
export { TraceWriteError, TraceWriter, type TraceWriterOptions } from './trace-writer.js';
