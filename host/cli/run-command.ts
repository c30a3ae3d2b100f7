/**
 * `pinbox run --policy FILE --image FILE [--load ADDR] [--entry ADDR] [--json] [--budget N]
 * [--vcpus N] [--append TEXT] [--console FILE]`: boots the policy's VM, loads a flat binary or an
 * ELF64 image into it, and runs vCPU 0 (or vCPUs 0..N-1 in turn) at CPL0 from the entry, with
 * RDI at its boot-information block (docs/boot.md §3.4), until each halts, faults, shuts down or
 * spends the budget — or one writes to the exit port — printing the serial console and the
 * events on the way, then the registers and control registers.
 */
import { readFileSync } from 'node:fs';
import { UsageError, type ParsedCommand } from './args.js';
import { backendName, cliBackend, onBackend } from './backend-option.js';
import { ImageError, loadImage, parseImage } from '../vmm/image/index.js';
import { PolicyError, loadPolicyFile, type CompiledPolicy } from '../vmm/policy/index.js';
import { Vmm } from '../vmm/vmm.js';
import { VmmError } from '../vmm/errors.js';
import { parseGdbEndpoint, startGdb, type GdbSession } from '../vmm/gdb/index.js';
import { chainSummary, describeChain } from '../vmm/run/triple-fault.js';
import { EVENT_NAMES, type EventName } from '../vmm/events/index.js';
import { bootInfoAddress, cmdlineBytes, writeBootInfo } from '../vmm/boot/index.js';
import { COM1_BASE, DEBUG_EXIT_PORT, debugExitStatus } from '../vmm/devices/index.js';
import { runInTurn, type VcpuEnd } from '../vmm/run/in-turn.js';
import { describeFault } from '../../protocol/notation.js';
import { encodeEventLine, type Event } from '../../protocol/events/index.js';
import { eventLine, jsonLine, registerTable, type Output } from './output.js';
import { hex } from '../../protocol/notation.js';
import { RunConsole } from './run-console.js';

/** What `run` prints: everything but the two events every intercept and every exit make. */
const RUN_EVENTS: readonly EventName[] = EVENT_NAMES.filter((n) => n !== 'kvm_exit' && n !== 'kvm_userspace_exit');
/** In text, the console is the guest's own output, not event lines. */
const RUN_TEXT_EVENTS: readonly EventName[] = RUN_EVENTS.filter((n) => n !== 'console');
/** How long a program may run on real KVM, which counts no instructions to bound it with: the real backend's own KVM_RUN default. */
const RUN_DEADLINE_MS = 10_000;
const CONTROL_REGISTERS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] as const;

/** --vcpus replaces the policy's vCPU count: the VM has exactly the vCPUs that run. */
function withVcpus(policy: CompiledPolicy, vcpus: number | undefined): CompiledPolicy {
  if (vcpus === undefined) return policy;
  return { ...policy, vcpus, vmOptions: { ...policy.vmOptions, vcpus } };
}

