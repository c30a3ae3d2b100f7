/**
 * `pinbox conform`: the conformance runner (host/conform) against a target — the VMM in this
 * process without --host; with --host, the pinbox server whose control endpoint that is
 * (host/conform/remote), with --token. Another target can be put in place with
 * registerConformTarget().
 */
import { formatEndpoint } from '../../protocol/transports/endpoint.js';
import { conform, inProcessTarget, remoteTarget, type ConformOptions, type ReporterName, type TargetFactory } from '../conform/index.js';
import type { ParsedCommand } from './args.js';
import type { Output } from './output.js';

/** Where the scenarios that come with pinbox are, from the package root. */
export const DEFAULT_SCENARIOS = ['test/conformance'];

let createTarget: TargetFactory = async (host) =>
  host === undefined ? inProcessTarget() : remoteTarget({ url: formatEndpoint(host.endpoint), token: host.token });

export function registerConformTarget(factory: TargetFactory): void {
  createTarget = factory;
}

/** The options of a parsed `pinbox conform` command line. */
export function conformOptions(parsed: ParsedCommand, defaultPaths: readonly string[]): ConformOptions {
  const endpoint = parsed.endpoint('host');
  const token = parsed.string('token');
  return {
    paths: parsed.operands.map(String),
    defaultPaths,
    reporter: (parsed.string('reporter') ?? 'pretty') as ReporterName,
    list: parsed.flag('list'),
    ...(endpoint !== undefined && token !== undefined && { host: { endpoint, token } }),
  };
}

export function conformCommand(args: ParsedCommand, io: Output): Promise<number> {
  return conform(
    conformOptions(args, DEFAULT_SCENARIOS),
    { stdout: { write: (t) => io.out(t), isTTY: io.isTTY === true }, stderr: { write: (t) => io.err(t) } },
    createTarget,
  );
}
