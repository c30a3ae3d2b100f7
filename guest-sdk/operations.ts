/**
 * One table of the guest operations (PROTOCOL.md §5), used by the Guest and by batches alike:
 * for each, how the caller's arguments become request params, what a result yields, and how
 * the operation is named in messages. The entries are module constants, so a call allocates no
 * closures of its own.
 */
import {
  type BatchableOp, type Exit, type Fault, KVM_REGS_FIELDS, MAX_EXEC_CODE, type Regs,
} from '../protocol/index.js';
import {
  type Cpl, type OpOptions, type U64, bytesArgument, cplOf, cplOption, crArgument, oneOfArgument,
  optionsArgument, u32Argument, u64Argument, uintArgument,
} from './arguments.js';
import { hex } from '../protocol/notation.js';
import { GuestFault, InvalidArgumentError } from './errors.js';

/**
 * What a `*Safe` operation resolves to: the value, or the guest exception it raised — with the
 * user-space exits the action caused either way (conformance tooling checks them).
 */
export type SafeResult<V> =
  | { ok: true; value: V; exits: Exit[]; exitsDropped: number }
  | { ok: false; fault: Fault; exits: Exit[]; exitsDropped: number };

export interface HypercallOptions extends OpOptions {
  /** The instruction: `vmcall` (Intel, the default) or `vmmcall` (AMD). */
  insn?: 'vmcall' | 'vmmcall';
}

/** A hypercall's arguments a0..a3 (RBX, RCX, RDX, RSI), optionally followed by options. */
export type HypercallArgs = U64[] | [...U64[], HypercallOptions];

export interface CpuidResult {
  eax: number;
  ebx: number;
  ecx: number;
  edx: number;
}

type GprName = Exclude<(typeof KVM_REGS_FIELDS)[number], 'rip' | 'rflags'>;
/** General-purpose registers to load before `exec` (the VMM places the code: no rip or rflags). */
export type ExecRegs = Partial<Record<GprName, U64>>;

export interface ExecOptions extends OpOptions {
  regs?: ExecRegs;
  /** Instructions to run at most; the stop reason is `budget` when they run out. */
  budget?: number;
}

/** What `exec` reports: why the code stopped, the registers then, the fault if it stopped on one. */
export interface ExecResult {
  stop: 'end' | 'hlt' | 'fault' | 'budget' | 'shutdown';
  regs: Regs;
  /** Present exactly when `stop` is `fault`. */
  fault?: Fault;
  exits: Exit[];
  exitsDropped?: number;
  /** What the code wrote to the serial console (the UART at 0x3f8), as UTF-8 text; absent if nothing. */
  console?: string;
  /** Console bytes beyond the MAX_EXEC_CONSOLE the result carries. */
  consoleDropped?: number;
}

type Params = Record<string, unknown>;

/** The fields every guest result has (PROTOCOL.md §5). */
export interface GuestResult {
  fault?: Fault;
  exits: Exit[];
  exitsDropped?: number;
  [value: string]: unknown;
}

export interface OpKind {
  readonly op: BatchableOp;
  /** Checks the caller's arguments and builds the request params; throws InvalidArgumentError. */
  readonly params: (a: unknown, b: unknown, c: unknown) => Params;
  /** What a result without a fault yields to the caller. */
  readonly value: (result: GuestResult) => unknown;
  /** The operation with its arguments, for messages (`rdmsr 0x10`); only called on failures. */
  readonly describe: (params: Params) => string;
  /** exec: a fault ends the code (stop "fault") and is part of the result, not a failure. */
  readonly faultIsResult?: boolean;
}

const nothing = (): undefined => undefined;
const valueField = (r: GuestResult): unknown => r.value;

export const RDMSR: OpKind = {
  op: 'rdmsr',
  params: (index, options) => ({ index: u32Argument('rdmsr', 'index', index), cpl: cplOf('rdmsr', options) }),
  value: valueField,
  describe: (p) => `rdmsr ${hex(p.index as number)}`,
};

export const WRMSR: OpKind = {
  op: 'wrmsr',
  params: (index, value, options) => ({
    index: u32Argument('wrmsr', 'index', index),
    value: u64Argument('wrmsr', 'value', value),
    cpl: cplOf('wrmsr', options),
  }),
  value: nothing,
  describe: (p) => `wrmsr ${hex(p.index as number)} value ${hex(p.value as U64)}`,
};

export const READ_CR: OpKind = {
  op: 'readCr',
  params: (cr, options) => ({ cr: crArgument('readCr', cr), cpl: cplOf('readCr', options) }),
  value: valueField,
  describe: (p) => `readCr cr${p.cr}`,
};

export const WRITE_CR: OpKind = {
  op: 'writeCr',
  params: (cr, value, options) => ({
    cr: crArgument('writeCr', cr),
    value: u64Argument('writeCr', 'value', value),
    cpl: cplOf('writeCr', options),
  }),
  value: nothing,
  describe: (p) => `writeCr cr${p.cr} value ${hex(p.value as U64)}`,
};

export const LMSW: OpKind = {
  op: 'lmsw',
  params: (value, options) => ({ value: uintArgument('lmsw', 'value', value, 0xffff), cpl: cplOf('lmsw', options) }),
  value: nothing,
  describe: (p) => `lmsw ${hex(p.value as number)}`,
};

