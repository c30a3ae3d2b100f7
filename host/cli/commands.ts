/**
 * pinbox's commands, their options and their help texts, for args.ts. host/cli.ts dispatches
 * on the parsed command:
 *
 *   const line = parseCommandLine(process.argv.slice(2), PINBOX);   // UsageError: exit 2
 *   if (line.kind === 'help') print(line.text) ...
 *   const run = line.parsed;   run.string('policy'), run.address('entry'), run.flag('json') ...
 */
import { EVENT_NAMES } from '../../protocol/events/catalogue.js';
import type { CommandSpec, OptionSpec, ProgramSpec } from './args.js';
import { ENDPOINT, HOST_OPTION, TOKEN_FILE_OPTION, TOKEN_OPTION } from './control-options.js';
import { BACKEND_OPTION } from './backend-option.js';
import { CTL_COMMAND } from './ctl-spec.js';

/** The version `pinbox --version` prints (package.json's; a test keeps them equal). */
export const PINBOX_VERSION = '0.1.0';

/** An option whose value is a whole number from min to max. */
function count(name: string, placeholder: string, min: number, max: number, defaultText: string, description: string, requires?: readonly string[]): OptionSpec {
  return { name, value: { kind: 'count', min, max }, placeholder, defaultText, description, ...(requires !== undefined && { requires }) };
}

const BUDGET_OPTION = {
  name: 'budget',
  value: { kind: 'count', min: 1, max: Number.MAX_SAFE_INTEGER },
  placeholder: 'N',
  defaultText: '1000000',
  description: 'guest instructions one request (or one batch) may retire, a delivered fault counting as one; a guest that runs longer is stopped',
} as const;

const EVENTS_COMMAND: CommandSpec = {
  name: 'events',
  summary: 'follow a running server\'s events',
  description:
    'Prints the events of the pinbox server whose control endpoint --host names as they happen, one per line\n' +
    '(docs/events.md: text naming the VM, or with --json the JSON Lines of a trace file), until interrupted. With\n' +
    '--since, what the server\'s ring holds from that sequence number on comes first; with --no-follow, only that.\n' +
    'The HLT with which each guest operation ends in the VMM\'s own code is left out unless --completions.\n' +
    'Exits 0 when interrupted, 1 when the server cannot be reached or closes the connection.',
  options: [
    HOST_OPTION,
    TOKEN_FILE_OPTION,
    TOKEN_OPTION,
    { name: 'vm', value: { kind: 'name' }, placeholder: 'VM', description: 'only the events of this VM (it need not exist yet)' },
    { name: 'name', value: { kind: 'choice', choices: EVENT_NAMES }, placeholder: 'EVENT', repeatable: true, description: 'only events of this name (kvm_exit, heki_denial… see PROTOCOL.md §6.2)' },
    { name: 'since', value: { kind: 'count', min: 0, max: Number.MAX_SAFE_INTEGER }, placeholder: 'SEQ', description: 'first print what the ring holds from sequence number SEQ on (0: all of it)' },
    { name: 'no-follow', description: 'print what the ring holds (from --since, default 0) and stop' },
    { name: 'completions', description: 'also the HLT that ends each guest operation in the VMM\'s own code' },
    { name: 'json', description: 'one JSON object per line, as a trace file has them' },
  ],
  examples: [
    'pinbox events --host unix:/tmp/pinbox.ctl',
    'pinbox events --host unix:/tmp/pinbox.ctl --vm harden --name heki_denial --name heki_configure --json',
    'pinbox events --host tcp:7001 --token-file /run/pinbox/token --since 0 --no-follow',
  ],
};