export async function runCommand(args: ParsedCommand, io: Output): Promise<number> {
  const json = args.flag('json');
  const policyFile = args.string('policy')!;
  const imageFile = args.string('image')!;
  const vcpusOption = args.has('vcpus') ? args.count('vcpus')! : undefined;
  const cmdline = args.string('append') ?? '';
  const line = cmdlineBytes(cmdline);
  if (typeof line === 'string') {
    io.err(`pinbox run: --append: ${line}\n`);
    return 2;
  }
  // The gdb stub slices the run by instruction count, which only the model keeps (docs/gdb.md §6),
  // and debugs vCPU 0 alone.
  if (args.has('gdb') && backendName(args) !== 'model') {
    throw new UsageError('pinbox', 'run', '--gdb needs the model backend: the stub slices the run by instruction count, which real KVM does not keep');
  }
  if (args.has('gdb') && (vcpusOption ?? 1) > 1) throw new UsageError('pinbox', 'run', '--gdb debugs one vCPU: it cannot be used with --vcpus above 1');
  const support = await cliBackend(args, io, 'run');
  if (support === undefined) return 1;
  if (vcpusOption !== undefined && vcpusOption > 1 && support.backend.name !== 'model') {
    // Turns are slices of counted guest instructions; real KVM counts none (docs/real-kvm.md).
    io.err(`pinbox run: --vcpus ${vcpusOption} needs the model backend: real KVM counts no guest instructions, so the vCPUs cannot take turns deterministically\n`);
    return 2;
  }
  let vmm: Vmm;
  let entry: bigint;
  let serial: RunConsole | undefined;
  try {
    const policy = withVcpus(loadPolicyFile(policyFile), vcpusOption);
    const bytes = new Uint8Array(readFileSync(imageFile));
    const image = parseImage(bytes, {
      memorySize: policy.memorySize,
      source: imageFile,
      ...(args.has('load') && { load: args.address('load')! }),
      ...(args.has('entry') && { entry: args.address('entry')! }),
    });
    // Opened before the VM is made, so that a console file that cannot be written leaves nothing to close.
    serial = new RunConsole(io, args.string('console'));
    // A program run from the command line has its budget and no exit limit: Ctrl-C ends it. On
    // the model the budget bounds it and time does not; real KVM counts no instructions, so there
    // the run has a deadline (RUN_DEADLINE_MS).
    vmm = new Vmm({
      policy, policySource: policyFile, ...onBackend(support), ...(args.has('budget') && { budget: args.count('budget')! }), recordTracepoints: false,
      devices: { debugExit: true },
      maxRequestMs: support.backend.name === 'model' ? Infinity : RUN_DEADLINE_MS, maxExits: Number.MAX_SAFE_INTEGER,
    });
    const machine = vmm.vm();
    loadImage(machine.memory, image, imageFile);
    entry = image.entry;
  } catch (e) {
    serial?.close();
    if (e instanceof PolicyError || e instanceof ImageError) {
      io.err(`pinbox run: ${e.message}\n`);
      return 2;
    }
    if ((e as NodeJS.ErrnoException).syscall === 'open') {
      io.err(`pinbox run: --console: cannot write ${args.string('console')}: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
  const machine = vmm.vm();
  const running = vcpusOption ?? 1;
  writeBootInfo(machine.memory, { vcpus: running, memorySize: machine.policy.memorySize, hekiProfile: machine.profile, cmdline });
  // With --json, stdout holds JSON Lines only: the console is in its events (and --console FILE).
  if (!json || args.has('console')) machine.devices.console.listen((_vcpu, byte) => serial.byte(byte));
  vmm.log.subscribe({ names: json ? RUN_EVENTS : RUN_TEXT_EVENTS }, (e) => {
    if (json) io.out(encodeEventLine(e));
    else if (!isDevicePio(e)) {
      serial.lineBreak();
      io.out(eventLine(e));
    }
  });
  if (!json) {
    const who = running === 1 ? 'vCPU 0' : `vCPUs 0-${running - 1} in turn`;
    io.out(`pinbox run: ${imageFile} on VM "${machine.name}" (${machine.vcpus} vCPU${machine.vcpus > 1 ? 's' : ''}), ${who} from ${hex(entry)} at CPL0\n`);
  }
  let gdb: GdbSession | undefined;
  if (args.has('gdb')) {
    const started = await startGdbFor(args, vmm, io);
    if (typeof started === 'number') {
      vmm.close();
      return started;
    }
    gdb = started;
  }
  let outcome: Awaited<ReturnType<typeof runInTurn>>;
  try {
    outcome = await runInTurn(machine, {
      entry, vcpus: running, budget: vmm.budget, regs: (v) => ({ rdi: BigInt(bootInfoAddress(v)) }),
      ...(gdb !== undefined && { perform: { debug: gdb.stub, onExit: gdb.stub.onExit } }),
    });
  } catch (e) {
    if (gdb === undefined || !(e instanceof VmmError) || e.code !== 'vm_killed') throw e;
    io.err('pinbox run: gdb killed the VM\n');
    await gdb.close();
    vmm.close();
    return 1;
  }
  machine.devices.console.flush();
  serial.close();
  for (const end of outcome.vcpus) {
    const sregs = machine.getSregs(end.vcpu);
    const cr = Object.fromEntries(CONTROL_REGISTERS.map((n) => [n, sregs[n]]));
    const exit = end.stop === 'exit' ? { exit: { value: end.exitValue!, status: debugExitStatus(end.exitValue!) } } : {};
    if (json) {
      io.out(jsonLine({
        name: 'stop', vcpu: end.vcpu, reason: end.stop, ...(end.fault !== undefined && { fault: end.fault }), ...exit,
        ...(end.chain !== undefined && { chain: end.chain }), regs: end.regs, cr,
      }));
    } else {
      io.out(`\n${running === 1 ? '' : `vCPU ${end.vcpu} `}stopped: ${stopText(end, support.backend.name === 'model')}\n`);
      if (end.chain !== undefined) io.out(`the exceptions that led to it: ${chainSummary(end.chain)}\n${describeChain(end.chain).map((l) => `  ${l}\n`).join('')}`);
      io.out(registerTable(end.regs as unknown as Record<string, bigint>));
      io.out(registerTable(cr, [['cr0', 'cr2', 'cr3', 'cr4'], ['cr8', 'efer']]));
    }
  }
  const status = outcome.exit !== undefined ? debugExitStatus(outcome.exit.value) : outcome.vcpus.every((e) => e.stop === 'hlt') ? 0 : 1;
  if (gdb !== undefined) {
    gdb.stub.finish(status);
    await gdb.close();
  }
  vmm.close();
  return status;
}

/** --gdb and --gdb-wait: the stub listening (and, with --gdb-wait, gdb connected), or an exit status. */
async function startGdbFor(args: ParsedCommand, vmm: Vmm, io: Output): Promise<GdbSession | number> {
  const endpoint = parseGdbEndpoint(args.string('gdb')!);
  if (typeof endpoint === 'string') {
    io.err(`pinbox run: ${endpoint}\n`);
    return 2;
  }
  let gdb: GdbSession;
  try {
    gdb = await startGdb(vmm.log, vmm.vm(), 0, endpoint);
  } catch (e) {
    io.err(`pinbox run: --gdb: cannot listen on ${endpoint.host}:${endpoint.port}: ${(e as Error).message}\n`);
    return 2;
  }
  const { host, port } = gdb.server.address;
  const wait = args.flag('gdb-wait');
  io.err(`pinbox run: gdb stub for vCPU 0 on tcp:${host}:${port}${wait ? ', waiting for gdb to connect' : ''}\n`);
  if (wait) {
    gdb.stub.waitAtEntry();
    await gdb.server.connected();
  }
  return gdb;
}

/** In text, the console speaks for itself: its port I/O (and the exit port's) is not listed byte by byte. */
function isDevicePio(e: Event): boolean {
  if (e.name !== 'kvm_pio') return false;
  const port = e.fields.port as number;
  return (port >= COM1_BASE && port < COM1_BASE + 8) || port === DEBUG_EXIT_PORT;
}

function stopText(end: VcpuEnd, counted: boolean): string {
  const rip = end.regs.rip;
  switch (end.stop) {
    case 'hlt':
      return `the program executed HLT (RIP ${hex(rip)}, after it)`;
    case 'fault':
      return `the program raised ${describeFault(end.fault!)} at ${hex(rip)}, which it does not handle`;
    case 'shutdown':
      return 'the vCPU shut down (triple fault)';
    case 'budget':
      return `the instruction budget ran out (RIP ${hex(rip)}; --budget raises it)`;
    case 'exit':
      return `the program wrote ${hex(end.exitValue!)} to the exit port 0xf4 at ${hex(rip)}: exit status ${debugExitStatus(end.exitValue!)}`;
    case 'running':
      return `still running at ${hex(rip)} when another vCPU ended the run`;
    case 'exception_loop':
      return `the vCPU is stuck in an exception loop: ${describeFault(end.fault!)} is delivered to ${hex(rip)} over and over, and the handler ` +
        'faults again before its first instruction retires (the program broke its IDT, its handler page or the page tables)';
    case 'exits':
      return `the program made more user-space exits than one request may (RIP ${hex(rip)})`;
    case 'time':
      // Only real KVM has a deadline here: it counts no instructions.
      return counted ? `the program ran past the time one request may take (RIP ${hex(rip)})` : `the run's deadline passed (RIP ${hex(rip)}; real KVM counts no instructions)`;
    default:
      return end.stop;
  }
}
