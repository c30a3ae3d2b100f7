/** connect(url) / listen(url): the transports behind one URL syntax (see endpoint.ts). */
import type { Connection } from './connection.js';
import { parseEndpoint } from './endpoint.js';
import { type Listener, checkSocketFolder, connectSocket, listenSocket } from './socket.js';
import { stdioConnection } from './stdio.js';

export type { Connection } from './connection.js';
export { BaseConnection } from './connection.js';
export { type Endpoint, formatEndpoint, parseEndpoint, LOOPBACK_HOST } from './endpoint.js';
export { createMemoryPair } from './memory.js';
export type { Listener } from './socket.js';
export { checkSocketFolder };
export { type StdioChild, type StdioSpawnOptions, spawnStdio, stdioConnection } from './stdio.js';
export { StreamConnection } from './stream.js';

/** Connects to a server. `stdio:` yields this process's own stdin/stdout (the child side). */
export async function connect(url: string): Promise<Connection> {
  const endpoint = parseEndpoint(url);
  return endpoint.kind === 'stdio' ? stdioConnection() : connectSocket(endpoint);
}

/**
 * Accepts connections. `stdio:` has exactly one: this process's stdin/stdout, handed over at
 * once (a server started as a child of its client).
 */
export async function listen(url: string, onConnection: (connection: Connection) => void): Promise<Listener> {
  const endpoint = parseEndpoint(url);
  if (endpoint.kind !== 'stdio') return listenSocket(endpoint, onConnection);
  const connection = stdioConnection();
  onConnection(connection);
  return {
    address: 'stdio:',
    close: async () => connection.close(),
  };
}
