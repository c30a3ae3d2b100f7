/**
 * Block translation: a hot block becomes one JavaScript function (`new Function`), as v86 turns
 * hot code into wasm. Hot instruction forms are emitted inline (emit-*.ts) — register and TLB
 * accesses, lazy flags kept in locals with dead-flag elimination, conditions as comparisons —
 * and every other instruction calls its interpreter handler, so a translated block always does
 * exactly what the interpreter does. A block whose last instruction branches back to its start
 * becomes a loop inside the function, with the budget checked on each iteration.
 *
 * Bookkeeping, as in the interpreter: the block's instructions are counted as retired up front
 * (per iteration) and the count corrected on an early exit; `k` tracks the instruction that may
 * fault, so the catch can put RIP on it; flags are stored before anything that could observe
 * them (a fault, a handler, an exit).
 */
import type { Block } from '../block.js';
import type { CpuCore } from '../core.js';
import type { Insn } from '../decode/insn.js';
import { linearAddress } from '../execute/address.js';
import { jccRel, jmpRel } from '../execute/control.js';
import { raiseGP, raiseSS } from '../fault.js';
import { getCF, testCondition } from '../flags.js';
import { read16, read32, read64, read8, write16, write32, write64, write8 } from '../mmu/access.js';
import { conditionExpression, Emitter } from './emitter.js';
import { emitAlu } from './emit-alu.js';
import { emitBranch, emitStack, isCompiledBranch, relativeTarget } from './emit-flow.js';
import { emitMove } from './emit-move.js';

/** Interpreted executions of a block before it is translated (its next run is translated). */
export const JIT_THRESHOLD = 16;

export type CompiledBlock = (c: CpuCore) => void;

function nonCanonical(c: CpuCore, stack: boolean): never {
  return stack ? raiseSS(c, 0) : raiseGP(c, 0);
}

const HELPER_NAMES = [
  'read8', 'read16', 'read32', 'read64', 'write8', 'write16', 'write32', 'write64', 'linearAddress', 'nonCanonical',
  'raiseGP', 'getCF', 'testCondition',
] as const;
const HELPERS = [read8, read16, read32, read64, write8, write16, write32, write64, linearAddress, nonCanonical, raiseGP,
  getCF, testCondition];

/** Calls the interpreter's handler for an instruction the translator does not inline. */
function emitFallback(e: Emitter, i: Insn, last: boolean, blockLength: number): void {
  e.flushFlags();
  e.emit(`c.rip = base + ${i.offset}; k = ${e.index};`);
  if (i.selfRetiring) e.emit('c.retired--;');
  e.emit(`X[${e.index}](c, I[${e.index}]);`);
  if (!last) {
    e.storeCheck();
    return;
  }
  if (i.entry.flow === 'stop') e.emit('if (c.stop !== null) { c.retired--; return; }');
  if (i.entry.flow !== 'branch') e.emit(`c.rip = base + ${blockLength};`);
  e.emit('return;');
}

function emitInstruction(e: Emitter, i: Insn, last: boolean, blockLength: number): void {
  if (emitAlu(e, i) || emitMove(e, i) || emitStack(e, i)) return;
  emitFallback(e, i, last, blockLength);
}

/** Whether the block ends in a relative JMP/Jcc back to its own first instruction. */
function isSelfLoop(b: Block): boolean {
  const last = b.insns[b.insns.length - 1]!;
  return (last.entry.exec === jmpRel || last.entry.exec === jccRel) && relativeTarget(last) === 0;
}

export function compileBlock(b: Block): CompiledBlock {
  const insns = b.insns;
  const n = insns.length;
  const lastInsn = insns[n - 1]!;
  const e = new Emitter(n);
  const loop = isSelfLoop(b);
  const branchLast = isCompiledBranch(lastInsn);

  for (let idx = 0; idx < n; idx++) {
    const i = insns[idx]!;
    e.index = idx;
    e.insn = i;
    e.nextOffset = idx + 1 < n ? insns[idx + 1]!.offset : b.byteLength;
    const last = idx === n - 1;
    if (last && branchLast) break;
    emitInstruction(e, i, last, b.byteLength);
    if (last) {
      e.flushFlags();
      e.emit(`c.rip = base + ${b.byteLength}; return;`);
    }
  }

  if (branchLast) {
    e.index = n - 1;
    e.insn = lastInsn;
    e.nextOffset = b.byteLength;
    if (!loop) {
      const { next } = emitBranch(e, lastInsn);
      e.emit(`c.rip = ${next}; return;`);
    } else if (lastInsn.entry.exec === jmpRel) {
      e.flushFlags();
      e.emit(`if (c.retired + ${n} > c.retireLimit) { c.rip = base; return; }`);
    } else {
      const fast = e.pending !== null ? conditionExpression(e.pending, lastInsn.sub) : null;
      if (fast === null) e.flushFlags();
      const store = e.pending !== null ? e.flagStore(e.pending) : '';
      const cond = fast ?? `testCondition(c, ${lastInsn.sub})`;
      e.emit(`if (!(${cond})) { ${store} c.rip = base + ${b.byteLength}; return; }`);
      e.emit(`if (c.retired + ${n} > c.retireLimit) { ${store} c.rip = base; return; }`);
      // Carried into the next iteration: stored unless the body overwrites the flags before
      // anything could observe them.
      if (e.firstFlagEvent !== 'kill') e.flushFlags();
    }
  }

  const selfRetiringLast = lastInsn.selfRetiring ? ` - (k === ${n - 1} ? 1 : 0)` : '';
  const source = [
    'return function translated(c) {',
    'const L = c.lo, Hi = c.hi, TR = c.tlbTagR, TW = c.tlbTagW, TV = c.tlbView;',
    'const base = c.rip;',
    'let k = 0;',
    e.declarations(),
    'try {',
    loop ? 'for (;;) {' : '',
    `c.retired += ${n};`,
    ...e.lines,
    loop ? '}' : '',
    '} catch (err) {',
    `c.retired -= ${n} - k${selfRetiringLast};`,
    'c.rip = base + OFF[k];',
    'throw err;',
    '}',
    '};',
  ].join('\n');
  const factory = new Function(...HELPER_NAMES, 'I', 'X', 'OFF', source) as (...args: unknown[]) => CompiledBlock;
  const offsets = Int32Array.from(insns.map((i) => i.offset));
  return factory(...HELPERS, insns, insns.map((i) => i.exec), offsets);
}
