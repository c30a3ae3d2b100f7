/**
 * `pinbox serve --listen URL [--control URL] --policy FILE [--trace FILE] [limits…]`: serves
 * the policy's VMs to guests, and to control clients holding the token, until SIGINT or
 * SIGTERM. Prints where it listens and where the token is, then one line per notable event.
 */
import { existsSync, rmSync } from 'node:fs';
import type { Endpoint, ParsedCommand } from './args.js';
import { formatEndpoint, sameSocket } from '../../protocol/transports/endpoint.js';
import { type EventName, TraceWriter, TraceWriteError } from '../vmm/events/index.js';
import { PolicyError, loadPolicyFile } from '../vmm/policy/index.js';
import { startServer } from '../vmm/server/pinbox-server.js';
import { TokenFileError } from '../vmm/server/control-token.js';
import { Vmm } from '../vmm/vmm.js';
import { cliBackend, onBackend } from './backend-option.js';
import { eventLine, type Output } from './output.js';

/** A trace file's size before it is rotated, and the rotated files kept, unless configured: at most 1 GiB on disk. */
const DEFAULT_TRACE_MAX = 256 << 20;
const DEFAULT_TRACE_KEEP = 3;

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
  const listenAt = args.endpoint('listen')!;
  const control = args.endpoint('control');
  if (control !== undefined && sameSocket(listenAt, control)) {
    io.err(`pinbox serve: --listen and --control are both ${url(listenAt)}; guests and control clients need an endpoint each\nTry 'pinbox serve --help'.\n`);
    return 2;
  }
  const support = await cliBackend(args, io, 'serve');
  if (support === undefined) return 1;
  let trace: TraceWriter | undefined;
  let traceIsNew = false;
  let vmm: Vmm;
  try {
    const policy = loadPolicyFile(policyFile);
    for (const w of policy.warnings) io.err(`pinbox serve: warning: ${w}\n`);
    const tracePath = args.string('trace');
    traceIsNew = tracePath !== undefined && !existsSync(tracePath);
    trace = tracePath === undefined ? undefined : TraceWriter.open(tracePath, {
      maxBytes: args.count('trace-max') ?? DEFAULT_TRACE_MAX,
      keep: args.count('trace-keep') ?? DEFAULT_TRACE_KEEP,
    });
    vmm = new Vmm({
      policy,
      policySource: policyFile,
      ...onBackend(support),
      ...(trace !== undefined && { trace }),
      ...(args.has('budget') && { budget: args.count('budget')! }),
      ...(args.has('max-vms') && { maxVms: args.count('max-vms')! }),
      ...(args.has('max-control-vms') && { maxControlVms: args.count('max-control-vms')! }),
      ...(args.has('guest-vms') && { guestsCreateVms: args.string('guest-vms') === 'create' }),
      ...(args.has('vm-idle-ms') && { vmIdleMs: args.count('vm-idle-ms')! === 0 ? Infinity : args.count('vm-idle-ms')! }),
      ...(args.has('max-exits') && { maxExits: args.count('max-exits')! }),
      ...(args.has('max-request-ms') && { maxRequestMs: args.count('max-request-ms')! }),
    });
  } catch (e) {
    if (e instanceof PolicyError || e instanceof TraceWriteError) {
      io.err(`pinbox serve: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  vmm.log.subscribe({ names: LOGGED_EVENTS }, (e) => io.out(eventLine(e)));
  let server;
  try {
    server = await startServer({
      vmm,
      listen: url(listenAt),
      ...(control !== undefined && { control: url(control) }),
      ...(args.has('token') && { token: args.string('token')! }),
      ...(args.has('token-file') && { tokenFile: args.string('token-file')! }),
      ...(args.has('max-frame') && { maxFrame: args.count('max-frame')! }),
      ...(args.has('max-connections') && { maxConnections: args.count('max-connections')! }),
      ...(args.has('max-control-connections') && { maxControlConnections: args.count('max-control-connections')! }),
      ...(args.has('max-unsent') && { maxUnsent: args.count('max-unsent')! }),
      ...(args.has('drain-deadline-ms') && { drainDeadlineMs: args.count('drain-deadline-ms')! }),
      ...(args.has('hello-deadline-ms') && { helloDeadlineMs: args.count('hello-deadline-ms')! }),
      ...(args.has('frame-deadline-ms') && { frameDeadlineMs: args.count('frame-deadline-ms')! }),
    });
  } catch (e) {
    io.err(e instanceof TokenFileError ? `pinbox serve: ${e.message}\n` : `pinbox serve: cannot listen: ${(e as Error).message}\n`);
    vmm.close();
    trace?.close();
    // Nothing of a server that did not start stays behind (startServer removed its sockets and token file).
    if (traceIsNew) rmSync(trace!.path, { force: true });
    return 1;
  }
  const p = vmm.policy;
  const which = vmm.guestsCreateVms ? 'and any VM a guest names' : '(guests attach only to it and to VMs control clients make)';
  io.out(`pinbox serve: policy ${policyFile}: VM "${p.name}" ${which}, ${p.vcpus} vCPU${p.vcpus > 1 ? 's' : ''}, ${p.memorySize / (1 << 20)} MiB, Heki ABI ${p.vmOptions.profile}\n`);
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
