/**
 * `pinbox ctl OP …` (ctl-spec.ts): runs one control op through pinbox/control's ControlClient
 * and prints its result for people, or with --json as one JSON object written by
 * docs/events.md's rule (register, MSR and address values as "0x…" strings, counts as numbers;
 * events as JSON Lines). A refusal by the server is printed with its code (and errno) and exits 1.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ControlClient, type Regs, type Sregs } from '../../control/control-client.js';
import { encodeEventLine } from '../../protocol/events/index.js';
import { ProtocolError, RemoteError } from '../../protocol/errors.js';
import type { MsrExitReply, PinboxAnswer } from '../../protocol/messages/index.js';
import { hex } from '../../protocol/notation.js';
import { capabilityNames, nameOf } from '../conform/abi-names.js';
import { DENY_ATTRIBUTES, denyNames, PolicyError, parsePolicyText } from '../vmm/policy/index.js';
import { closestName } from '../vmm/policy/spelling.js';
import { UsageError, type ParsedCommand } from './args.js';
import { openControl, refusalText } from './control-options.js';
import { eventLine, jsonLine, registerTable, type Output } from './output.js';

const CLIENT = 'pinbox ctl';

interface OpContext {
  readonly ctl: ControlClient;
  readonly args: ParsedCommand;
  readonly io: Output;
  readonly json: boolean;
  readonly untilStopped: () => Promise<unknown>;
  /** A usage mistake found by the op (exit 2). */
  usage(message: string): never;
  /** Prints a result: `text` for people, `value` as JSON. */
  result(text: string, value: object): void;
}

type Op = (c: OpContext) => Promise<void>;

const vmOf = (c: OpContext): string => c.args.string('vm')!;
const vcpuOf = (c: OpContext): number => c.args.count('vcpu')!;
const done = (c: OpContext, text: string): void => c.result(text, {});

/** A capability by number, or by its kernel name (Heki names per --profile). */
function capability(c: OpContext): { cap: number; name: string } {
  const text = c.args.string('cap')!;
  const table = capabilityNames((c.args.string('profile') ?? 'v2') as 'v2' | 'v3');
  if (/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(text)) {
    const cap = Number(text);
    if (!Number.isSafeInteger(cap) || cap > 0xffffffff) c.usage(`CAP ${text} is not a 32-bit number`);
    const name = nameOf(table, cap);
    return { cap, name: name === undefined ? String(cap) : `${name} (${cap})` };
  }
  if (!Object.hasOwn(table, text)) {
    const guess = closestName(text, Object.keys(table));
    c.usage(`unknown capability '${text}'${guess ? `; did you mean '${guess}'?` : ''} (a number passes as it is)`);
  }
  return { cap: table[text]!, name: `${text} (${table[text]})` };
}

function regsJson(regs: Readonly<Record<string, bigint>>): Record<string, string> {
  return Object.fromEntries(Object.entries(regs).map(([k, v]) => [k, hex(v)]));
}

