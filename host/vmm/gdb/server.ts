/**
 * The TCP side of `pinbox run --gdb tcp:HOST:PORT`: one client at a time (another is told so
 * and closed), its bytes handed to the stub (stub.ts), a client that goes away detached — its
 * breakpoints removed, the guest running on — and the next one welcome.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { framePacket, toHex } from './packets.js';
import type { GdbStub } from './stub.js';

/** Replies a client has not read: past the first its requests are not read, past the second it is dropped. */
export const PAUSE_UNSENT = 1 << 20;
export const MAX_UNSENT = 4 << 20;

export interface GdbEndpoint {
  readonly host: string;
  readonly port: number;
}

/** `tcp:HOST:PORT` (PORT 0: any free port), or the reason it is not one. */
export function parseGdbEndpoint(spec: string): GdbEndpoint | string {
  const m = /^tcp:(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(spec);
  if (m === null) return `--gdb takes tcp:HOST:PORT (e.g. tcp:127.0.0.1:1234), got "${spec}"`;
  const port = Number(m[2]);
  if (port > 65535) return `--gdb: port ${port} is beyond 65535`;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port };
}

export interface GdbServer {
  /** Where it listens (the port chosen when 0 was asked). */
  readonly address: GdbEndpoint;
  /** Settles when a client has connected. */
  connected(): Promise<void>;
  close(): Promise<void>;
}

export function startGdbServer(stub: GdbStub, endpoint: GdbEndpoint): Promise<GdbServer> {
  let client: Socket | undefined;
  let waiters: (() => void)[] = [];
  const server: Server = createServer((socket) => {
    if (client !== undefined) {
      socket.end(framePacket(`O${toHex('pinbox: another gdb is attached to this vCPU\n')}`));
      return;
    }
    client = socket;
    socket.setNoDelay(true);
    stub.attach({
      send: (data) => {
        if (socket.destroyed) return;
        // A client that does not read its replies is not answered without end: past
        // PAUSE_UNSENT its requests wait in its socket; past MAX_UNSENT (one chunk of requests
        // can ask for many replies at once) it is dropped, its VM running on.
        if (socket.writableLength > MAX_UNSENT) {
          socket.destroy();
          return;
        }
        socket.write(data);
        if (socket.writableLength > PAUSE_UNSENT) socket.pause();
      },
      close: () => socket.end(),
    });
    socket.on('data', (chunk: Buffer) => stub.receive(chunk));
    socket.on('drain', () => socket.resume());
    const gone = (): void => {
      if (client !== socket) return;
      client = undefined;
      if (stub.hasClient) stub.detach();
    };
    socket.on('close', gone);
    socket.on('error', gone);
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(endpoint.port, endpoint.host, () => {
      server.off('error', reject);
      const a = server.address();
      const port = typeof a === 'object' && a !== null ? a.port : endpoint.port;
      resolve({
        address: { host: endpoint.host, port },
        connected: () => (client !== undefined ? Promise.resolve() : new Promise((r) => waiters.push(r))),
        close: () => new Promise((r) => {
          client?.destroy();
          server.close(() => r());
        }),
      });
    });
  });
}
