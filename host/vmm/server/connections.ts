/**
 * The connections of a server: how many are open (refused past --max-connections, counted
 * over both endpoints), a number for each greeted one (named in guest_connected events), and
 * the requests they made (for `stats`).
 */
import { ProtocolError } from '../../../protocol/errors.js';
import type { Connection } from '../../../protocol/transports/connection.js';
import type { HelloReply, ServerSession, SessionHandler } from '../../../protocol/server-session.js';

export class ConnectionRegistry {
  private open = 0;
  private numbered = 0;
  private readonly sessions = new Set<ServerSession<unknown>>();
  private requestsOfClosed = 0;
  readonly byRole = { guest: 0, control: 0, monitor: 0 };

  constructor(readonly max: number) {}

  get count(): number {
    return this.open;
  }

  /** Requests received by every session so far. */
  get requests(): number {
    let n = this.requestsOfClosed;
    for (const s of this.sessions) n += s.requests;
    return n;
  }

  /** Takes a new connection, or returns false when the server is full. */
  admit(connection: Connection): boolean {
    if (this.open >= this.max) return false;
    this.open++;
    connection.onClose(() => this.open--);
    return true;
  }

  /** A session said hello: counts it under its role and returns its number. */
  greeted(session: ServerSession<never>, role: 'guest' | 'control' | 'monitor'): number {
    const number = ++this.numbered;
    const s = session as ServerSession<unknown>;
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
export function refusingHandler(max: number): SessionHandler {
  return {
    hello(session: ServerSession): HelloReply {
      setImmediate(() => session.close());
      throw new ProtocolError('limit', `this server takes at most ${max} connections at once (pinbox serve --max-connections); try again later`);
    },
    request(): never {
      throw new ProtocolError('limit', `this server takes at most ${max} connections at once`);
    },
  };
}
