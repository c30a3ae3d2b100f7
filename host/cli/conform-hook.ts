/**
 * `pinbox conform`: the conformance runner (host/conform) against a target — the VMM in this
 * process without --host; with --host, the pinbox server whose control endpoint that is
 * (host/conform/remote), with the token from --token-file (or the file serve writes beside a
 * unix socket), or --token. Another target can be put in place with
 * registerConformTarget().
 */
import { join } from 'node:path';
import { formatEndpoint } from '../../protocol/transports/endpoint.js';
import { conform, inProcessTarget, remoteTarget, type ConformOptions, type ReporterName, type TargetFactory } from '../conform/index.js';
import { openBackend } from '../vmm/host-survey.js';
import { UsageError, type ParsedCommand } from './args.js';
import { backendName } from './backend-option.js';
import { controlTarget } from './control-options.js';
import { packageRoot, shownPath } from './package-root.js';
import type { Output } from './output.js';

/**
 * The scenarios that come with pinbox (the package's `files` ship them): found from the package,
 * wherever pinbox is installed and run from; shown relative to the working directory when they
 * lie below it (as in the repository).
 */
export function defaultScenarios(): string[] {
  return [shownPath(join(packageRoot(), 'test', 'conformance'))];
}

/** The remote target for --host; else the in-process one, on the model or on /dev/kvm surveyed first (openBackend). */
let createTarget: TargetFactory = async (host, backend) => {
  if (host !== undefined) return remoteTarget({ url: formatEndpoint(host.endpoint), token: host.token });
  return backend === 'model' ? inProcessTarget() : inProcessTarget({ support: await openBackend(backend) });
};

export function registerConformTarget(factory: TargetFactory): void {
  createTarget = factory;
}

/** The options of a parsed `pinbox conform` command line. */
export function conformOptions(parsed: ParsedCommand, defaultPaths: readonly string[]): ConformOptions {
  const endpoint = parsed.endpoint('host');
  // A server has the KVM it was started on; --diff chooses both backends itself.
  const alone = (a: string, b: string) => {
    if (parsed.has(a) && parsed.has(b)) throw new UsageError('pinbox', 'conform', `--${a} and --${b} cannot be given together`);
  };
  alone('host', 'backend');
  alone('diff', 'host');
  alone('diff', 'backend');
  return {
    paths: parsed.operands.map(String),
    defaultPaths,
    reporter: (parsed.string('reporter') ?? 'pretty') as ReporterName,
    list: parsed.flag('list'),
    ...(parsed.has('backend') && { backend: backendName(parsed) }),
    ...(parsed.flag('diff') && { diff: true }),
    ...(endpoint !== undefined && { host: { endpoint, token: controlTarget(parsed).token } }),
  };
}

export function conformCommand(args: ParsedCommand, io: Output): Promise<number> {
  return conform(
    conformOptions(args, defaultScenarios()),
    { stdout: { write: (t) => io.out(t), isTTY: io.isTTY === true }, stderr: { write: (t) => io.err(t) } },
    createTarget,
  );
}
