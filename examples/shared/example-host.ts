/**
 * Where an example's guests run: a pinbox server named on the command line
 * (`--host unix:/tmp/pinbox.sock`, started with `pinbox serve --policy examples/policies/X.json`),
 * or, by default, a VMM embedded in the example's own process with the example's policy —
 * the guest still talks to it through the protocol, over an in-memory connection — on the KVM
 * model, or with `--backend kvm` on the machine's /dev/kvm (surveyed first: openBackend). With the
 * embedded VMM the example can also tell what the VMM saw (`onEvent`).
 */
import { basename } from 'node:path';
import { createMemoryPair } from '../../protocol/index.js';
import { connect, type Guest } from '../../guest-sdk/index.js';
import { openBackend, parsePolicy, serveGuest, Vmm, type CompiledPolicy, type Event, type HostSupport } from '../../host/vmm/index.js';

export interface ExampleHost {
  /** A guest on a vCPU of a VM (the policy's VM unless named). */
  guest(options?: { vm?: string; vcpu?: number }): Promise<Guest>;
  /** The embedded VMM, or undefined when the example runs against a server. */
  readonly vmm: Vmm | undefined;
  /** Where the guests run, for the example's first line. */
  readonly description: string;
  close(): void;
}

export interface ExampleHostOptions {
  /** Called with every event of the embedded VMM, as it happens. */
  onEvent?: (event: Event) => void;
  /**
   * Told, once the first guest is attached to a server (--host), which VM it got and that the
   * server's policy made it: the server's policy, not the example's, decides what the example sees.
   */
  onAttached?: (text: string) => void;
}

/** Where the guests run: a server's URL, or the embedded VMM on a KVM (default the model). */
export interface ExampleWhere {
  readonly url?: string;
  /** The embedded VMM's KVM and what it can do (openBackend). */
  readonly support?: HostSupport;
}

/** `--host URL` or `--backend model|kvm` from argv, if given. Anything else is a usage error. */
export async function exampleArguments(argv: readonly string[], name: string): Promise<ExampleWhere> {
  if (argv.length === 0) return {};
  if (argv.length === 2 && argv[0] === '--host') return { url: argv[1]! };
  if (argv.length === 2 && argv[0] === '--backend' && (argv[1] === 'model' || argv[1] === 'kvm')) return { support: await openBackend(argv[1]) };
  throw new Error(`usage: node ${name}.js [--host unix:PATH|tcp:HOST:PORT | --backend model|kvm]`);
}

/** Which VM a guest got from a server, and how it compares with the example's own policy. */
function attachedText(guest: Guest, url: string, policy: CompiledPolicy): string {
  const vcpus = guest.vcpus === undefined ? '' : `, ${guest.vcpus} vCPU${guest.vcpus > 1 ? 's' : ''}`;
  const differs = [
    guest.vcpus !== undefined && guest.vcpus !== policy.vcpus ? `${policy.vcpus} vCPU${policy.vcpus > 1 ? 's' : ''}` : '',
    guest.profile !== undefined && guest.profile !== policy.vmOptions.profile ? `Heki ABI ${policy.vmOptions.profile}` : '',
  ].filter(Boolean);
  return `The guest is attached to VM "${guest.vm}" of the pinbox server at ${url}${vcpus}${guest.profile === undefined ? '' : `, Heki ABI ${guest.profile}`}: ` +
    `the server made that VM from its own policy (pinbox serve --policy), not from this example's (VM "${policy.name}"), ` +
    'and that policy decides what the guest sees below' +
    (differs.length > 0 ? `. This example's policy asks for ${differs.join(' and ')}: expect its results to differ.` : '.');
}

export function exampleHost(policyDocument: unknown, where: ExampleWhere, options: ExampleHostOptions = {}): ExampleHost {
  const guests: Guest[] = [];
  const { url, support } = where;
  const policy = parsePolicy(policyDocument);
  if (url !== undefined) {
    let told = false;
    return {
      vmm: undefined,
      description: `the pinbox server at ${url}`,
      guest: async (o) => {
        // The example's VM name, so that the server's console and events name it as the example does.
        const g = await connect(url, { vm: policy.name, ...o });
        guests.push(g);
        if (!told) {
          told = true;
          options.onAttached?.(attachedText(g, url, policy));
        }
        return g;
      },
      close: () => guests.forEach((g) => g.close()),
    };
  }
  const vmm = new Vmm({ policy, ...(support !== undefined && { backend: support.backend, host: support }) });
  const kvm = support === undefined || support.backend.name === 'model' ? '' : `, on ${support.host.summary}`;
  const { onEvent } = options;
  if (onEvent !== undefined) vmm.log.subscribe({}, onEvent);
  return {
    vmm,
    description: `a VMM in this process (VM "${policy.name}", ${policy.vcpus} vCPU${policy.vcpus > 1 ? 's' : ''}${kvm})`,
    guest: async (o) => {
      const [guestEnd, hostEnd] = createMemoryPair();
      serveGuest(vmm, hostEnd);
      const g = await connect(guestEnd, { vm: policy.name, ...o });
      guests.push(g);
      return g;
    },
    close: () => {
      guests.forEach((g) => g.close());
      vmm.close();
    },
  };
}

/**
 * Whether this process was started to run the example `name` (its own script, built or not) —
 * and not some other program that imports it, such as `pinbox demo`.
 */
export function isMain(name: string): boolean {
  const script = process.argv[1];
  return script !== undefined && basename(script).replace(/\.[cm]?[jt]s$/, '') === name;
}

/** Runs an example's main, printing its error and exiting 1 if it fails. */
export function runMain(main: () => Promise<number>): void {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
