/** pinbox/protocol: the wire contract and ABI constants shared by the host and the guest SDK. */
export * from './abi.js';
export { describeFault, exceptionName } from './notation.js';
/** The event catalogue and the one way events are written (docs/events.md). The wire's Event is messages' `Event`; this is the catalogue-typed one. */
export {
  EVENT_CATALOGUE, EVENT_NAMES, isEventName, type EventFieldSpec, type EventFieldsOf, type EventFieldType, type EventName, type EventSpec,
  VMM_EVENTS, type Event as LoggedEvent, type EventFields, type EventFieldValue,
  decodeEventLine, encodeEventLine, readTrace, TraceFormatError, type TraceContents, eventText, eventFromWire,
} from './events/index.js';
export { PROTOCOL_VERSION } from './version.js';
export * from './limits.js';
export { ERROR_CODES, type ErrorCode, ProtocolError, RemoteError, type ProtocolErrorDetails, toProtocolError } from './errors.js';
export * from './messages/index.js';
export { crNumber } from './messages/guest.js';
export {
  MAX_FILTER_RANGES, MAX_FILTER_BITMAP_BYTES, MAX_MSR_ENTRIES, MAX_EVENTS, MAX_SUBSCRIBED_EVENT_NAMES, MAX_SNAPSHOT_BYTES,
} from './messages/control.js';
export { decodeMsgpack, encodeMsgpack } from './codec.js';
export { checkMsgpackSubset } from './msgpack-subset.js';
export { FRAME_HEADER_BYTES, FrameReader, type FrameSink, frameBody } from './framing.js';
export {
  errorResponseToWire, parseOutcome, parseRequestEnvelope, parseRequestParams, parseServerMessage, pushToWire,
  requestToWire, resultResponseToWire,
} from './envelope.js';
export { Channel, type ChannelOptions } from './channel.js';
export {
  type HandlerRequest, type HelloReply, ServerSession, type ServerSessionOptions, type SessionHandler,
} from './server-session.js';
export { ClientSession, type ClientSessionOptions, type HelloOptions } from './client-session.js';
export * from './transports/index.js';
export { serve } from './serve.js';
export { type Infer, Schema, SchemaIssue, formatPath } from './schema/index.js';
