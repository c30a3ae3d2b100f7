/** A pinbox server in this process on unix sockets in a private temp dir, and clients for it. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ClientSession, connect as openConnection } from '../../protocol/index.js';
import { parsePolicy, startServer, Vmm, type PinboxServer, type ServerOptions, type VmmOptions } from '../../host/vmm/index.js';

export interface TestServer {
  vmm: Vmm;
  server: PinboxServer;
  dir: string;
  guestUrl: string;
  controlUrl: string;
  /** A control session, greeted with the server's token. */
  control(): Promise<ClientSession>;
  /** A session that has not said hello, on either endpoint. */
  raw(endpoint: 'guest' | 'control'): Promise<ClientSession>;
  close(): Promise<void>;
}

export async function testServer(
  policy: unknown = {},
  options: Partial<Omit<ServerOptions, 'vmm' | 'listen' | 'control'>> = {},
  vmmOptions: Partial<Omit<VmmOptions, 'policy'>> = {},
): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pbx-'));
  const vmm = new Vmm({ ...vmmOptions, policy: parsePolicy(policy) });
  const guestUrl = `unix:${join(dir, 'guest.sock')}`;
  const controlUrl = `unix:${join(dir, 'control.sock')}`;
  const server = await startServer({ vmm, listen: guestUrl, control: controlUrl, ...options });
  const sessions: ClientSession[] = [];
  const raw = async (endpoint: 'guest' | 'control'): Promise<ClientSession> => {
    const s = new ClientSession(await openConnection(endpoint === 'guest' ? guestUrl : controlUrl));
    sessions.push(s);
    return s;
  };
  return {
    vmm,
    server,
    dir,
    guestUrl,
    controlUrl,
    raw,
    control: async () => {
      const s = await raw('control');
      await s.hello({ role: 'control', token: server.token! });
      return s;
    },
    close: async () => {
      for (const s of sessions) s.close();
      await server.close();
      vmm.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Runs `body` against a fresh test server (made as testServer() makes it), closed afterwards. */
export async function withServer(
  policy: unknown,
  body: (s: TestServer) => Promise<void>,
  options?: Parameters<typeof testServer>[1],
  vmmOptions?: Parameters<typeof testServer>[2],
): Promise<void> {
  const s = await testServer(policy, options, vmmOptions);
  try {
    await body(s);
  } finally {
    await s.close();
  }
}

/** Resolves once `condition()` holds (polling; fails after 10 s): for states a test cannot await. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
