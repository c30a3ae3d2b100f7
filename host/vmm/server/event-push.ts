/**
 * A subscription's pushes (PROTOCOL.md §6): events go out after the answer that made the
 * subscription — ones that happen before it is written are held and sent on the next turn of
 * the event loop, in order. Control clients' `subscribe` and monitors' `watchIntercepts` push so.
 */
import type { Event as WireEvent } from '../../../protocol/messages/index.js';
import type { ServerSession } from '../../../protocol/server-session.js';
import type { EventLog, EventName } from '../events/index.js';

/** Subscribes `session` to the log's events under `sub`; returns the function that stops it. */
export function pushEvents(session: ServerSession<unknown>, sub: number, log: EventLog, filter: { vm?: string; names?: EventName[]; completions?: boolean }): () => void {
  const held: WireEvent[] = [];
  let ready = false;
  const send = (event: WireEvent): void => {
    try {
      session.push(sub, event);
    } catch {
      // A closed connection or an event too large for the frame: the subscriber misses it.
    }
  };
  const off = log.subscribe(filter, (e) => {
    if (ready) send(e as WireEvent);
    else held.push(e as WireEvent);
  });
  setImmediate(() => {
    ready = true;
    for (const e of held.splice(0)) send(e);
  });
  return off;
}
