/**
 * The conformance runner's remote target (target.ts, "Remote"): scenarios against a running
 * `pinbox serve`, reached at its control endpoint with its token.
 *
 *   const target = await remoteTarget({ url: 'unix:/tmp/pinbox.ctl', token });
 *   await runSuite(files, target);     // each scenario on a VM of its own, made with createVm
 *   await target.close();
 *
 * One control connection carries every host operation, the answers to MSR exits and the holds
 * (PROTOCOL.md §6); it subscribes to `exit_held`. The guest endpoint is the one the control
 * hello names (`guestEndpoints`). Each scenario's VM is made with `createVm` from
 * `scenarioPolicy(vm)` — the same policy the in-process target uses, so both start from KVM's
 * initial state: every capability 0, no MSR filter, no pins, every vCPU booted — under a name
 * no other run uses, and dropped with `destroyVm` when the scenario ends.
 */
import { randomBytes } from 'node:crypto';
import { ClientSession } from '../../../protocol/client-session.js';
import { connect } from '../../../protocol/transports/index.js';
import type { Connection } from '../../../protocol/transports/connection.js';
import type { ScenarioTarget, TargetVm } from '../target.js';
import { scenarioPolicy, type ScenarioVm } from '../vm-block.js';
import { guestEndpointUrl } from './guest-endpoint-url.js';
import { HELD_EVENT, HeldExits } from './held-exits.js';
import { RemoteVm } from './remote-vm.js';

export interface RemoteTargetOptions {
  /** The server's control endpoint: unix:PATH, tcp:HOST:PORT. */
  readonly url: string;
  readonly token: string;
  /** How connections are opened (default: the protocol's connect()). */
  readonly connect?: (url: string) => Promise<Connection>;
}

const CLIENT = 'pinbox conform';

async function greeted(
  open: (url: string) => Promise<Connection>, url: string, hello: Parameters<ClientSession['hello']>[0],
): Promise<{ session: ClientSession; result: Awaited<ReturnType<ClientSession['hello']>> }> {
  const session = new ClientSession(await open(url));
  try {
    return { session, result: await session.hello(hello) };
  } catch (e) {
    session.close();
    throw e;
  }
}

export async function remoteTarget(options: RemoteTargetOptions): Promise<ScenarioTarget> {
  const open = options.connect ?? connect;
  const { url } = options;
  const { session: control, result } = await greeted(open, url, { role: 'control', token: options.token, client: CLIENT });
  let guestUrl: string;
  let held: HeldExits;
  try {
    guestUrl = guestEndpointUrl(url, result.guestEndpoints);
    const { sub } = await control.request('subscribe', { events: [HELD_EVENT] });
    held = new HeldExits(control, sub);
  } catch (e) {
    control.close();
    throw e;
  }
  const context = {
    control,
    held,
    openGuest: async (vm: string, vcpu: number) => (await greeted(open, guestUrl, { role: 'guest', vm, vcpu, client: CLIENT })).session,
    // The scenario's register intercepts are set, and answered, as the VM's monitor would.
    openMonitor: async (vm: string) => (await greeted(open, url, { role: 'monitor', vm, token: options.token, client: CLIENT })).session,
  };
  // A name per run, so that runs against one server never meet.
  const run = randomBytes(4).toString('hex');
  let made = 0;
  return {
    description: url,
    createVm: async (vm: ScenarioVm): Promise<TargetVm> => {
      const name = `conform-${run}-${++made}`;
      const created = await control.request('createVm', { vm: name, policy: JSON.stringify(scenarioPolicy(vm)) });
      if (created.vcpus !== vm.vcpus || created.profile !== vm.profile) {
        await control.request('destroyVm', { vm: name });
        throw new Error(`the server made VM "${name}" with ${created.vcpus} vCPUs and Heki ABI ${created.profile}; the scenario asks for ${vm.vcpus} and ${vm.profile}`);
      }
      return new RemoteVm(context, name, vm.profile);
    },
    close: async () => control.close(),
  };
}
