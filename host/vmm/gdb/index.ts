/**
 * A gdb stub for one vCPU (stub.ts) behind a TCP endpoint (server.ts): what `pinbox run --gdb`
 * starts. The stub keeps the VM's last events for `monitor exits`.
 */
import { eventText } from '../../../protocol/events/text.js';
import type { EventLog } from '../events/index.js';
import type { Machine } from '../machine.js';
import { startGdbServer, type GdbEndpoint, type GdbServer } from './server.js';
import { GdbStub } from './stub.js';

export { parseGdbEndpoint, type GdbEndpoint, type GdbServer } from './server.js';
export { GdbStub } from './stub.js';

/** Events `monitor exits` can show. */
const KEPT_EVENTS = 64;

export interface GdbSession {
  readonly stub: GdbStub;
  readonly server: GdbServer;
  close(): Promise<void>;
}

export async function startGdb(log: EventLog, machine: Machine, vcpu: number, endpoint: GdbEndpoint): Promise<GdbSession> {
  const recent: string[] = [];
  const unsubscribe = log.subscribe({ vm: machine.name }, (e) => {
    recent.push(eventText(e));
    if (recent.length > KEPT_EVENTS) recent.shift();
  });
  const stub = new GdbStub(machine, vcpu, () => [...recent]);
  let server: GdbServer;
  try {
    server = await startGdbServer(stub, endpoint);
  } catch (e) {
    unsubscribe();
    throw e;
  }
  return {
    stub, server,
    close: async () => {
      unsubscribe();
      await server.close();
    },
  };
}
