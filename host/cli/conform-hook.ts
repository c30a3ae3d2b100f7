/**
 * `pinbox conform`: the conformance runner (host/conform) against a target — the VMM in this
 * process without --host. The remote target (a pinbox server through the protocol) is not
 * written yet: with --host the command says so and exits 1. Another target can be put in
 * place with registerConformTarget().
 */
import type { ParsedCommand } from './args.js';
import { conform, conformOptions, type TargetFactory } from '../conform/index.js';
import { inProcessTarget } from '../vmm/conformance-target.js';
import type { Output } from './output.js';

/** Where the scenarios that come with pinbox are, from the package root. */
export const DEFAULT_SCENARIOS = ['test/conformance'];

let createTarget: TargetFactory = async (host) => {
  if (host !== undefined) throw new Error('running scenarios against a pinbox server (--host) is not supported yet; run them in-process (without --host)');
  return inProcessTarget();
};

export function registerConformTarget(factory: TargetFactory): void {
  createTarget = factory;
}

export function conformCommand(args: ParsedCommand, io: Output): Promise<number> {
  return conform(
    conformOptions(args, DEFAULT_SCENARIOS),
    { stdout: { write: (t) => io.out(t), isTTY: io.isTTY === true }, stderr: { write: (t) => io.err(t) } },
    createTarget,
  );
}