function sregsText(s: Sregs): string {
  const seg = (name: keyof Sregs): string => {
    const v = s[name] as { base: bigint; limit: number; selector: number; type: number; dpl: number; present: boolean; l: boolean; db: boolean };
    return `  ${String(name).padEnd(4)} selector ${hex(v.selector).padEnd(6)} base ${hex(v.base).padEnd(18)} limit ${hex(v.limit).padEnd(10)} type ${v.type} dpl ${v.dpl}${v.present ? ' present' : ''}${v.l ? ' l' : ''}${v.db ? ' db' : ''}\n`;
  };
  return (['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const).map(seg).join('') +
    `  gdt  base ${hex(s.gdt.base)} limit ${hex(s.gdt.limit)}\n  idt  base ${hex(s.idt.base)} limit ${hex(s.idt.limit)}\n` +
    registerTable({ cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, cr8: s.cr8, efer: s.efer, apicBase: s.apicBase }, [['cr0', 'cr2', 'cr3', 'cr4'], ['cr8', 'efer', 'apicBase']]);
}

function sregsJson(s: Sregs): object {
  return JSON.parse(JSON.stringify(s, (_, v: unknown) => (typeof v === 'bigint' ? hex(v) : v))) as object;
}

/** setSregs FIELD=VALUE…: a patch of kvm_sregs. */
function sregsPatch(c: OpContext): Record<string, unknown> {
  const patch: Record<string, Record<string, unknown> | bigint> = {};
  const booleans = new Set(['present', 'db', 's', 'l', 'g', 'avl', 'unusable']);
  for (const { key, value } of c.args.assignments()) {
    const [reg, field] = key.split('.') as [string, string | undefined];
    if (field === undefined) {
      patch[reg] = value;
      continue;
    }
    if (booleans.has(field) && value > 1n) c.usage(`${key} is 0 or 1, got ${value}`);
    const fields = (patch[reg] ??= {}) as Record<string, unknown>;
    fields[field] = booleans.has(field) ? value === 1n : field === 'base' ? value : Number(value);
  }
  return patch;
}

/** setMsrExitReply's REPLY words. */
function msrExitReply(c: OpContext): MsrExitReply | null {
  const words = c.args.operands as string[];
  if (words.length === 1 && words[0] === 'untouched') return 'untouched';
  if (words.length === 1 && words[0] === 'policy') return null;
  const parts = new Map<string, bigint>();
  for (const w of words) {
    const m = /^(error|data)=(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.exec(w);
    if (m === null || parts.has(m[1]!)) c.usage(`REPLY is error=N [data=VALUE], untouched or policy; got '${words.join(' ')}'`);
    parts.set(m![1]!, BigInt(m![2]!));
  }
  const error = parts.get('error');
  if (error === undefined || error > 255n) c.usage('REPLY needs error=N, N from 0 to 255 (the __u8 kvm_run.msr.error)');
  const data = parts.get('data') ?? 0n;
  if (data >= 1n << 64n) c.usage(`data=${data} does not fit 64 bits`);
  return { error: Number(error), data };
}

/** setCrExitReply's REPLY: allow, deny, value=VALUE, or policy (null: the policy answers again). */
function crExitReply(c: OpContext): PinboxAnswer | null {
  const word = c.args.operands[0] as string;
  if (word === 'policy') return null;
  if (word === 'allow' || word === 'deny') return { action: word };
  const m = /^value=(0x[0-9a-fA-F]+|[0-9]+)$/.exec(word);
  if (m === null) c.usage(`REPLY is allow, deny, value=VALUE or policy; got '${word}'`);
  const value = BigInt(m![1]!);
  if (value >= 1n << 64n) c.usage(`value=${m![1]} does not fit 64 bits`);
  return { action: 'value', value };
}

/** setMemoryAttributes' --deny: names as the policy's memory.protect[].deny takes them, or none. */
function denyAttributes(c: OpContext): bigint {
  const text = c.args.string('deny')!;
  if (text === 'none') return 0n;
  let attributes = 0n;
  for (const word of text.split(',')) {
    const bit = (DENY_ATTRIBUTES as Readonly<Record<string, bigint>>)[word];
    if (bit === undefined) {
      const near = closestName(word, Object.keys(DENY_ATTRIBUTES));
      c.usage(`--deny takes read, write, exec and userExec (comma-separated) or none; '${word}' is none of them${near === undefined ? '' : ` (did you mean '${near}'?)`}`);
    }
    attributes |= bit!;
  }
  return attributes;
}

/** setMsrFilter's FILE: a policy's msrFilter, alone or in a policy document. */
function msrFilterFile(c: OpContext): { flags: number; ranges: { flags: number; base: number; nmsrs: number; bitmap: Uint8Array }[] } {
  const file = c.args.string('file')!;
  const text = readFileSync(file, 'utf8');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    c.usage(`${file} is not JSON: ${(e as Error).message}`);
  }
  const policy = typeof doc === 'object' && doc !== null && 'msrFilter' in doc ? doc : { msrFilter: doc };
  try {
    const compiled = parsePolicyText(JSON.stringify(policy), file);
    return compiled.msrFilter ?? { flags: 0, ranges: [] };
  } catch (e) {
    if (e instanceof PolicyError) c.usage(e.message);
    throw e;
  }
}

const OPS: Readonly<Record<string, Op>> = {
  stats: async (c) => {
    const s = await c.ctl.stats();
    const extra = Object.fromEntries(Object.entries(s.extra ?? {}).map(([k, v]) => [k, typeof v === 'bigint' ? Number(v) : v]));
    const value = { vms: s.vms, connections: s.connections, uptimeMs: Number(s.uptimeMs), requests: Number(s.requests), extra };
    c.result(
      `VMs ${value.vms}, connections ${value.connections}, up ${(value.uptimeMs / 1000).toFixed(1)} s, ${value.requests} requests\n` +
        Object.entries(extra).map(([k, v]) => `  ${k} ${String(v)}\n`).join(''),
      value,
    );
  },
  createVm: async (c) => {
    const file = c.args.string('policy');
    const policy = file === undefined ? undefined : readFileSync(file, 'utf8');
    const guestToken = c.args.string('guest-token');
    const made = await c.ctl.createVm(vmOf(c), {
      ...(policy !== undefined && { policy }),
      ...(c.args.flag('replace') && { replace: true }),
      ...(guestToken !== undefined && { guestToken }),
    });
    c.result(`VM "${vmOf(c)}" made: ${made.vcpus} vCPU${made.vcpus > 1 ? 's' : ''}, Heki ABI ${made.profile}\n`, made);
  },
  destroyVm: async (c) => done(c, `VM "${vmOf(c)}" destroyed\n`),
  resetVm: async (c) => done(c, `VM "${vmOf(c)}" reset\n`),
  initVcpu: async (c) => done(c, `vCPU ${vcpuOf(c)} of VM "${vmOf(c)}" got INIT and the boot state\n`),
  pauseVm: async (c) => done(c, `VM "${vmOf(c)}" paused\n`),
  resumeVm: async (c) => done(c, `VM "${vmOf(c)}" resumed\n`),
  snapshot: async (c) => {
    const snap = await c.ctl.snapshot(vmOf(c));
    writeFileSync(c.args.string('file')!, snap);
    c.result(`VM "${vmOf(c)}": ${snap.length} bytes written to ${c.args.string('file')}\n`, { bytes: snap.length, file: c.args.string('file') });
  },
  restore: async (c) => {
    await c.ctl.restore(vmOf(c), new Uint8Array(readFileSync(c.args.string('file')!)));
    done(c, `VM "${vmOf(c)}" restored from ${c.args.string('file')}\n`);
  },
  setMsrFilter: async (c) => {
    const filter = msrFilterFile(c);
    await c.ctl.setMsrFilter(vmOf(c), filter);
    done(c, `VM "${vmOf(c)}": MSR filter installed (default ${filter.flags & 1 ? 'deny' : 'allow'}, ${filter.ranges.length} range${filter.ranges.length === 1 ? '' : 's'})\n`);
  },
  setMsrExitReply: async (c) => {
    const reply = msrExitReply(c);
    await c.ctl.setMsrExitReply(vmOf(c), reply);
    const how = reply === null ? 'by the policy' : reply === 'untouched' ? 'untouched (kvm_run.msr as KVM filled it)' : `with error ${reply.error}, data ${hex(reply.data ?? 0n)}`;
    done(c, `VM "${vmOf(c)}": MSR exits answered ${how}\n`);
  },
  setCrFilter: async (c) => {
    const cr0 = c.args.address('cr0-mask') ?? 0n;
    const cr4 = c.args.address('cr4-mask') ?? 0n;
    const xcr0 = c.args.address('xcr0-mask');
    const flags = c.args.count('flags');
    await c.ctl.setCrFilter(vmOf(c), { cr0, cr4, ...(xcr0 !== undefined && { xcr0 }), ...(flags !== undefined && { flags }) });
    done(c, cr0 === 0n && cr4 === 0n ? `VM "${vmOf(c)}": CR filter cleared\n` : `VM "${vmOf(c)}": CR filter installed (CR0 mask ${hex(cr0)}, CR4 mask ${hex(cr4)})\n`);
  },
  setCrExitReply: async (c) => {
    const reply = crExitReply(c);
    await c.ctl.setCrExitReply(vmOf(c), reply);
    const how = reply === null ? 'by the policy' : reply.action === 'value' ? `with the value ${hex(reply.value!)}` : `with ${reply.action}`;
    done(c, `VM "${vmOf(c)}": CR-filter exits answered ${how}\n`);
  },
  setMemoryAttributes: async (c) => {
    const address = c.args.address('gpa')!;
    const size = c.args.address('size')!;
    const attributes = denyAttributes(c);
    await c.ctl.setMemoryAttributes(vmOf(c), { address, size, attributes });
    const what = attributes === 0n ? 'no attributes' : `deny ${denyNames(attributes).join(',')} (attributes ${hex(attributes)})`;
    done(c, `VM "${vmOf(c)}": [${hex(address)}, ${hex(address + size)}) now ${what}\n`);
  },
  getMemoryAttributes: async (c) => {
    const m = await c.ctl.getMemoryAttributes(vmOf(c));
    const range = (r: { address: bigint; size: bigint }): string => `${hex(r.address)}-${hex(r.address + r.size - 1n)}`;
    const rights = (p: { read: boolean; write: boolean; exec: boolean; userExec: boolean }): string =>
      `${p.read ? 'r' : '-'}${p.write ? 'w' : '-'}${p.exec ? 'x' : '-'}${m.mbec ? (p.userExec ? 'u' : '-') : ''}`;
    const text = `VM "${vmOf(c)}": MBEC ${m.mbec ? 'on' : 'off'}, refused accesses delivered by ${m.delivery === 'exit' ? 'KVM_EXIT_MEMORY_FAULT (exit)' : '#PF (inject)'}\n` +
      `attributes set:${m.attributes.length === 0 ? ' none' : ''}\n` +
      m.attributes.map((a) => `  ${range(a)}  deny ${denyNames(a.attributes).join(',')}\n`).join('') +
      `permissions (r read, w write, x execute${m.mbec ? ', u user execute' : ''}):\n` +
      m.permissions.map((p) => `  ${range(p)}  ${rights(p)}\n`).join('');
    c.result(text, {
      mbec: m.mbec, delivery: m.delivery,
      attributes: m.attributes.map((a) => ({ address: hex(a.address), size: hex(a.size), attributes: hex(a.attributes), deny: denyNames(a.attributes) })),
      permissions: m.permissions.map((p) => ({ ...p, address: hex(p.address), size: hex(p.size) })),
    });
  },
  checkExtension: async (c) => {
    const { cap, name } = capability(c);
    const value = await c.ctl.checkExtension(cap, c.args.string('vm'));
    c.result(`${name}: ${value}\n`, { cap, value });
  },
  enableCap: async (c) => {
    const { cap, name } = capability(c);
    const args = c.args.operands as bigint[];
    await c.ctl.enableCap(vmOf(c), cap, args, c.args.count('flags') ?? 0);
    done(c, `VM "${vmOf(c)}": ${name} enabled${args.length > 0 ? ` with args ${args.map(hex).join(' ')}` : ''}\n`);
  },
  getMsrs: async (c) => {
    const entries = await c.ctl.getMsrs(vmOf(c), vcpuOf(c), c.args.operands as number[]);
    c.result(entries.map((e) => `  ${hex(e.index).padEnd(12)} ${hex(e.value)}\n`).join('') + (entries.length < c.args.operands.length ? `(KVM read ${entries.length} of ${c.args.operands.length}: it stops at the first MSR it cannot read)\n` : ''),
      { nmsrs: entries.length, entries: entries.map((e) => ({ index: hex(e.index), value: hex(e.value) })) });
  },
  setMsrs: async (c) => {
    const entries = c.args.assignments().map((a) => ({ index: Number(a.key), value: a.value }));
    const nmsrs = await c.ctl.setMsrs(vmOf(c), vcpuOf(c), entries);
    c.result(`KVM wrote ${nmsrs} of ${entries.length} MSR${entries.length === 1 ? '' : 's'}${nmsrs < entries.length ? ` (it refused ${hex(entries[nmsrs]!.index)})` : ''}\n`, { nmsrs });
  },
  getRegs: async (c) => {
    const regs = await c.ctl.getRegs(vmOf(c), vcpuOf(c));
    c.result(registerTable(regs as unknown as Record<string, bigint>), regsJson(regs as unknown as Record<string, bigint>));
  },
  setRegs: async (c) => {
    const regs = Object.fromEntries(c.args.assignments().map((a) => [a.key, a.value])) as Partial<Regs>;
    await c.ctl.setRegs(vmOf(c), vcpuOf(c), regs);
    done(c, `vCPU ${vcpuOf(c)} of VM "${vmOf(c)}": ${Object.keys(regs).join(' ')} set\n`);
  },
  getSregs: async (c) => {
    const sregs = await c.ctl.getSregs(vmOf(c), vcpuOf(c));
    c.result(sregsText(sregs), sregsJson(sregs));
  },
  setSregs: async (c) => {
    const patch = sregsPatch(c);
    await c.ctl.setSregs(vmOf(c), vcpuOf(c), patch as never);
    done(c, `vCPU ${vcpuOf(c)} of VM "${vmOf(c)}": ${c.args.assignments().map((a) => a.key).join(' ')} set\n`);
  },
  holdExit: async (c) => {
    const hold = await c.ctl.holdExit(vmOf(c), vcpuOf(c));
    if (!c.json) c.io.out(`holding the next user-space exit of vCPU ${vcpuOf(c)} of VM "${vmOf(c)}" (Ctrl-C releases it)\n`);
    const closed = new Promise<'closed'>((resolve) => c.ctl.onClose(() => resolve('closed')));
    const stopped = c.untilStopped();
    const first = await Promise.race([hold.held, stopped, closed]);
    if (first === 'closed') throw new ProtocolError('connection_closed', 'the server closed the connection');
    if (typeof first === 'object' && first !== null) {
      c.io.out(c.json ? encodeEventLine(first as Parameters<typeof encodeEventLine>[0]) : eventLine(first as Parameters<typeof eventLine>[0]));
      if ((await Promise.race([stopped, closed])) === 'closed') throw new ProtocolError('connection_closed', 'the server closed the connection');
    }
    const held = await hold.release();
    c.result(held ? 'released: the exit goes on\n' : 'released: no exit was held yet; the hold is dropped\n', { held });
  },
  releaseExit: async (c) => {
    const held = await c.ctl.releaseExit(vmOf(c), vcpuOf(c));
    c.result(held ? 'released: the exit goes on\n' : 'no exit was held; a hold not yet caught is dropped\n', { held });
  },
  events: async (c) => {
    const vm = c.args.string('vm');
    const page = await c.ctl.events({ ...(vm !== undefined && { vm }), since: BigInt(c.args.count('since') ?? 0), limit: c.args.count('limit') ?? 1000 });
    for (const e of page.events) c.io.out(c.json ? encodeEventLine(e) : eventLine(e));
    if (c.json) c.io.out(jsonLine({ next: Number(page.next) }));
    else c.io.out(`next: --since ${page.next}\n`);
  },
};

/** Ops whose work is one call with the VM (and vCPU) arguments, named by their message. */
const SIMPLE: Readonly<Record<string, (ctl: ControlClient, vm: string, vcpu: number) => Promise<unknown>>> = {
  destroyVm: (ctl, vm) => ctl.destroyVm(vm),
  resetVm: (ctl, vm) => ctl.resetVm(vm),
  initVcpu: (ctl, vm, vcpu) => ctl.initVcpu(vm, vcpu),
  pauseVm: (ctl, vm) => ctl.pauseVm(vm),
  resumeVm: (ctl, vm) => ctl.resumeVm(vm),
};

export async function ctlCommand(args: ParsedCommand, io: Output, untilStopped: () => Promise<unknown>): Promise<number> {
  const name = args.subcommand!;
  const command = `ctl ${name}`;
  const ctl = await openControl(args, io, CLIENT);
  if (ctl === undefined) return 1;
  const json = args.flag('json');
  const c: OpContext = {
    ctl, args, io, json, untilStopped,
    usage: (message) => {
      throw new UsageError('pinbox', command, message);
    },
    result: (text, value) => io.out(json ? jsonLine(value) : text),
  };
  try {
    const simple = SIMPLE[name];
    if (simple !== undefined) await simple(ctl, args.string('vm')!, args.count('vcpu') ?? 0);
    await OPS[name]!(c);
    return 0;
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    // A request the protocol's own checks refused before sending is a usage mistake.
    if (!(e instanceof RemoteError) && e.code === 'invalid_message') throw new UsageError('pinbox', command, e.message);
    io.err(`pinbox ${command}: ${refusalText(e)}\n`);
    return 1;
  } finally {
    ctl.close();
  }
}
