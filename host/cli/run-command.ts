/**
 * `pinbox run --policy FILE --image FILE [--load ADDR] [--entry ADDR] [--json] [--budget N]`:
 * boots the policy's VM, loads a flat binary or an ELF64 image into it, and runs vCPU 0 at
 * CPL0 from the entry until the program halts, faults, shuts down or spends the budget, printing
 * the events on the way and then the registers and control registers.
 */
import { readFileSync } from 'node:fs';
import { UsageError, type ParsedCommand } from './args.js';
import { backendName, cliBackend, onBackend } from './backend-option.js';
import { ImageError, loadImage, parseImage } from '../vmm/image/index.js';
import { PolicyError, loadPolicyFile } from '../vmm/policy/index.js';
import { Vmm } from '../vmm/vmm.js';
import { VmmError } from '../vmm/errors.js';
import { parseGdbEndpoint, startGdb, type GdbSession } from '../vmm/gdb/index.js';
import type { VcpuRunner } from '../vmm/run/vcpu-runner.js';
import { EVENT_NAMES, type EventName } from '../vmm/events/index.js';
import { describeFault } from '../../protocol/notation.js';
import { encodeEventLine } from '../../protocol/events/index.js';
import { eventLine, jsonLine, registerTable, type Output } from './output.js';
import { hex } from '../../protocol/notation.js';
import { chainSummary, describeChain } from '../vmm/run/triple-fault.js';

/** What `run` prints: everything but the two events every intercept and every exit make. */
const RUN_EVENTS: readonly EventName[] = EVENT_NAMES.filter((n) => n !== 'kvm_exit' && n !== 'kvm_userspace_exit');
const CONTROL_REGISTERS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] as const;

export async function runCommand(args: ParsedCommand, io: Output): Promise<number> {
  const json = args.flag('json');
  const policyFile = args.string('policy')!;
  const imageFile = args.string('image')!;
  // The gdb stub slices the run by instruction count, which only the model keeps (docs/gdb.md §6).
  if (args.has('gdb') && backendName(args) !== 'model') {
    throw new UsageError('pinbox', 'run', '--gdb needs the model backend: the stub slices the run by instruction count, which real KVM does not keep');
  }
  const support = await cliBackend(args, io, 'run');
  if (support === undefined) return 1;
  let vmm: Vmm;
  let entry: bigint;
  try {
    const policy = loadPolicyFile(policyFile);
    const bytes = new Uint8Array(readFileSync(imageFile));
    const image = parseImage(bytes, {
      memorySize: policy.memorySize,
      source: imageFile,
      ...(args.has('load') && { load: args.address('load')! }),
      ...(args.has('entry') && { entry: args.address('entry')! }),
    });
    vmm = new Vmm({ policy, policySource: policyFile, ...onBackend(support), ...(args.has('budget') && { budget: args.count('budget')! }), recordTracepoints: false });
    const machine = vmm.vm();
    loadImage(machine.memory, image, imageFile);
    entry = image.entry;
  } catch (e) {
    if (e instanceof PolicyError || e instanceof ImageError) {
      io.err(`pinbox run: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  const machine = vmm.vm();
  vmm.log.subscribe({ names: RUN_EVENTS }, (e) => io.out(json ? encodeEventLine(e) : eventLine(e)));
  if (!json) io.out(`pinbox run: ${imageFile} on VM "${machine.name}" (${machine.vcpus} vCPU${machine.vcpus > 1 ? 's' : ''}), vCPU 0 from ${hex(entry)} at CPL0\n`);
  let gdb: GdbSession | undefined;
  if (args.has('gdb')) {
    const started = await startGdbFor(args, vmm, io);
    if (typeof started === 'number') {
      vmm.close();
      return started;
    }
    gdb = started;
  }
  let outcome: Awaited<ReturnType<VcpuRunner['runInPlace']>>;
  try {
    outcome = await machine.vcpu(0).runInPlace({ entry }, gdb === undefined ? {} : { debug: gdb.stub, onExit: gdb.stub.onExit });
  } catch (e) {
    if (gdb === undefined || !(e instanceof VmmError) || e.code !== 'vm_killed') throw e;
    io.err('pinbox run: gdb killed the VM\n');
    await gdb.close();
    vmm.close();
    return 1;
  }
  const sregs = machine.getSregs(0);
  const cr = Object.fromEntries(CONTROL_REGISTERS.map((n) => [n, sregs[n]]));
  if (json) {
    io.out(jsonLine({
      name: 'stop', reason: outcome.stop, ...(outcome.fault !== undefined && { fault: outcome.fault }),
      ...(outcome.chain !== undefined && { chain: outcome.chain }), regs: outcome.regs, cr,
    }));
  } else {
    io.out(`\nstopped: ${stopText(outcome.stop, outcome.fault, outcome.regs.rip, support.backend.name === 'model')}\n`);
    if (outcome.chain !== undefined) io.out(`the exceptions that led to it: ${chainSummary(outcome.chain)}\n${describeChain(outcome.chain).map((l) => `  ${l}\n`).join('')}`);
    io.out(registerTable(outcome.regs as unknown as Record<string, bigint>));
    io.out(registerTable(cr, [['cr0', 'cr2', 'cr3', 'cr4'], ['cr8', 'efer']]));
  }
  const status = outcome.stop === 'hlt' ? 0 : 1;
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

function stopText(stop: string, fault: { vector: number; errorCode?: number } | undefined, rip: bigint, counted: boolean): string {
  switch (stop) {
    case 'hlt':
      return `the program executed HLT (RIP ${hex(rip)}, after it)`;
    case 'fault':
      return `the program raised ${describeFault(fault!)} at ${hex(rip)}, which it does not handle`;
    case 'shutdown':
      return 'the vCPU shut down (triple fault)';
    case 'budget':
      // Real KVM counts no instructions: what stopped the program there is the run's deadline.
      return counted ? `the instruction budget ran out (RIP ${hex(rip)}; --budget raises it)` : `the run's deadline passed (RIP ${hex(rip)}; real KVM counts no instructions)`;
    default:
      return stop;
  }
}

