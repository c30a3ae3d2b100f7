/**
 * `pinbox serve --listen URL [--control URL] --policy FILE [--trace FILE] [limits…]`: serves
 * the policy's VMs to guests, and to control clients holding the token, until SIGINT or
 * SIGTERM. Prints where it listens and where the token is, then one line per notable event.
 */
import type { Endpoint, ParsedCommand } from './args.js';
import { formatEndpoint } from '../../protocol/transports/endpoint.js';
import { type EventName, TraceWriter, TraceWriteError } from '../vmm/events/index.js';
import { PolicyError, loadPolicyFile } from '../vmm/policy/index.js';
import { startServer } from '../vmm/server/pinbox-server.js';
import { Vmm } from '../vmm/vmm.js';
import { cliBackend, onBackend } from './backend-option.js';
import { eventLine, type Output } from './output.js';

/** What serve prints as it happens (the trace and subscriptions have everything). */
const LOGGED_EVENTS: readonly EventName[] = [
  'vm_created', 'guest_connected', 'guest_disconnected', 'control_connected', 'heki_configure', 'heki_denial',
  'msr_filter_changed', 'vm_paused', 'vm_resumed', 'vm_killed', 'vm_reset', 'console',
];

function url(endpoint: Endpoint): string {
  return formatEndpoint(endpoint);
}

/** Runs the server until `stop` resolves; the exit code. */
export async function serveCommand(args: ParsedCommand, io: Output, stop: Promise<unknown>): Promise<number> {
  const policyFile = args.string('policy')!;
  const support = await cliBackend(args, io, 'serve');
  if (support === undefined) return 1;
  let trace: TraceWriter | undefined;
  let vmm: Vmm;
  try {
    const policy = loadPolicyFile(policyFile);
    for (const w of policy.warnings) io.err(`pinbox serve: warning: ${w}\n`);
    const tracePath = args.string('trace');
    trace = tracePath === undefined ? undefined : TraceWriter.open(tracePath);
    vmm = new Vmm({
      policy,
      policySource: policyFile,
      ...onBackend(support),
      ...(trace !== undefined && { trace }),
      ...(args.has('budget') && { budget: args.count('budget')! }),
      ...(args.has('max-vms') && { maxVms: args.count('max-vms')! }),
    });
  } catch (e) {
    if (e instanceof PolicyError || e instanceof TraceWriteError) {
      io.err(`pinbox serve: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  vmm.log.subscribe({ names: LOGGED_EVENTS }, (e) => io.out(eventLine(e)));
  const control = args.endpoint('control');
  let server;
  try {
    server = await startServer({
      vmm,
      listen: url(args.endpoint('listen')!),
      ...(control !== undefined && { control: url(control) }),
      ...(args.has('token') && { token: args.string('token')! }),
      ...(args.has('token-file') && { tokenFile: args.string('token-file')! }),
      ...(args.has('max-frame') && { maxFrame: args.count('max-frame')! }),
      ...(args.has('max-connections') && { maxConnections: args.count('max-connections')! }),
    });
  } catch (e) {
    io.err(`pinbox serve: cannot listen: ${(e as Error).message}\n`);
    trace?.close();
    return 1;
  }
  const p = vmm.policy;
  io.out(`pinbox serve: policy ${policyFile}: VM "${p.name}" and any VM a guest names, ${p.vcpus} vCPU${p.vcpus > 1 ? 's' : ''}, ${p.memorySize / (1 << 20)} MiB, Heki ABI ${p.vmOptions.profile}\n`);
  io.out(`  KVM                 ${vmm.backend.describe().summary}\n`);
  io.out(`  guests connect to   ${server.address}\n`);
  if (server.controlAddress !== undefined) {
    io.out(`  control clients to  ${server.controlAddress}\n`);
    io.out(server.tokenFile === undefined ? '  control token       given with --token\n' : `  control token in    ${server.tokenFile} (readable by its owner only)\n`);
  }
  if (trace !== undefined) io.out(`  trace (JSON Lines)  ${trace.path}\n`);
  io.out('pinbox serve: ready (Ctrl-C stops it)\n');
  await stop;
  await server.close();
  vmm.close();
  trace?.close();
  io.out('pinbox serve: stopped\n');
  return 0;
}
