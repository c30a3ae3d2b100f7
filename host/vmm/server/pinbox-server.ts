/**
 * `pinbox serve` as a library: a guest endpoint and, optionally, a control endpoint, over any
 * of the protocol's transports, in front of one Vmm.
 *
 *   const server = await startServer({ vmm, listen: 'unix:/tmp/pinbox.sock', control: 'unix:/tmp/pinbox.ctl' });
 *   server.token;       // the control token (random unless given), also in server.tokenFile (mode 0600)
 *   await server.close();
 *
 * Limits, each answered with an error that names it (README "Limits" has them all with their
 * numbers): frame size (--max-frame, both endpoints; `frame_too_large`), connections open at once
 * at each endpoint (--max-connections for guests, --max-control-connections: when an endpoint is
 * full the oldest connection that has not said hello makes room, else the new one is refused),
 * VMs (--max-vms, in the Vmm), what one request may cost (--budget, --max-exits,
 * --max-request-ms, in the Vmm), answers a peer leaves unread (--max-unsent, then --drain-ms),
 * and deadlines for the hello and for the rest of a begun frame (`deadline`).
 */
import { ServerSession, type SessionHandler } from '../../../protocol/server-session.js';
import type { Connection } from '../../../protocol/transports/connection.js';
import { checkSocketFolder, listen, type Listener } from '../../../protocol/transports/index.js';
import { parseEndpoint, sameSocket } from '../../../protocol/transports/endpoint.js';
import { ProtocolError } from '../../../protocol/errors.js';
import {
  DEFAULT_DRAIN_DEADLINE_MS, DEFAULT_FRAME_DEADLINE_MS, DEFAULT_HELLO_DEADLINE_MS, DEFAULT_MAX_FRAME, DEFAULT_MAX_UNSENT,
} from '../../../protocol/limits.js';
import type { Vmm } from '../vmm.js';
import { ConnectionRegistry, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONTROL_CONNECTIONS, refusingHandler, type EndpointRole } from './connections.js';
import { ControlEndpoint } from './control-endpoint.js';
import { ControlToken, privateTokenFile, type TokenFile } from './control-token.js';
import { ExitHolds } from './exit-holds.js';
import { GuestEndpoint } from './guest-endpoint.js';
import { TokenFailures } from './token-failures.js';

export { DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONTROL_CONNECTIONS };
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
  /** Connections open at once on the guest endpoint (default 256). */
  readonly maxConnections?: number;
  /** Connections open at once on the control endpoint (default 16), apart from the guests'. */
  readonly maxControlConnections?: number;
  /** Bytes of answers a peer may leave unread before the server stops reading it (default 4 MiB). */
  readonly maxUnsent?: number;
  /** How long such a peer has to read them before it is closed (default 10 s). */
  readonly drainDeadlineMs?: number;
  /** How long a connection may go without a successful hello (default 10 s). */
  readonly helloDeadlineMs?: number;
  /** How long the rest of a begun frame may take to come (default 10 s). */
  readonly frameDeadlineMs?: number;
}

export interface PinboxServer {
  /** The guest endpoint's address as bound (a tcp:…:0 request shows its port). */
  readonly address: string;
  readonly controlAddress: string | undefined;
  readonly token: string | undefined;
  readonly tokenFile: string | undefined;
  readonly connections: ConnectionRegistry;
  /** Stops listening (removing its unix socket files), closes every connection, removes the token file it made. */
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<PinboxServer> {
  const { vmm } = options;
  const connections = new ConnectionRegistry(
    options.maxConnections ?? DEFAULT_MAX_CONNECTIONS, options.maxControlConnections ?? DEFAULT_MAX_CONTROL_CONNECTIONS,
  );
  const sessionOptions = {
    maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME,
    pace: vmm.pacer,
    maxUnsent: positive('maxUnsent', options.maxUnsent, DEFAULT_MAX_UNSENT),
    drainDeadlineMs: positive('drainDeadlineMs', options.drainDeadlineMs, DEFAULT_DRAIN_DEADLINE_MS),
    helloDeadlineMs: positive('helloDeadlineMs', options.helloDeadlineMs, DEFAULT_HELLO_DEADLINE_MS),
    frameDeadlineMs: positive('frameDeadlineMs', options.frameDeadlineMs, DEFAULT_FRAME_DEADLINE_MS),
  };
  const failures = new TokenFailures();

  const accept = <C>(handler: SessionHandler<C>, endpoint: EndpointRole) => (connection: Connection): void => {
    if (connections.admit(connection, endpoint)) {
      new ServerSession(connection, handler, sessionOptions);
      return;
    }
    new ServerSession(connection, refusingHandler(endpoint === 'guest' ? connections.max : connections.maxControl, endpoint), sessionOptions);
    setTimeout(() => connection.close(), REFUSED_GRACE_MS).unref();
  };

  // Everything is checked, and the token file made, before any socket exists: a server that
  // cannot start leaves nothing behind.
  const guestAt = parseEndpoint(options.listen);
  const controlAt = options.control === undefined ? undefined : parseEndpoint(options.control);
  if (controlAt !== undefined && sameSocket(guestAt, controlAt)) {
    throw new ProtocolError('bad_url', `the guest endpoint and the control endpoint are both ${options.listen}; they must differ`);
  }
  for (const at of [guestAt, controlAt]) if (at?.kind === 'unix') await checkSocketFolder(at.path);
  let token: ControlToken | undefined;
  let tokenFile: TokenFile | undefined;
  if (controlAt !== undefined) {
    token = options.token === undefined ? ControlToken.random() : new ControlToken(options.token);
    if (options.tokenFile !== undefined && options.tokenFile !== false) tokenFile = token.writeFile(options.tokenFile);
    else if (options.tokenFile === undefined) tokenFile = controlAt.kind === 'unix' ? token.writeFile(`${controlAt.path}.token`) : privateTokenFile(token);
  }
  const holds = new ExitHolds();
  const listeners: Listener[] = [];
  try {
    listeners.push(await listen(options.listen, accept(new GuestEndpoint(vmm, connections, holds, failures), 'guest')));
    if (options.control !== undefined) {
      const guestEndpoints = [listeners[0]!.address];
      listeners.push(await listen(options.control, accept(new ControlEndpoint(vmm, token!, connections, holds, guestEndpoints, failures), 'control')));
    }
  } catch (e) {
    await Promise.all(listeners.map((l) => l.close()));
    tokenFile?.remove();
    throw e;
  }
  return {
    address: listeners[0]!.address,
    controlAddress: listeners[1]?.address,
    token: token?.value,
    tokenFile: tokenFile?.path,
    connections,
    close: async () => {
      await Promise.all(listeners.map((l) => l.close()));
      tokenFile?.remove();
      vmm.log.flush();
    },
  };
}

function positive(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive whole number, got ${value}`);
  return value;
}

/**
 * Serves one guest connection that did not come through a listener — one end of a memory pair
 * (a guest in this process: the examples, `pinbox demo`) or stdio.
 */
export function serveGuest(vmm: Vmm, connection: Connection, options: { maxFrame?: number } = {}): void {
  new ServerSession(connection, new GuestEndpoint(vmm, new ConnectionRegistry(1)), { maxFrame: options.maxFrame ?? DEFAULT_MAX_FRAME, pace: vmm.pacer });
}
