/** Unix-socket and TCP transports over node:net. */
import { lstat, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname, resolve as resolvePath } from 'node:path';
import { ProtocolError } from '../errors.js';
import type { Connection } from './connection.js';
import { type Endpoint, formatEndpoint } from './endpoint.js';
import { StreamConnection } from './stream.js';

export interface Listener {
  /** The URL actually bound (a `tcp:…:0` request shows its real port here). */
  readonly address: string;
  /** Stops accepting and closes every connection this listener accepted. */
  close(): Promise<void>;
}

function socketConnection(socket: net.Socket, peer: string): Connection {
  if (socket.remoteFamily !== undefined) socket.setNoDelay(true);
  return new StreamConnection(socket, socket, peer);
}

function tcpPeer(socket: net.Socket): string {
  const host = socket.remoteAddress ?? '?';
  return `tcp:${host.includes(':') ? `[${host}]` : host}:${socket.remotePort ?? 0}`;
}

export function connectSocket(endpoint: Endpoint & { kind: 'unix' | 'tcp' }): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = endpoint.kind === 'unix'
      ? net.createConnection({ path: endpoint.path })
      : net.createConnection({ host: endpoint.host, port: endpoint.port });
    const fail = (e: Error): void => reject(e);
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.off('error', fail);
      resolve(socketConnection(socket, formatEndpoint(endpoint)));
    });
  });
}

/**
 * A unix socket path may hold the socket of a server that died. It is removed if it is a
 * socket nobody answers on; a live socket or any other kind of file is left alone and refused.
 */
async function clearStaleSocket(path: string): Promise<void> {
  let stat;
  try {
    stat = await lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw e;
  }
  if (!stat.isSocket()) {
    throw new ProtocolError('bad_url', `unix:${path} exists and is not a socket; refusing to replace it`);
  }
  const live = await new Promise<boolean>((resolve) => {
    const probe = net.createConnection({ path });
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (live) throw new ProtocolError('bad_url', `unix:${path} is in use by a running server`);
  await unlink(path);
}

/**
 * The folder a unix socket goes in must exist (the kernel then says ENOENT, which Node reports
 * as EACCES — "permission denied" for what is a missing folder).
 */
export async function checkSocketFolder(path: string): Promise<void> {
  const folder = dirname(resolvePath(path));
  let st;
  try {
    st = await stat(folder);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ProtocolError('bad_url', `unix:${path}: the folder ${folder} does not exist`);
    if (code === 'ENOTDIR') throw new ProtocolError('bad_url', `unix:${path}: ${folder} is not a folder`);
    throw e;
  }
  if (!st.isDirectory()) throw new ProtocolError('bad_url', `unix:${path}: ${folder} is not a folder`);
}

/** A listen() failure in words: what the errno means for this endpoint. */
function listenError(endpoint: Endpoint & { kind: 'unix' | 'tcp' }, e: NodeJS.ErrnoException): Error {
  const at = formatEndpoint(endpoint);
  switch (e.code) {
    case 'EACCES':
      return new ProtocolError('bad_url', endpoint.kind === 'unix'
        ? `${at}: permission denied: this user may not make a socket in ${dirname(resolvePath(endpoint.path))}`
        : `${at}: permission denied (ports below 1024 need privileges)`);
    case 'EADDRINUSE':
      return new ProtocolError('bad_url', `${at}: the address is in use`);
    case 'EADDRNOTAVAIL':
      return new ProtocolError('bad_url', `${at}: no interface of this machine has that address`);
    default:
      return e;
  }
}

export async function listenSocket(
  endpoint: Endpoint & { kind: 'unix' | 'tcp' },
  onConnection: (connection: Connection) => void,
): Promise<Listener> {
  if (endpoint.kind === 'unix') {
    await checkSocketFolder(endpoint.path);
    await clearStaleSocket(endpoint.path);
  }
  const live = new Set<Connection>();
  const server = net.createServer((socket) => {
    const connection = socketConnection(socket, endpoint.kind === 'unix' ? formatEndpoint(endpoint) : tcpPeer(socket));
    live.add(connection);
    connection.onClose(() => live.delete(connection));
    onConnection(connection);
  });
  await new Promise<void>((resolve, reject) => {
    const fail = (e: NodeJS.ErrnoException): void => reject(listenError(endpoint, e));
    server.once('error', fail);
    const ready = (): void => {
      server.off('error', fail);
      resolve();
    };
    if (endpoint.kind === 'unix') server.listen(endpoint.path, ready);
    else server.listen(endpoint.port, endpoint.host, ready);
  });
  // A listening server must survive anything a client does; errors after listen() are per-socket.
  server.on('error', () => {});
  const bound = server.address();
  const address = endpoint.kind === 'unix' || bound === null || typeof bound === 'string'
    ? formatEndpoint(endpoint)
    : formatEndpoint({ kind: 'tcp', host: bound.address, port: bound.port });
  return {
    address,
    close: () => new Promise<void>((resolve) => {
      for (const c of live) c.close();
      server.close(() => resolve());
    }),
  };
}
