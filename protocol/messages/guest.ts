/**
 * Guest-role ops (PROTOCOL.md §5): each one is a guest action the VMM lowers to the real
 * instruction and runs on the attached vCPU. Every result reports the guest exception it
 * raised, if any (`fault`), and the user-space exits it caused (`exits`).
 */
import {
  type Fields, type Infer, type Optional, Schema, SchemaIssue, array, bin, describeValue, isMap, issueAt, object,
  oneOf, optional, string, u16, u32, u64,
} from '../schema/index.js';
import { cpl, exits, fault, gprsPatch, regs } from './common.js';
import { type OpRequest, OpRequestSchema } from './op-request.js';
import { type OpSpec, type ResultOfSpec, op } from './op.js';
import { type Outcome, type OutcomeSchema, outcomeSchemaFor } from './outcome.js';

/** Control registers a MOV can name. */
export const crNumber = oneOf([0, 2, 3, 4, 8]);

const guestParams = <F extends Fields>(fields: F) => object({ ...fields, cpl: optional(cpl) });

/**
 * A guest result: `values` (the instruction's outputs) are present exactly when `fault` is
 * absent — a faulting RDMSR has no value.
 */
function guestResult<F extends Fields>(values: F) {
  const valueKeys = Object.keys(values);
  return object(
    { ...values, fault: optional(fault), exits, exitsDropped: optional(u32) },
    {
      check: (r: Record<string, unknown>) => {
        const faulted = r.fault !== undefined;
        for (const k of valueKeys) {
          if (faulted && r[k] !== undefined) return issueAt(k, 'must be absent when fault is present');
          if (!faulted && r[k] === undefined) return issueAt(k, 'required unless fault is present');
        }
        return undefined;
      },
    },
  );
}
const optionalValue = <F extends Fields>(values: F) =>
  Object.fromEntries(Object.entries(values).map(([k, s]) => [k, optional(s as Schema<unknown>)])) as {
    [K in keyof F]: Optional<Infer<F[K]>>;
  };

/** The most bytes `exec` runs from one request. */
export const MAX_EXEC_CODE = 65536;
/**
 * The most bytes of serial console output an exec result carries (`console`); more are counted in
 * `consoleDropped`. Each byte becomes at most 3 bytes of UTF-8 (U+FFFD for one that is not UTF-8).
 */
export const MAX_EXEC_CONSOLE = 65536;
/** The most ops in one batch. */
export const MAX_BATCH_OPS = 4096;

const noValue = guestResult({});

/** Ops that may appear inside a batch: every guest op but hello and batch itself. */
export const BATCHABLE_OPS = {
  hypercall: op(
    'guest',
    guestParams({ nr: u64, args: optional(array(u64, 0, 4)), insn: optional(oneOf(['vmcall', 'vmmcall'])) }),
    guestResult(optionalValue({ ret: u64 })),
  ),
  rdmsr: op('guest', guestParams({ index: u32 }), guestResult(optionalValue({ value: u64 }))),
  wrmsr: op('guest', guestParams({ index: u32, value: u64 }), noValue),
  readCr: op('guest', guestParams({ cr: crNumber }), guestResult(optionalValue({ value: u64 }))),
  writeCr: op('guest', guestParams({ cr: crNumber, value: u64 }), noValue),
  lmsw: op('guest', guestParams({ value: u16 }), noValue),
  clts: op('guest', guestParams({}), noValue),
  cpuid: op(
    'guest',
    guestParams({ leaf: u32, subleaf: optional(u32) }),
    guestResult(optionalValue({ eax: u32, ebx: u32, ecx: u32, edx: u32 })),
  ),
  exec: op(
    'guest',
    guestParams({ code: bin(1, MAX_EXEC_CODE), regs: optional(gprsPatch), budget: optional(u32) }),
    object(
      {
        stop: oneOf(['end', 'hlt', 'fault', 'budget', 'shutdown']),
        regs,
        fault: optional(fault),
        exits,
        exitsDropped: optional(u32),
        console: optional(string(1, MAX_EXEC_CONSOLE * 3)),
        consoleDropped: optional(u32),
      },
      {
        check: (r) =>
          (r.stop === 'fault') !== (r.fault !== undefined)
            ? issueAt('fault', 'present exactly when stop is "fault"')
            : undefined,
      },
    ),
  ),
} satisfies Record<string, OpSpec>;

export type BatchableOp = keyof typeof BATCHABLE_OPS;
export type BatchItem = OpRequest<typeof BATCHABLE_OPS>;
export type BatchItemResult = Outcome<ResultOfSpec<(typeof BATCHABLE_OPS)[BatchableOp]>>;

const batchItem = new OpRequestSchema(BATCHABLE_OPS, 'a batch holds guest ops other than hello and batch');

/** `results[i]` answers `ops[i]`, each validated against its own op's result. */
export class BatchResultSchema extends Schema<{ results: BatchItemResult[] }> {
  readonly expected = 'a map with results';
  private readonly outcomes: OutcomeSchema<unknown>[];

  constructor(items: readonly BatchItem[]) {
    super();
    this.outcomes = items.map((item) => outcomeSchemaFor(batchItem.spec(item.op)!.resultFor(item)));
  }

  parse(v: unknown): { results: BatchItemResult[] } {
    return this.walk(v, false) as { results: BatchItemResult[] };
  }
  override wire(v: unknown): unknown {
    return this.walk(v, true);
  }

  private walk(v: unknown, toWire: boolean): { results: unknown[] } {
    if (!isMap(v)) return this.fail(v);
    for (const k of Object.keys(v)) if (k !== 'results' && v[k] !== undefined) throw issueAt(k, 'unknown field');
    const results = v.results;
    if (!Array.isArray(results) || results.length !== this.outcomes.length) {
      throw issueAt('results', `expected an array of ${this.outcomes.length} items (one per op), got ${describeValue(results)}`);
    }
    let i = 0;
    try {
      const out = results.map((r, j) => {
        i = j;
        return toWire ? this.outcomes[j]!.wire(r) : this.outcomes[j]!.parse(r);
      });
      return { results: out };
    } catch (e) {
      if (e instanceof SchemaIssue) e.segments.unshift('results', i);
      throw e;
    }
  }
}

const batchParams = object({ ops: array(batchItem, 1, MAX_BATCH_OPS) });

export const GUEST_OPS = {
  ...BATCHABLE_OPS,
  batch: {
    role: 'guest',
    params: batchParams,
    resultFor: (params: Infer<typeof batchParams>) => new BatchResultSchema(params.ops),
  } as OpSpec<{ ops: BatchItem[] }, { results: BatchItemResult[] }>,
} satisfies Record<string, OpSpec>;

export type GuestOp = keyof typeof GUEST_OPS;

