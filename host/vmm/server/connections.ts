/**
 * The connections of a server: how many are open at each endpoint (each has its own maximum,
 * so that guests can never take the control endpoint's places: an operator can always get in),
 * a number for each greeted one (named in guest_connected events), and the requests they made
 * (for `stats`).
 *
 * A connection that has not said hello holds its place only until a new connection needs it:
 * when an endpoint is full, the oldest connection there that has not said hello is closed to
 * make room (issue 9, finding 6: idle connections must not lock everyone out). Only when every
 * connection there has said hello is a new one refused with `limit`.
 */
import { ProtocolError } from '../../../protocol/errors.js';
import type { Connection } from '../../../protocol/transports/connection.js';
import type { HelloReply, ServerSession, SessionHandler } from '../../../protocol/server-session.js';

export type EndpointRole = 'guest' | 'control';

/** Connections open at once on the guest endpoint unless configured. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** Connections open at once on the control endpoint unless configured. */
export const DEFAULT_MAX_CONTROL_CONNECTIONS = 16;

/** The connections of one endpoint, oldest first, each with whether it has said hello. */
class Pool {
  readonly open = new Map<Connection, { greeted: boolean }>();
  evicted = 0;

  constructor(readonly max: number) {}

  admit(connection: Connection): boolean {
    if (this.open.size >= this.max && !this.evictIdle()) return false;
    const entry = { greeted: false };
    this.open.set(connection, entry);
    connection.onClose(() => {
      if (this.open.get(connection) === entry) this.open.delete(connection);
    });
    return true;
  }

  /** Closes the oldest connection that has not said hello; false if every one has. */
  private evictIdle(): boolean {
    for (const [connection, entry] of this.open) {
      if (entry.greeted) continue;
      this.open.delete(connection);
      this.evicted++;
      connection.close();
      return true;
    }
    return false;
  }
}

export class ConnectionRegistry {
  private numbered = 0;
  private readonly sessions = new Set<ServerSession<unknown>>();
  private requestsOfClosed = 0;
  private readonly pools: Readonly<Record<EndpointRole, Pool>>;
  readonly byRole = { guest: 0, control: 0, monitor: 0 };

  constructor(readonly max: number, readonly maxControl: number = DEFAULT_MAX_CONTROL_CONNECTIONS) {
    for (const [name, n] of [['maxConnections', max], ['maxControlConnections', maxControl]] as const) {
      if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`${name} must be a positive whole number, got ${n}`);
    }
    this.pools = { guest: new Pool(max), control: new Pool(maxControl) };
  }

  /** Connections open now, at both endpoints. */
  get count(): number {
    return this.pools.guest.open.size + this.pools.control.open.size;
  }

  /** Connections closed so far to make room, because they had not said hello. */
  get evicted(): number {
    return this.pools.guest.evicted + this.pools.control.evicted;
  }

  /** Requests received by every session so far. */
  get requests(): number {
    let n = this.requestsOfClosed;
    for (const s of this.sessions) n += s.requests;
    return n;
  }

  /** Takes a new connection at an endpoint, making room if it must; false when the endpoint is full. */
  admit(connection: Connection, endpoint: EndpointRole = 'guest'): boolean {
    return this.pools[endpoint].admit(connection);
  }

  /** A session said hello: counts it under its role and returns its number. */
  greeted(session: ServerSession<never>, role: EndpointRole | 'monitor'): number {
    const number = ++this.numbered;
    const s = session as ServerSession<unknown>;
    // A monitor is a client of the control endpoint (docs/register-intercepts.md).
    const entry = this.pools[role === 'monitor' ? 'control' : role].open.get(session.connection);
    if (entry !== undefined) entry.greeted = true;
    this.sessions.add(s);
    this.byRole[role]++;
    session.onClose(() => {
      this.sessions.delete(s);
      this.requestsOfClosed += s.requests;
      this.byRole[role]--;
    });
    return number;
  }
}

/**
 * What a connection past the limit talks to: its hello is answered with `limit`, naming the
 * limit, and the connection is closed once the answer is written.
 */
export function refusingHandler(max: number, endpoint: EndpointRole): SessionHandler {
  const option = endpoint === 'guest' ? '--max-connections' : '--max-control-connections';
  return {
    hello(session: ServerSession): HelloReply {
      setImmediate(() => session.close());
      throw new ProtocolError('limit', `this server's ${endpoint} endpoint takes at most ${max} connections at once, and every one has said hello (pinbox serve ${option}); try again later`);
    },
    request(): never {
      throw new ProtocolError('limit', `this server's ${endpoint} endpoint takes at most ${max} connections at once`);
    },
  };
}