const TRACE_COMMAND: CommandSpec = {
  name: 'trace',
  summary: 'show a trace file as trace-cmd text, or convert it for Perfetto',
  description:
    'Reads a trace file (pinbox serve --trace) and prints it as trace-cmd report would print a real KVM host\'s trace,\n' +
    'one line per event; or, with --format chrome, converts it to the Chrome trace-event JSON that Perfetto\n' +
    '(ui.perfetto.dev) and chrome://tracing open: each VM a process, each vCPU a thread, each VM exit a slice with\n' +
    'the part handled in user space nested in it, every other event an instant with its fields.',
  arguments: [{ name: 'file', placeholder: 'FILE', value: { kind: 'file' }, description: 'a trace file, JSON Lines' }],
  options: [
    { name: 'format', value: { kind: 'choice', choices: ['text', 'chrome'] }, placeholder: 'text|chrome', defaultText: 'text', description: 'trace-cmd text, or Chrome trace-event JSON' },
    { name: 'output', value: { kind: 'output-file' }, placeholder: 'FILE', description: 'write to FILE instead of standard output' },
  ],
  examples: ['pinbox trace /tmp/pinbox.jsonl | less', 'pinbox trace /tmp/pinbox.jsonl --format chrome --output /tmp/pinbox.perfetto.json'],
};

