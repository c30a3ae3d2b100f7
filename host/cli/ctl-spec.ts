/**
 * `pinbox ctl OP`: one sub-command per control op of PROTOCOL.md §6, by the op's own name, with
 * its arguments (ctl-command.ts runs them). `subscribe` is `pinbox events`; `unsubscribe` has
 * nothing to do on a command line.
 */
import { KVM_REGS_FIELDS, SEGMENT_FIELDS, SREGS_CONTROL, SREGS_SEGMENTS } from '../../protocol/messages/common.js';
import type { ArgumentSpec, CommandSpec, OptionSpec } from './args.js';
import { HOST_OPTION, TOKEN_FILE_OPTION, TOKEN_OPTION } from './control-options.js';

const VM: ArgumentSpec = { name: 'vm', placeholder: 'VM', value: { kind: 'name' }, description: 'the VM, by name' };
const VCPU: ArgumentSpec = { name: 'vcpu', placeholder: 'VCPU', value: { kind: 'count', min: 0, max: 63 }, description: 'the vCPU' };
const CAP: ArgumentSpec = {
  name: 'cap',
  placeholder: 'CAP',
  value: { kind: 'string' },
  description: 'a capability, by number or by its kernel name (KVM_CAP_X86_USER_SPACE_MSR, KVM_CAP_HEKI_DENIAL…)',
};
const PROFILE: OptionSpec = {
  name: 'profile',
  value: { kind: 'choice', choices: ['v2', 'v3'] },
  placeholder: 'v2|v3',
  defaultText: 'v2',
  description: 'the Heki ABI whose numbers a Heki capability name stands for (the VM\'s profile)',
};

export const JSON_OPTION: OptionSpec = {
  name: 'json',
  description: 'print the result as JSON (events as JSON Lines), written as docs/events.md says: register and MSR values as "0x…" strings',
};

/** REG=VALUE keys of setRegs: struct kvm_regs. */
const REG_KEYS: readonly string[] = KVM_REGS_FIELDS;
/** FIELD=VALUE keys of setSregs: the control registers, gdt/idt, and SEGMENT.FIELD (booleans as 0 or 1). */
export const SREG_KEYS: readonly string[] = [
  ...SREGS_CONTROL,
  'gdt.base', 'gdt.limit', 'idt.base', 'idt.limit',
  ...SREGS_SEGMENTS.flatMap((s) => SEGMENT_FIELDS.map((f) => `${s}.${f}`)),
];

function op(name: string, summary: string, description: string, parts: Partial<Pick<CommandSpec, 'arguments' | 'operands' | 'options' | 'examples'>> = {}): CommandSpec {
  return { name, summary, description, options: parts.options ?? [], ...parts };
}

