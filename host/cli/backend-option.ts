/**
 * `--backend model|kvm` of `pinbox demo`, `run`, `serve` and `conform`: which KVM the VMM in this
 * process runs on — the model (the default, nothing native) or the machine's /dev/kvm, surveyed
 * first (host/vmm/host-survey.ts openBackend()) so that what the host lacks is answered honestly.
 * Where real KVM cannot be had (no device, no permission, no koffi, not x86-64 Linux) the command
 * says why, in the probe's words, and exits 1 (docs/real-kvm.md §5).
 */
import { BACKEND_NAMES, type BackendName } from '../kvm/api/backend.js';
import { openBackend, type HostSupport } from '../vmm/host-survey.js';
import { UsageError, type OptionSpec, type ParsedCommand } from './args.js';
import type { Output } from './output.js';

export const BACKEND_OPTION: OptionSpec = {
  name: 'backend',
  value: { kind: 'choice', choices: BACKEND_NAMES },
  placeholder: 'model|kvm',
  defaultText: 'model',
  description: 'the KVM to run on: pinbox\'s model, or this machine\'s /dev/kvm (pinbox probe tells whether it can be used)',
};

export function backendName(args: ParsedCommand): BackendName {
  return (args.string('backend') ?? 'model') as BackendName;
}

/**
 * The KVM `--backend` names, with what it can do; undefined (after saying why on stderr) where it
 * cannot be had. --budget counts guest instructions, which only the model can: with real KVM it is
 * a usage error (a run there ends at its deadline instead), never silently ignored.
 */
export async function cliBackend(args: ParsedCommand, io: Output, command: string): Promise<HostSupport | undefined> {
  const name = backendName(args);
  if (name !== 'model' && args.has('budget')) {
    throw new UsageError('pinbox', command, '--budget counts guest instructions, which only the model does: on real KVM (--backend kvm) a run ends at its deadline instead');
  }
  try {
    return await openBackend(name);
  } catch (e) {
    io.err(`pinbox ${command}: --backend ${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    return undefined;
  }
}

/** The Vmm options that put a VMM on `support`'s KVM. */
export function onBackend(support: HostSupport): { readonly backend: HostSupport['backend']; readonly host: HostSupport } {
  return { backend: support.backend, host: support };
}
