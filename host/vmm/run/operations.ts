/**
 * How each guest operation (PROTOCOL.md §5) becomes the real instruction: which boot template
 * runs it (host/vmm/boot/stubs.ts OPERATION_BYTES), which registers carry its inputs — the ones
 * the instruction reads — and which registers hold its results afterwards. One table, used for
 * every op but `exec` (exec.ts), at CPL0 and CPL3 alike.
 */
import { ProtocolError } from '../../../protocol/errors.js';
import { BATCHABLE_OPS, type BatchItem, type BatchableOp } from '../../../protocol/messages/index.js';
import { SchemaIssue } from '../../../protocol/schema/index.js';
import type { OperationName } from '../boot/index.js';
import type { Regs } from '../../kvm/api/regs.js';

/** A guest request as the protocol carries it: `{ op, ...params }` (cpl optional). */
export type GuestRequest = BatchItem;
export type TemplateOp = Exclude<BatchableOp, 'exec'>;
type RequestOf<O extends BatchableOp> = Extract<GuestRequest, { op: O }>;

const LOW32 = 0xffff_ffffn;

export interface Lowering<O extends TemplateOp> {
  /** The boot template that performs the operation. */
  template(request: RequestOf<O>): OperationName;
  /** Loads the inputs into the registers the instruction reads. */
  load(regs: Regs, request: RequestOf<O>): void;
  /** The result values from the registers, when the instruction did not fault. */
  read(regs: Regs): Record<string, bigint | number>;
}

const nothing = (): Record<string, never> => ({});
const noInputs = (): void => {};

const CR_READ: Readonly<Record<number, OperationName>> = { 0: 'readCr0', 2: 'readCr2', 3: 'readCr3', 4: 'readCr4', 8: 'readCr8' };
const CR_WRITE: Readonly<Record<number, OperationName>> = { 0: 'writeCr0', 2: 'writeCr2', 3: 'writeCr3', 4: 'writeCr4', 8: 'writeCr8' };

export const LOWERINGS: { readonly [O in TemplateOp]: Lowering<O> } = {
  // RDMSR reads ECX and returns EDX:EAX; the upper halves of RAX and RDX become 0.
  rdmsr: {
    template: () => 'rdmsr',
    load: (regs, r) => {
      regs.rcx = BigInt(r.index);
    },
    read: (regs) => {
      const rdx = regs.rdx;
      return { value: rdx === 0n ? regs.rax : (rdx << 32n) | regs.rax };
    },
  },
  // WRMSR reads ECX and EDX:EAX.
  wrmsr: {
    template: () => 'wrmsr',
    load: (regs, r) => {
      regs.rcx = BigInt(r.index);
      regs.rax = r.value & LOW32;
      regs.rdx = r.value >> 32n;
    },
    read: nothing,
  },
  readCr: {
    template: (r) => CR_READ[r.cr]!,
    load: noInputs,
    read: (regs) => ({ value: regs.rax }),
  },
  writeCr: {
    template: (r) => CR_WRITE[r.cr]!,
    load: (regs, r) => {
      regs.rax = r.value;
    },
    read: nothing,
  },
  // LMSW AX: only the low 16 bits matter; the rest of RAX is left as it is not read.
  lmsw: {
    template: () => 'lmsw',
    load: (regs, r) => {
      regs.rax = BigInt(r.value);
    },
    read: nothing,
  },
  clts: { template: () => 'clts', load: noInputs, read: nothing },
  // CPUID reads EAX (leaf) and ECX (subleaf) and writes EAX, EBX, ECX, EDX.
  cpuid: {
    template: () => 'cpuid',
    load: (regs, r) => {
      regs.rax = BigInt(r.leaf);
      regs.rcx = BigInt(r.subleaf ?? 0);
    },
    read: (regs) => ({
      eax: Number(regs.rax & LOW32),
      ebx: Number(regs.rbx & LOW32),
      ecx: Number(regs.rcx & LOW32),
      edx: Number(regs.rdx & LOW32),
    }),
  },
  // The KVM hypercall ABI: nr in RAX, a0..a3 in RBX, RCX, RDX, RSI; the return in RAX.
  hypercall: {
    template: (r) => r.insn ?? 'vmcall',
    load: (regs, r) => {
      const a = r.args ?? [];
      regs.rax = r.nr;
      regs.rbx = a[0] ?? 0n;
      regs.rcx = a[1] ?? 0n;
      regs.rdx = a[2] ?? 0n;
      regs.rsi = a[3] ?? 0n;
    },
    read: (regs) => ({ ret: regs.rax }),
  },
};

export function lowering(op: TemplateOp): Lowering<TemplateOp> {
  return LOWERINGS[op] as Lowering<TemplateOp>;
}

const OP_KEY: ReadonlySet<string> = new Set(['op']);

/**
 * Checks a guest request from an in-process caller against the protocol's own schema (what a
 * server receives was checked on the wire already): an unknown op or a bad field is an
 * `invalid_message` / `unknown_op` ProtocolError naming the field.
 */
export function parseGuestRequest(value: unknown): GuestRequest {
  try {
    if (typeof value !== 'object' || value === null) throw new ProtocolError('invalid_message', 'a guest request must be an object { op, ...params }');
    const op = (value as { op?: unknown }).op;
    if (typeof op !== 'string' || !Object.hasOwn(BATCHABLE_OPS, op)) {
      throw new ProtocolError('unknown_op', `unknown guest op ${JSON.stringify(op)} (${Object.keys(BATCHABLE_OPS).join(', ')})`, { path: 'op' });
    }
    const spec = BATCHABLE_OPS[op as BatchableOp];
    return { op, ...(spec.params.parseSkipping(value, OP_KEY) as object) } as GuestRequest;
  } catch (e) {
    if (e instanceof SchemaIssue) throw e.toProtocolError();
    throw e;
  }
}
