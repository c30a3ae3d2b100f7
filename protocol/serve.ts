/** listen() plus a ServerSession on every accepted connection: a protocol server in one call. */
import { type ServerSessionOptions, ServerSession, type SessionHandler } from './server-session.js';
import { type Listener, listen } from './transports/index.js';

export function serve<C>(url: string, handler: SessionHandler<C>, options: ServerSessionOptions = {}): Promise<Listener> {
  return listen(url, (connection) => {
    new ServerSession(connection, handler, options);
  });
}
