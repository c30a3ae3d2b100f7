/**
 * Block translation: a hot block becomes one JavaScript function (`new Function`) covering the
 * trace that starts there (trace.ts), as v86 turns hot code into wasm. The instruction table's
 * `jit` column says how each instruction is emitted: inline (forms.ts: register and TLB
 * accesses, lazy flags kept in locals with dead-flag elimination, conditions as comparisons),
 * linked into the trace (relative JMP, Jcc, CALL, RET), or as a call to its interpreter
 * handler — so a translated trace always does exactly what the interpreter does. A trace whose
 * last instruction branches back to its start becomes a loop inside the function, with the
 * budget checked on each iteration.
 *
 * Bookkeeping, as in the interpreter: the trace's instructions are counted as retired up front
 * (per iteration) and the count corrected on every early way out; `k` names the instruction
 * that may fault, so the catch can put RIP on it and store the flags and registers as they were
 * there; flags and registers, kept in locals, reach the CPU wherever something could observe
 * them (emitter.ts).
 */
import type { Block } from '../block.js';
import type { CpuCore } from '../core.js';
import type { Insn } from '../decode/insn.js';
import type { OpcodeEntry } from '../decode/table-types.js';
import { linearAddress } from '../execute/address.js';
import { raiseGP, raiseSS } from '../fault.js';
import { FLAGS_ARITH, getCF, testCondition } from '../flags.js';
import { read16, read32, read64, read8, write16, write32, write64, write8 } from '../mmu/access.js';
import { conditionOf, Emitter, type PendingFlags } from './emitter.js';
import { branchTarget, emitCallPush, emitCanonicalCheck, emitPredictedRet, emitRetPop } from './emit-flow.js';
import { INLINE_FORMS, isBranchForm } from './forms.js';
import { buildTrace, type Slot } from './trace.js';

/** Interpreted executions of a block before it is translated (its next run is translated). */
export const JIT_THRESHOLD = 16;

/**
 * Instructions a translated loop runs per call before it returns to the dispatcher (which calls
 * it again at once). V8 then optimises the function as a whole, from feedback that covers its
 * entry — a loop that ran for the whole budget in one call would run as on-stack-replaced code,
 * which V8 compiles from the loop alone and which was measured 2–3 times slower here.
 */
export const LOOP_SLICE = 2048;

/** A translated trace, called with the CPU, its RIP (the trace's first instruction) and c.retired. */
export type CompiledBlock = (c: CpuCore, rip: number, retired: number) => void;

function nonCanonical(c: CpuCore, stack: boolean): never {
  return stack ? raiseSS(c, 0) : raiseGP(c, 0);
}

const HELPER_NAMES = [
  'read8', 'read16', 'read32', 'read64', 'write8', 'write16', 'write32', 'write64', 'linearAddress', 'nonCanonical',
  'raiseGP', 'getCF', 'testCondition',
] as const;
const HELPERS = [read8, read16, read32, read64, write8, write16, write32, write64, linearAddress, nonCanonical, raiseGP,
  getCF, testCondition];

/** Inline forms that take the flags they read from the pending record themselves. */
const READS_PENDING = new Set(['jcc', 'cmov', 'incdec']);

/**
 * The arithmetic flags an instruction needs before it runs, from the table's flag columns: those
 * it reads, and — when it writes some but not all (INC, DEC) — those it keeps.
 */
export function flagsNeeded(entry: OpcodeEntry): number {
  const written = entry.flagsWritten & FLAGS_ARITH;
  const kept = written !== 0 ? FLAGS_ARITH & ~written : 0;
  return (entry.flagsRead | kept) & FLAGS_ARITH;
}

/** Calls the interpreter's handler for an instruction the translator does not inline. */
function emitHandlerCall(e: Emitter, i: Insn, last: boolean): void {
  e.emit(`c.rip = base + ${e.at};`);
  e.handlerCall(i);
  if (!last) {
    e.handlerCheck();
    return;
  }
  if (i.entry.flow === 'stop') e.emit('if (c.stop !== null) { c.retired--; return; }');
  if (i.entry.flow !== 'branch') e.exit(`base + ${e.at + i.len}`, e.count);
  else e.emit('return;');
}

/**
 * An inline form's flags record must agree with the table: an instruction that writes
 * arithmetic flags (unless only for a non-zero count) leaves a new record, one that writes none
 * leaves the pending one alone. A translator bug, caught when the form is compiled.
 */
function checkFlagsRecord(entry: OpcodeEntry, before: PendingFlags | null, after: PendingFlags | null): void {
  const writes = (entry.flagsWritten & FLAGS_ARITH) !== 0;
  const recorded = after !== null && after !== before; // (a form may store the pending record: after is null then)
  if (writes && !entry.flagsConditional && !recorded) throw new Error(`jit: the ${entry.jit} form left no flags record for ${entry.name}`);
  if (!writes && recorded) throw new Error(`jit: the ${entry.jit} form recorded flags for ${entry.name}, which writes none`);
}