export const CLTS: OpKind = {
  op: 'clts',
  params: (options) => ({ cpl: cplOf('clts', options) }),
  value: nothing,
  describe: () => 'clts',
};

export const CPUID: OpKind = {
  op: 'cpuid',
  // cpuid(leaf, options) is accepted as well as cpuid(leaf, subleaf, options).
  params: (leaf, subleaf, options) => {
    const optionsFirst = typeof subleaf === 'object' && subleaf !== null && options === undefined;
    return {
      leaf: u32Argument('cpuid', 'leaf', leaf),
      subleaf: optionsFirst || subleaf === undefined ? undefined : u32Argument('cpuid', 'subleaf', subleaf),
      cpl: cplOf('cpuid', optionsFirst ? subleaf : options),
    };
  },
  value: (r) => ({ eax: r.eax, ebx: r.ebx, ecx: r.ecx, edx: r.edx }),
  describe: (p) => `cpuid ${hex(p.leaf as number)}${p.subleaf === undefined ? '' : ` subleaf ${hex(p.subleaf as number)}`}`,
};

const HYPERCALL_OPTIONS = ['cpl', 'insn'] as const;
const INSNS = ['vmcall', 'vmmcall'] as const;

export const HYPERCALL: OpKind = {
  op: 'hypercall',
  params: (nr, rest) => {
    const all = rest as unknown[];
    const last = all[all.length - 1];
    const hasOptions = typeof last === 'object' && last !== null;
    const count = hasOptions ? all.length - 1 : all.length;
    if (count > 4) throw new InvalidArgumentError('hypercall', 'args', `are a0..a3 (RBX, RCX, RDX, RSI): at most 4, got ${count}`);
    const args = new Array<U64>(count);
    for (let i = 0; i < count; i++) args[i] = u64Argument('hypercall', `a${i}`, all[i]);
    const options = hasOptions ? optionsArgument<HypercallOptions>('hypercall', last, HYPERCALL_OPTIONS)! : undefined;
    return {
      nr: u64Argument('hypercall', 'nr', nr),
      args: count > 0 ? args : undefined,
      insn: options?.insn === undefined ? undefined : oneOfArgument('hypercall', 'options.insn', options.insn, INSNS),
      cpl: cplOption('hypercall', options?.cpl),
    };
  },
  value: (r) => r.ret,
  describe: (p) => {
    const args = (p.args as U64[] | undefined)?.map(hex).join(', ') ?? '';
    return `hypercall ${p.nr}(${args})${p.insn === 'vmmcall' ? ' via vmmcall' : ''}`;
  },
};

const EXEC_OPTIONS = ['regs', 'cpl', 'budget'] as const;
const GPRS: ReadonlySet<string> = new Set(KVM_REGS_FIELDS.filter((n) => n !== 'rip' && n !== 'rflags'));

function execRegs(regs: unknown): Params | undefined {
  if (regs === undefined) return undefined;
  if (regs === null || typeof regs !== 'object' || Array.isArray(regs)) {
    throw new InvalidArgumentError('exec', 'options.regs', 'must be an object mapping register names to values');
  }
  const out: Params = {};
  for (const [name, v] of Object.entries(regs)) {
    if (!GPRS.has(name)) throw new InvalidArgumentError('exec', `options.regs.${name}`, 'is not a general-purpose register');
    if (v !== undefined) out[name] = u64Argument('exec', `options.regs.${name}`, v);
  }
  return out;
}

export const EXEC: OpKind = {
  op: 'exec',
  params: (code, optionsArg) => {
    const options = optionsArgument<ExecOptions>('exec', optionsArg, EXEC_OPTIONS);
    return {
      code: bytesArgument('exec', 'code', code, 1, MAX_EXEC_CODE),
      regs: execRegs(options?.regs),
      budget: options?.budget === undefined ? undefined : u32Argument('exec', 'options.budget', options.budget),
      cpl: cplOption('exec', options?.cpl),
    };
  },
  value: (r) => r,
  describe: (p) => `exec of ${(p.code as Uint8Array).length} bytes`,
  faultIsResult: true,
};

/** Every operation by its protocol op name. */
export const KIND_BY_OP: Readonly<Record<BatchableOp, OpKind>> = {
  rdmsr: RDMSR, wrmsr: WRMSR, readCr: READ_CR, writeCr: WRITE_CR, lmsw: LMSW, clts: CLTS, cpuid: CPUID, hypercall: HYPERCALL, exec: EXEC,
};

/** `rdmsr 0x10`, or `rdmsr 0x10 at CPL 3` when the action ran in user mode. */
export function describeOperation(kind: OpKind, params: Params): string {
  const what = kind.describe(params);
  return (params.cpl as Cpl | undefined) === 3 ? `${what} at CPL 3` : what;
}

/**
 * Turns a guest result into what the caller asked for: the value, a SafeResult, or a thrown
 * GuestFault.
 */
export function settle(kind: OpKind, safe: boolean, params: Params, result: GuestResult): unknown {
  const fault = result.fault;
  if (fault !== undefined && kind.faultIsResult !== true) {
    const exitsDropped = result.exitsDropped ?? 0;
    if (safe) return { ok: false, fault, exits: result.exits, exitsDropped };
    throw new GuestFault(kind.op, describeOperation(kind, params), fault, result.exits, exitsDropped);
  }
  const value = kind.value(result);
  return safe ? { ok: true, value, exits: result.exits, exitsDropped: result.exitsDropped ?? 0 } : value;
}