export const CTL_OPS: readonly CommandSpec[] = [
  op('stats', 'VMs, connections, uptime and requests of the server', 'The server\'s counters (PROTOCOL.md §6 stats), and its limits.'),
  op('createVm', 'make a VM, from a policy file or the server\'s policy', 'Makes VM VM from --policy FILE (a policy file, as for pinbox serve), or from the server\'s policy without one. A name in use is refused unless --replace, which destroys that VM first.', {
    arguments: [VM],
    options: [
      { name: 'policy', value: { kind: 'file' }, placeholder: 'FILE', description: 'the VM\'s policy (schema: pinbox/schema/policy.json)' },
      { name: 'replace', description: 'destroy a VM of that name first' },
      { name: 'guest-token', value: { kind: 'string' }, placeholder: 'TOKEN', description: 'only guests whose hello carries TOKEN may attach to the VM (docs/trust-model.md)' },
    ],
  }),
  op('destroyVm', 'drop a VM', 'Drops VM VM: its held exits go on and find it killed; its guests\' later requests get not_found.', { arguments: [VM] }),
  op('resetVm', 'reset a VM to what its policy makes, Heki pins cleared', 'A VM reset: guest memory and the boot image written again, every vCPU INIT and booted, capabilities and MSR filter the policy\'s, Heki pins cleared (docs/heki.md §5.4, §7).', { arguments: [VM] }),
  op('initVcpu', 'INIT one vCPU and boot it again; Heki pins stay', 'INIT (kvm_vcpu_reset) for VCPU of VM, then the boot state (docs/boot.md). An operation waiting on it is abandoned.', { arguments: [VM, VCPU] }),
  op('pauseVm', 'stop a VM running guest code until resumeVm', 'Guest operations of VM wait until resumeVm.', { arguments: [VM] }),
  op('resumeVm', 'let a paused VM run again', 'Resumes VM, paused by pauseVm or by its policy\'s onDenial "pause".', { arguments: [VM] }),
  op('snapshot', 'save a VM\'s state to a file', 'Writes the state of VM (memory, registers, MSRs, pins) to FILE, for restore.', {
    arguments: [VM, { name: 'file', placeholder: 'FILE', value: { kind: 'output-file' }, description: 'where to write the snapshot' }],
  }),
  op('restore', 'load a VM\'s state from a snapshot file', 'Loads FILE, written by snapshot, into VM; a snapshot of another shape of VM is refused whole.', {
    arguments: [VM, { name: 'file', placeholder: 'FILE', value: { kind: 'file' }, description: 'the snapshot' }],
  }),
  op('setMsrFilter', 'install an MSR filter from a JSON file (KVM_X86_SET_MSR_FILTER)', 'Installs the MSR filter FILE describes: a policy\'s msrFilter (default allow/deny and KVM\'s ranges, or allow/deny lists; see README "Policy files"), alone or inside a policy document. KVM\'s own checks answer as the kernel would; a failed install leaves the old filter. {"default": "allow"} clears the filter.', {
    arguments: [VM, { name: 'file', placeholder: 'FILE', value: { kind: 'file' }, description: 'the filter, as JSON' }],
  }),
  op('setMsrExitReply', 'how the VMM answers a VM\'s user-space MSR exits from now on', 'REPLY is error=N (and for a read data=VALUE: the value the guest gets), untouched (re-enter without writing kvm_run.msr), or policy (the VM\'s policy answers again).', {
    arguments: [VM],
    operands: { placeholder: 'REPLY', min: 1, max: 2, value: { kind: 'string' }, description: 'error=N [data=VALUE] | untouched | policy' },
  }),
  op('setCrFilter', 'install a CR filter (PINBOX_SET_CR_FILTER, a pinbox extension)', 'Installs the CR filter of VM (docs/cr-filter.md): a guest write that changes a bit of --cr0-mask or --cr4-mask exits to user space first, and the VMM answers it (setCrExitReply, or the policy\'s crFilter.answer). The install is whole or not at all: KVM\'s refusal (kvm_error EINVAL) keeps the old filter. Both masks 0 clear the filter.', {
    arguments: [VM],
    options: [
      { name: 'cr0-mask', value: { kind: 'u64' }, placeholder: 'MASK', defaultText: '0', description: 'the CR0 bits whose change exits (0x10000 is WP)' },
      { name: 'cr4-mask', value: { kind: 'u64' }, placeholder: 'MASK', defaultText: '0', description: 'the CR4 bits whose change exits (0x100000 is SMEP)' },
      { name: 'xcr0-mask', value: { kind: 'u64' }, placeholder: 'MASK', description: 'the XCR0 bits (KVM refuses any but 0: the modelled CPU has no XSETBV)' },
      { name: 'flags', value: { kind: 'count', min: 0, max: 0xffffffff }, placeholder: 'N', description: 'pinbox_cr_filter.flags (none defined: KVM refuses any bit)' },
    ],
    examples: ['pinbox ctl --host unix:/tmp/pinbox.ctl setCrFilter harden --cr0-mask 0x10000 --cr4-mask 0x300000'],
  }),
  op('setCrExitReply', 'how the VMM answers a VM\'s CR-filter exits from now on', 'REPLY is allow (the write goes on), deny (#GP(0), nothing changes), value=VALUE (the write goes on with VALUE instead), or policy (the VM\'s policy\'s crFilter.answer again).', {
    arguments: [VM],
    operands: { placeholder: 'REPLY', min: 1, max: 1, value: { kind: 'string' }, description: 'allow | deny | value=VALUE | policy' },
  }),
  op('setMemoryAttributes', 'set memory attributes on a guest-physical range (KVM_SET_MEMORY_ATTRIBUTES, pinbox\'s RWX attributes)', 'Denies the accesses --deny names on [--gpa, --gpa + --size) of VM (docs/memory-protection.md): read (KVM_MEMORY_ATTRIBUTE_PINBOX_NR), write (NW), exec (NX), userExec (NUX, with MBEC); none clears the range. The range\'s attributes are replaced, not added to. KVM\'s refusal (kvm_error EINVAL: unaligned, beyond memory, read denied without write and exec) changes nothing.', {
    arguments: [VM],
    options: [
      { name: 'gpa', value: { kind: 'u64' }, placeholder: 'ADDR', required: true, description: 'the first guest-physical address (page-aligned)' },
      { name: 'size', value: { kind: 'u64' }, placeholder: 'BYTES', required: true, description: 'bytes (a multiple of 4096)' },
      { name: 'deny', value: { kind: 'string' }, placeholder: 'LIST', required: true, description: 'read,write,exec,userExec (comma-separated), or none' },
    ],
    examples: ['pinbox ctl --host unix:/tmp/pinbox.ctl setMemoryAttributes harden --gpa 0x100000 --size 0x4000 --deny write'],
  }),
  op('getMemoryAttributes', 'show a VM\'s memory protections', 'Prints the attributes user space set on VM, the effective permissions of its guest memory (what the second stage allows, Heki\'s memory locks included) as ranges of equal rights, whether MBEC is on, and how refused accesses are delivered (exit or inject).', {
    arguments: [VM],
  }),
  op('checkExtension', 'KVM_CHECK_EXTENSION, on the system or a VM', 'Asks KVM whether it has CAP, and prints the value it answers.', {
    arguments: [CAP],
    options: [{ name: 'vm', value: { kind: 'name' }, placeholder: 'VM', description: 'ask the VM instead of the system' }, PROFILE],
  }),
  op('enableCap', 'KVM_ENABLE_CAP on a VM', 'Enables CAP on VM with ARGS (args[0..3]) and --flags.', {
    arguments: [VM, CAP],
    operands: { placeholder: 'ARG', min: 0, max: 4, value: { kind: 'address' }, description: 'args[0], args[1]… (numbers)' },
    options: [{ name: 'flags', value: { kind: 'count', min: 0, max: 0xffffffff }, placeholder: 'N', defaultText: '0', description: 'kvm_enable_cap.flags' }, PROFILE],
    examples: ['pinbox ctl --host unix:/tmp/pinbox.ctl enableCap harden KVM_CAP_X86_USER_SPACE_MSR 0x4'],
  }),
  op('getMsrs', 'KVM_GET_MSRS: read MSRs as the host does (never filtered)', 'Reads the MSRs INDEX… of VCPU; reading stops at the first MSR KVM cannot read.', {
    arguments: [VM, VCPU],
    operands: { placeholder: 'INDEX', min: 1, max: 1024, value: { kind: 'count', min: 0, max: 0xffffffff }, description: 'MSR indices' },
  }),
  op('setMsrs', 'KVM_SET_MSRS: write MSRs as the host does', 'Writes INDEX=VALUE pairs to VCPU; writing stops at the first KVM refuses.', {
    arguments: [VM, VCPU],
    operands: { placeholder: 'INDEX=VALUE', min: 1, max: 1024, value: { kind: 'assignment' }, description: 'MSR index and value' },
  }),
  op('getRegs', 'KVM_GET_REGS', 'Prints the general registers, RIP and RFLAGS of VCPU.', { arguments: [VM, VCPU] }),
  op('setRegs', 'KVM_SET_REGS: change some registers', 'Sets the registers named; the others keep their values.', {
    arguments: [VM, VCPU],
    operands: { placeholder: 'REG=VALUE', min: 1, max: REG_KEYS.length, value: { kind: 'assignment', keys: REG_KEYS }, description: `registers: ${REG_KEYS.join(' ')}` },
  }),
  op('getSregs', 'KVM_GET_SREGS', 'Prints the segment, descriptor-table and control registers of VCPU.', { arguments: [VM, VCPU] }),
  op('setSregs', 'KVM_SET_SREGS: change some system registers (not checked against Heki pins, as in the RFC)', 'Sets the fields named: cr0 cr2 cr3 cr4 cr8 efer apicBase, gdt.base gdt.limit idt.base idt.limit, and SEGMENT.FIELD (cs.selector, ss.dpl…; present, db, s, l, g, avl and unusable as 0 or 1).', {
    arguments: [VM, VCPU],
    operands: { placeholder: 'FIELD=VALUE', min: 1, max: SREG_KEYS.length, value: { kind: 'assignment', keys: SREG_KEYS }, description: 'system register fields' },
  }),
  op('holdExit', 'hold a vCPU in its next user-space exit until interrupted', 'Holds the next user-space exit of VCPU: prints the exit_held event once the vCPU sits in it, keeps it there until Ctrl-C (SIGINT or SIGTERM), then releases it and prints whether it was held. The hold ends too if the connection does.', {
    arguments: [VM, VCPU],
  }),
  op('releaseExit', 'let a held exit go on', 'Releases a hold on VCPU (made by another connection): prints whether an exit was held.', { arguments: [VM, VCPU] }),
  op('events', 'one page of the server\'s event ring', 'Prints the events the server\'s ring holds (its own events; the per-instruction tracepoint mirrors are only pushed: pinbox events follows them), from --since, and the seq to ask with next.', {
    options: [
      { name: 'vm', value: { kind: 'name' }, placeholder: 'VM', description: 'only the events of this VM' },
      { name: 'since', value: { kind: 'count', min: 0, max: Number.MAX_SAFE_INTEGER }, placeholder: 'SEQ', defaultText: '0', description: 'the first sequence number wanted' },
      { name: 'limit', value: { kind: 'count', min: 1, max: 10000 }, placeholder: 'N', defaultText: '1000', description: 'events at most' },
    ],
  }),
];

export const CTL_COMMAND: CommandSpec = {
  name: 'ctl',
  summary: 'drive a running pinbox server: every control op',
  description:
    'Runs one control op (PROTOCOL.md §6) on the pinbox server whose control endpoint --host names, with its\n' +
    'token from --token-file (by default PATH.token beside a unix:PATH endpoint, where pinbox serve writes it),\n' +
    'and prints the result. OP is the op\'s name in the protocol. subscribe is pinbox events. Exits 0 when the op\n' +
    'succeeded, 1 when the server refused it (the error names why), 2 on bad arguments.',
  options: [HOST_OPTION, TOKEN_FILE_OPTION, TOKEN_OPTION, JSON_OPTION],
  subcommands: { placeholder: 'OP', title: 'Ops', commands: CTL_OPS },
  examples: [
    'pinbox ctl --host unix:/tmp/pinbox.ctl stats',
    'pinbox ctl --host unix:/tmp/pinbox.ctl snapshot harden /tmp/harden.snap',
    'pinbox ctl --host tcp:7001 --token-file /run/pinbox/token setMsrFilter harden filter.json',
  ],
};
