/**
 * `pinbox serve` as a library: a guest endpoint and, optionally, a control endpoint, over any
 * of the protocol's transports, in front of one Vmm.
 *
 *   const server = await startServer({ vmm, listen: 'unix:/tmp/pinbox.sock', control: 'unix:/tmp/pinbox.ctl' });
 *   server.token;       // the control token (random unless given), also in server.tokenFile (mode 0600)
 *   await server.close();
 *
 * Limits, each answered with a `limit` error that names it: frame size (--max-frame, both
 * endpoints; the protocol answers `frame_too_large`), connections open at once over both
 * endpoints (--max-connections: a connection past it has its hello refused and is closed),
 * VMs (--max-vms, in the Vmm: a hello naming one VM too many), and the per-request guest
 * instruction budget (--budget, in the Vmm).
 */
import { ServerSession, type SessionHandler } from '../../../protocol/server-session.js';
import type { Connection } from '../../../protocol/transports/connection.js';
import { listen, type Listener } from '../../../protocol/transports/index.js';
import { parseEndpoint } from '../../../protocol/transports/endpoint.js';
import { DEFAULT_MAX_FRAME } from '../../../protocol/limits.js';
import type { Vmm } from '../vmm.js';
import { ConnectionRegistry, refusingHandler } from './connections.js';
import { ControlEndpoint } from './control-endpoint.js';
import { ControlToken, privateTokenFile } from './control-token.js';
import { ExitHolds } from './exit-holds.js';
import { GuestEndpoint } from './guest-endpoint.js';

/** Connections open at once unless configured. */
export const DEFAULT_MAX_CONNECTIONS = 256;
/** How long a refused connection may stay open without saying hello. */
const REFUSED_GRACE_MS = 5000;

export interface ServerOptions {
  readonly vmm: Vmm;
  /** Where guests connect: unix:PATH, tcp:HOST:PORT, stdio:. */
  readonly listen: string;
  /** Where control clients connect; no control endpoint if absent. */
  readonly control?: string;
  /** The control token (default: random). */
  readonly token?: string;
  /**
   * Where to write the token (mode 0600). Default: next to a unix control socket (PATH.token),
   * else in a new private directory under the system's temp dir; `false`: nowhere.
   */
  readonly tokenFile?: string | false;
  readonly maxFrame?: number;
  readonly maxConnections?: number;
}

export interface PinboxServer {
  /** The guest endpoint's address as bound (a tcp:…:0 request shows its port). */
  readonly address: string;
  readonly controlAddress: string | undefined;
  readonly token: string | undefined;
  readonly tokenFile: string | undefined;
  readonly connections: ConnectionRegistry;
  /** Stops listening, closes every connection, removes a token file it made. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<PinboxServer> {
  const { vmm } = options;
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  if (!Number.isSafeInteger(maxConnections) || maxConnections < 1) throw new RangeError(`maxConnections must be a positive whole number, got ${maxConnections}`);
  const sessionOptions = { maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME, pace: vmm.pacer };
  const connections = new ConnectionRegistry(maxConnections);
  const refuse = refusingHandler(maxConnections);

  const accept = <C>(handler: SessionHandler<C>) => (connection: Connection): void => {
    if (connections.admit(connection)) {
      new ServerSession(connection, handler, sessionOptions);
      return;
    }
    new ServerSession(connection, refuse, sessionOptions);
    setTimeout(() => connection.close(), REFUSED_GRACE_MS).unref();
  };

  let token: ControlToken | undefined;
  let tokenFile: string | undefined;
  let removeTokenFile: (() => void) | undefined;
  const holds = new ExitHolds();
  const listeners: Listener[] = [];
  try {
    listeners.push(await listen(options.listen, accept(new GuestEndpoint(vmm, connections, holds))));
    if (options.control !== undefined) {
      token = options.token === undefined ? ControlToken.random() : new ControlToken(options.token);
      if (options.tokenFile !== false) {
        const endpoint = parseEndpoint(options.control);
        if (options.tokenFile !== undefined) tokenFile = options.tokenFile;
        else if (endpoint.kind === 'unix') tokenFile = `${endpoint.path}.token`;
        else {
          const made = privateTokenFile();
          tokenFile = made.path;
          removeTokenFile = made.remove;
        }
        token.writeFile(tokenFile);
      }
      const guestEndpoints = [listeners[0]!.address];
      listeners.push(await listen(options.control, accept(new ControlEndpoint(vmm, token, connections, holds, guestEndpoints))));
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    removeTokenFile?.();
    throw e;
  }
  return {
    address: listeners[0]!.address,
    controlAddress: listeners[1]?.address,
    token: token?.value,
    tokenFile,
    connections,
    close: async () => {
      await Promise.all(listeners.map((l) => l.close()));
      removeTokenFile?.();
      vmm.log.flush();
    },
  };
}

/**
 * Serves one guest connection that did not come through a listener — one end of a memory pair
 * (a guest in this process: the examples, `pinbox demo`) or stdio.
 */
export function serveGuest(vmm: Vmm, connection: Connection, options: { maxFrame?: number } = {}): void {
  new ServerSession(connection, new GuestEndpoint(vmm, new ConnectionRegistry(1)), { maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME, pace: vmm.pacer });
}