/** Whether the trace is a loop: it ends in a relative JMP or Jcc back to its first instruction. */
function isLoop(slots: readonly Slot[]): boolean {
  const s = slots[slots.length - 1]!;
  const form = s.insn.entry.jit;
  return (form === 'jmp' || form === 'jcc') && s.at + s.insn.len + s.insn.imm === 0;
}

/**
 * A branch of the trace: followed (the next slot is where it goes), looping back to the start
 * (the trace's last slot, when it is a loop), or leaving the trace.
 */
function emitBranch(e: Emitter, s: Slot, following: number | null): void {
  const i = s.insn;
  const done = e.index + 1;
  switch (i.entry.jit) {
    case 'jmp': {
      const t = branchTarget(e, i);
      if (t === following || (t === 0 && following === null)) return;
      exitTo(e, t, done);
      return;
    }
    case 'call': {
      const t = branchTarget(e, i);
      if (!e.onPage(t)) {
        e.faultPoint(); // a non-canonical target faults before the return address is pushed
        emitCanonicalCheck(e, `(base + ${t})`);
      }
      emitCallPush(e, i, e.onPage(e.at + i.len));
      if (t === following) e.storeCheck();
      else e.exit(`base + ${t}`, done);
      return;
    }
    case 'ret': {
      if (s.expected !== null && s.expected === following && e.onPage(s.expected)) {
        emitPredictedRet(e, i, s.expected);
        return;
      }
      const t = emitRetPop(e, i);
      if (s.expected !== null && s.expected === following) e.emit(`if (${t} !== base + ${s.expected}) ${e.exitCode(t, done)}`);
      else e.exit(t, done);
      return;
    }
    default: { // jcc
      const t = branchTarget(e, i);
      const cond = conditionOf(e, i.sub);
      const fall = e.at + i.len;
      if (t === 0 && following === null) {
        e.emit(`if (!(${cond})) ${e.exitCode(`base + ${fall}`, done)}`);
        return;
      }
      e.emit(`if (${cond}) {`);
      exitTo(e, t, done);
      e.emit('}');
      if (following !== fall) e.exit(`base + ${fall}`, done);
      return;
    }
  }
}

/** Leaves the trace for base + t, which is checked for canonical form if it is off the page. */
function exitTo(e: Emitter, t: number, done: number): void {
  if (!e.onPage(t)) {
    e.faultPoint();
    emitCanonicalCheck(e, `(base + ${t})`);
  }
  e.exit(`base + ${t}`, done);
}

/** The trace that starts at block `b` and the JavaScript source of its function. */
export function translate(c: CpuCore, b: Block): { slots: Slot[]; source: string } {
  const slots = buildTrace(c, b);
  const n = slots.length;
  const loop = isLoop(slots);
  const e = new Emitter(n, loop, b.offset);

  for (let idx = 0; idx < n; idx++) {
    const s = slots[idx]!;
    const i = s.insn;
    const last = idx === n - 1;
    const following = last ? null : slots[idx + 1]!.at;
    e.index = idx;
    e.insn = i;
    e.at = s.at;
    e.nextAt = following ?? s.at + i.len;
    const form = i.entry.jit;
    if (form === 'handler' || (flagsNeeded(i.entry) !== 0 && !READS_PENDING.has(form))) e.flushFlags();
    if (isBranchForm(form)) {
      emitBranch(e, s, following);
      continue;
    }
    const before = e.pending;
    if (form !== 'handler' && INLINE_FORMS[form](e, i)) {
      checkFlagsRecord(i.entry, before, e.pending);
      if (last) e.exit(`base + ${s.at + i.len}`, n);
    } else {
      emitHandlerCall(e, i, last);
    }
  }

  if (loop) {
    e.emit(`if (R + ${n} > RL) ${e.exitCode('base', n)}`);
    e.backEdge();
  }
  return { slots, source: e.source(loop, LOOP_SLICE) };
}

/** Translates the trace that starts at block `b`; sets b.compiled and b.compiledLength. */
export function compileBlock(c: CpuCore, b: Block): void {
  const { slots, source } = translate(c, b);
  const factory = new Function(...HELPER_NAMES, 'I', 'X', 'OFF', 'L', 'Hi', 'TT', 'TV', source) as
    (...args: unknown[]) => CompiledBlock;
  const insns = slots.map((s) => s.insn);
  b.compiled = factory(...HELPERS, insns, insns.map((i) => i.exec), Int32Array.from(slots.map((s) => s.at)),
    c.lo, c.hi, c.tlbTags32, c.tlbView);
  b.compiledLength = slots.length;
}