export const PINBOX: ProgramSpec = {
  name: 'pinbox',
  summary: 'a test VMM for x86 kernel hardening: KVM MSR filtering, user-space MSR exits and Heki CR pinning on a modelled x86-64 core',
  commands: [
    {
      name: 'demo',
      summary: 'a short tour of pinbox, in one process',
      description:
        'Runs the hardened-guest example (examples/harden.ts) against a VMM in this process, with the\n' +
        'example\'s policy: a guest kernel pins its control-register protections with Heki, an attacker\n' +
        'with kernel code execution tries to turn SMEP and CR0.WP off, and the guest surveys the MSRs the\n' +
        'policy filters. It tells what each step did in the guest, in KVM and in the VMM. It needs no\n' +
        'files and changes nothing on disk. With --backend kvm the VMM runs on this machine\'s /dev/kvm: a kernel\n' +
        'without Heki answers the pins with -KVM_ENOSYS (or cannot complete them), and the demo says so.\n' +
        'Exits 0 when every protection held, 1 otherwise.',
      options: [BACKEND_OPTION],
      examples: ['pinbox demo', 'pinbox demo --backend kvm'],
    },
    {
      name: 'serve',
      summary: 'run VMs for guest SDK clients and control clients',
      description:
        'Creates the VM the policy describes and serves it: guest clients (the guest SDK) connect to the\n' +
        '--listen endpoint and drive a vCPU with real instructions; control clients connect to the\n' +
        '--control endpoint to change capabilities and the MSR filter, read MSRs, subscribe to events,\n' +
        'reset, snapshot and restore VMs. A TCP endpoint binds to 127.0.0.1 unless it names a host;\n' +
        'tcp:0.0.0.0:PORT binds every interface. Runs until interrupted.',
      options: [
        { name: 'listen', value: { kind: 'endpoint' }, placeholder: ENDPOINT, required: true, description: 'where guest clients connect' },
        { name: 'control', value: { kind: 'endpoint' }, placeholder: ENDPOINT, description: 'where control clients connect (none if not given)' },
        { name: 'policy', value: { kind: 'file' }, placeholder: 'FILE', required: true, description: 'the VM\'s policy, a JSON file (schema: pinbox/schema/policy.json)' },
        {
          name: 'trace',
          value: { kind: 'output-file' },
          placeholder: 'FILE',
          description: 'also write every event to FILE as JSON Lines; each is written out before the guest\'s answer is sent, so a crash loses nothing a guest has seen answered',
        },
        { name: 'token', value: { kind: 'string' }, placeholder: 'TOKEN', requires: ['control'], description: 'the control token (default: random, 32 bytes as hex)' },
        {
          name: 'token-file',
          value: { kind: 'output-file' },
          placeholder: 'FILE',
          requires: ['control'],
          description: 'write the control token to FILE, readable by its owner only (default: CONTROL_PATH.token for a unix control socket, else a new private directory in the temp dir; printed at start)',
        },
        { name: 'max-frame', value: { kind: 'count', min: 8192, max: 0x7fffffff }, placeholder: 'BYTES', defaultText: '1048576', description: 'the largest frame either endpoint accepts or sends' },
        count('trace-max', 'BYTES', 1024, Number.MAX_SAFE_INTEGER, '268435456',
          'rotate the trace before it passes BYTES: it moves to FILE.1 and FILE begins again with a trace_rotated line that records the cut', ['trace']),
        count('trace-keep', 'N', 0, 1000, '3', 'rotated trace files kept (FILE.1 … FILE.N); the oldest beyond them is deleted', ['trace']),
        count('max-connections', 'N', 1, 65536, '256',
          'guest connections open at once; when full, the oldest that has not said hello makes room, else a new one is refused with a limit error'),
        count('max-control-connections', 'N', 1, 65536, '16', 'control connections open at once, apart from the guests\' (so an operator can always get in)', ['control']),
        count('max-vms', 'N', 1, 4096, '64', 'VMs guests may have made for them; a guest naming one more is refused with a limit error'),
        count('max-control-vms', 'N', 1, 4096, '64', 'VMs control clients may make with createVm, counted apart from the guests\''),
        {
          name: 'guest-vms',
          value: { kind: 'choice', choices: ['create', 'existing'] },
          placeholder: 'create|existing',
          defaultText: 'create',
          description: 'create: a guest naming a VM that does not exist gets one made from the policy; existing: guests attach only to the policy\'s VM and to VMs control clients made',
        },
        count('vm-idle-ms', 'MS', 0, Number.MAX_SAFE_INTEGER, '600000', 'a VM a guest made (not the policy\'s own) is dropped after MS with no guest attached; 0 never drops one'),
        count('max-unsent', 'BYTES', 8192, Number.MAX_SAFE_INTEGER, '4194304', 'answers a client may leave unread; past them the server reads nothing more from it until it reads them'),
        count('drain-deadline-ms', 'MS', 1, 0x7fffffff, '10000', 'how long a client past --max-unsent has to read its answers before it is disconnected'),
        count('hello-deadline-ms', 'MS', 1, 0x7fffffff, '10000', 'how long a connection may go without a successful hello before it is closed'),
        count('frame-deadline-ms', 'MS', 1, 0x7fffffff, '10000', 'how long the rest of a frame may take once its first byte has come'),
        BUDGET_OPTION,
        BACKEND_OPTION,
        count('max-exits', 'N', 1, 0x7fffffff, '65536', 'user-space exits one request (or one batch) may cause; exec stops with "exits", any other op fails with a limit error'),
        count('max-request-ms', 'MS', 1, 0x7fffffff, '1000',
          'milliseconds of the server\'s time one request (or one batch) may take, waits for a paused VM or a held exit not counted; exec stops with "time", any other op fails with a limit error'),
      ],
      examples: [
        'pinbox serve --listen unix:/tmp/pinbox.sock --policy policy.json',
        'pinbox serve --listen tcp:127.0.0.1:7000 --control tcp:127.0.0.1:7001 --policy policy.json --trace events.jsonl',
      ],
    },
    {
      name: 'run',
      summary: 'boot a guest image and run it until it halts',
      description:
        'Boots a flat binary or an ELF64 executable at CPL0 in 64-bit mode, with identity paging, on the\n' +
        'VM the policy describes, and runs vCPU 0 (with --vcpus, each vCPU in turn) until HLT or shutdown\n' +
        '(a triple fault), each entering with RDI at its boot-information block (docs/boot.md). Streams the\n' +
        'serial console (a 16550 UART at 0x3f8) to stdout, prints each event as it happens and, at the\n' +
        'end, the general registers and the control registers.\n' +
        'An ELF image goes where its PT_LOAD segments say: in the kernel exec area 0x100000-0x1fffff or\n' +
        'in high memory from 0x400000, where its segments get their own page rights. A flat binary is\n' +
        'loaded at --load and starts at its first byte. A fault the program does not handle itself stops it\n' +
        '(the boot IDT records it). Exits 0 when the program halts, 1 when it stops any other way (a fault,\n' +
        'a triple fault, the instruction budget, an exception loop, the run\'s deadline on real KVM), 2 on bad\n' +
        'arguments, a bad policy or a bad image, and (V << 1 | 1) & 0xff when it writes V to the exit port\n' +
        '0xf4 (QEMU\'s isa-debug-exit).',
      options: [
        { name: 'policy', value: { kind: 'file' }, placeholder: 'FILE', required: true, description: 'the VM\'s policy, a JSON file (schema: pinbox/schema/policy.json)' },
        { name: 'image', value: { kind: 'file' }, placeholder: 'FILE', required: true, description: 'the guest: an ELF64 x86-64 executable (ET_EXEC), or any other file as a flat binary' },
        { name: 'load', value: { kind: 'address' }, placeholder: 'ADDR', defaultText: '0x100000', description: 'where a flat binary is loaded' },
        { name: 'entry', value: { kind: 'address' }, placeholder: 'ADDR', description: 'where execution starts, instead of the load address or the ELF entry point' },
        { name: 'json', description: 'print the events and the final dump as JSON Lines, written as docs/events.md says (64-bit values as "0x…" strings); the last line is {"name":"stop","reason",…,"regs",…,"cr",…}' },
        { name: 'vcpus', value: { kind: 'count', min: 1, max: 64 }, placeholder: 'N', description: 'run vCPUs 0..N-1, each from the entry with its number in its boot block, in turn (10,000 instructions each); the VM has N vCPUs whatever the policy says', defaultText: '1 (vCPU 0 of the policy\'s VM)' },
        { name: 'append', value: { kind: 'string' }, placeholder: 'TEXT', description: 'the command line the boot block passes the guest (at most 4095 bytes)' },
        { name: 'console', value: { kind: 'output-file' }, placeholder: 'FILE', description: 'write the serial console to FILE, byte for byte, instead of stdout' },
        { ...BUDGET_OPTION, description: 'guest instructions each vCPU may retire; a guest that runs longer is stopped' },
        BACKEND_OPTION,
        { name: 'gdb', value: { kind: 'string' }, placeholder: 'tcp:HOST:PORT', description: 'serve gdb\'s remote protocol for vCPU 0 there (`target remote HOST:PORT`); the model backend only; see docs/gdb.md' },
        { name: 'gdb-wait', requires: ['gdb'], description: 'wait for gdb to connect, and stop before the first instruction' },
      ],
      examples: [
        'pinbox run --policy policy.json --image kernel.elf',
        'pinbox run --policy policy.json --image kernel.elf --backend kvm',
        'pinbox run --policy policy.json --image code.bin --load 0x400000 --json',
        'pinbox run --policy policy.json --image kernel.elf --gdb tcp:127.0.0.1:1234 --gdb-wait',
        'pinbox run --policy policy.json --image smp.elf --vcpus 2 --append "verbose" --console console.txt',
      ],
    },
    {
      name: 'conform',
      summary: 'run conformance scenarios against the KVM model, /dev/kvm or a pinbox server, or diff the two KVMs',
      description:
        'Runs conformance scenarios, each a file of guest actions and the results real KVM gives them\n' +
        '(from the kernel sources and selftests), and reports which pass. FILES and DIRS name scenario\n' +
        'files and folders of them; with none, runs the scenarios that come with pinbox. Scenarios run\n' +
        'in-process unless --host names a pinbox server\'s control endpoint; --backend kvm runs them on this\n' +
        'machine\'s /dev/kvm, where a scenario that needs what the host lacks (Heki, CPL0 hypercalls, ...) is\n' +
        'reported as unsupported on this host, with the reason: never a pass. --diff runs each scenario on both\n' +
        'backends and reports every step where they disagree, side by side, with the project\'s explanation\n' +
        'where it has one (docs/real-kvm.md); it exits 0 only when every divergence is explained.',
      options: [
        { ...HOST_OPTION, required: false, description: 'run against this pinbox server\'s control endpoint' },
        { ...TOKEN_FILE_OPTION, requires: ['host'] },
        { ...TOKEN_OPTION, requires: ['host'] },
        {
          name: 'reporter',
          value: { kind: 'choice', choices: ['pretty', 'tap', 'json', 'junit'] },
          placeholder: 'pretty|tap|json|junit',
          defaultText: 'pretty',
          description: 'how to report results',
        },
        { name: 'list', description: 'list the scenarios that would run, without running them' },
        BACKEND_OPTION,
        { name: 'diff', description: 'run each scenario on the model and on /dev/kvm and report where they differ (reporter pretty or json; not with --host or --backend)' },
      ],
      operands: {
        placeholder: 'FILES|DIRS',
        min: 0,
        max: Number.POSITIVE_INFINITY,
        value: { kind: 'path' },
        description: 'scenario files, or folders to search for them',
      },
      examples: ['pinbox conform', 'pinbox conform scenarios/heki --reporter tap', 'pinbox conform --host tcp:127.0.0.1:7001 --token-file /run/pinbox/token --list', 'pinbox conform --backend kvm --reporter junit', 'pinbox conform --diff'],
    },
    EVENTS_COMMAND,
    CTL_COMMAND,
    TRACE_COMMAND,
    {
      name: 'probe',
      summary: 'tell what the machine\'s KVM offers the real backend',
      description:
        'Looks at this machine\'s KVM: the device and its permissions, the vendor module (kvm_intel, kvm_amd,\n' +
        'kvm_pvm, ...), the kernel, the optional FFI package koffi, the API version and the capabilities pinbox\n' +
        'uses, and what the kernel answers at Heki\'s capability numbers. The first line is the answer: real KVM\n' +
        'is usable, or why not (not x86-64 Linux, no device, no permission, no FFI package, not a KVM device).\n' +
        'Exits 0 when the real backend is usable here, 1 when it is not.',
      options: [
        { name: 'json', description: 'print the findings as one JSON object' },
        { name: 'device', value: { kind: 'string' }, placeholder: 'PATH', defaultText: '/dev/kvm', description: 'the KVM device to look at' },
      ],
      examples: ['pinbox probe', 'pinbox probe --json'],
    },
    {
      name: 'audit',
      summary: 'which paths get past each CR-hardening mechanism of a policy',
      description:
        'For each CR-hardening mechanism the policy brings into play — Heki (as a Heki guest pins), John\n' +
        'Andersen\'s PV CR pinning (andersen), the CR filter (crFilter), the register intercepts\n' +
        '(registerIntercepts) — and each way a control-register value can change or be restored (a guest\n' +
        'MOV to CR, LMSW, CLTS, LGDT/LIDT or kexec, the host\'s KVM_SET_SREGS or KVM_SET_MSRS, INIT, a triple\n' +
        'fault and its reboot, a VM reset, a snapshot restored into a new VM), tells whether each item the\n' +
        'mechanism protects holds, is decided by user space first, or changes without user space seeing it.\n' +
        'Every answer comes from running the path on scratch VMs of the policy (docs/transitions.md).\n' +
        'Exits 0 when nothing changes unseen, 1 when something does, 2 on a bad policy.',
      options: [{ name: 'json', description: 'print the report as one JSON object' }],
      operands: { placeholder: 'POLICY', min: 1, max: 1, value: { kind: 'file' }, description: 'the policy file to audit' },
      examples: ['pinbox audit examples/policies/cr-hardening.json', 'pinbox audit policy.json --json'],
    },
  ],
};
