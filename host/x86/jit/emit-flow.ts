/**
 * Generated code for 64-bit stack operations and near branches: PUSH/POP of registers and
 * immediates, and the block-ending JMP, Jcc, CALL and RET (relative or RET/RET imm16). Semantics
 * as execute/stack.ts and execute/control.ts: canonical checks first, RSP changed only after the
 * memory access succeeded, a non-canonical target is #GP(0) on the branch.
 */
import type { Insn } from '../decode/insn.js';
import { callRel, jccRel, jmpRel, ret } from '../execute/control.js';
import { popZ, pushI, pushZ } from '../execute/stack.js';
import { conditionExpression, type Emitter } from './emitter.js';
import { emitAdjustRsp, emitLoad, emitSplit, emitStackAddress, emitStore } from './emit-memory.js';

const LIMIT = 140737488355328;

/** PUSH r64 / imm, POP r64. Returns false for other instructions or sizes. */
export function emitStack(e: Emitter, i: Insn): boolean {
  const h = i.entry.exec;
  if ((h !== pushZ && h !== popZ && h !== pushI) || i.osize !== 8) return false;
  e.flushFlags();
  e.emit(`k = ${e.index};`);
  if (h === popZ) {
    const a = emitStackAddress(e, 0);
    const lo = e.local('v'), hi = e.local('vh');
    emitLoad(e, a, 8, lo, hi);
    emitAdjustRsp(e, 8);
    e.emit(`L[${i.reg}] = ${lo}; Hi[${i.reg}] = ${hi};`);
    return true;
  }
  const [lo, hi] = h === pushZ ? [`L[${i.reg}]`, `Hi[${i.reg}]`] : [String(i.imm), String(i.immHi)];
  const v = e.local('v'), vh = e.local('vh');
  e.emit(`${v} = ${lo}; ${vh} = ${hi};`); // read before RSP moves (PUSH RSP pushes the old value)
  const a = emitStackAddress(e, -8);
  emitStore(e, a, 8, v, vh);
  emitAdjustRsp(e, -8);
  e.storeCheck();
  return true;
}

/** Whether the last instruction of a block is a branch this file compiles. */
export function isCompiledBranch(i: Insn): boolean {
  const h = i.entry.exec;
  return h === jmpRel || h === jccRel || h === callRel || h === ret;
}

/** A relative branch's target offset from the block start (its base). */
export function relativeTarget(i: Insn): number {
  return i.offset + i.len + i.imm;
}

/**
 * Emits a compiled branch's effects. Returns the JS expression of the next RIP; for Jcc, `cond`
 * receives the local holding whether it is taken. Flags are stored before it returns.
 */
export function emitBranch(e: Emitter, i: Insn): { next: string; cond: string | null } {
  const h = i.entry.exec;
  const fall = `base + ${i.offset + i.len}`;
  if (h === jccRel) {
    const cond = e.local('j');
    const fast = e.pending !== null ? conditionExpression(e.pending, i.sub) : null;
    e.flushFlags();
    e.emit(`${cond} = ${fast ?? `testCondition(c, ${i.sub})`} ? 1 : 0;`);
    const t = e.local('tg');
    e.emit(`k = ${e.index}; ${t} = base + ${relativeTarget(i)};`);
    e.emit(`if (${cond} && (${t} >= ${LIMIT} || ${t} < -${LIMIT})) raiseGP(c, 0);`);
    return { next: `(${cond} ? ${t} : ${fall})`, cond };
  }
  e.flushFlags();
  e.emit(`k = ${e.index};`);
  if (h === jmpRel || h === callRel) {
    const t = e.local('tg');
    e.emit(`${t} = base + ${relativeTarget(i)}; if (${t} >= ${LIMIT} || ${t} < -${LIMIT}) raiseGP(c, 0);`);
    if (h === callRel) {
      const r = e.local('rt'), lo = e.local('v'), hi = e.local('vh');
      e.emit(`${r} = ${fall};`);
      emitSplit(e, r, lo, hi);
      const a = emitStackAddress(e, -8);
      emitStore(e, a, 8, lo, hi);
      emitAdjustRsp(e, -8);
    }
    return { next: t, cond: null };
  }
  // RET / RET imm16
  const a = emitStackAddress(e, 0);
  const lo = e.local('v'), hi = e.local('vh'), t = e.local('tg');
  emitLoad(e, a, 8, lo, hi);
  e.emit(`if (${hi} !== (${hi} << 16) >> 16) raiseGP(c, 0); ${t} = ${hi} * 4294967296 + (${lo} >>> 0);`);
  emitAdjustRsp(e, i.entry.opcode === 0xc2 ? 8 + i.imm : 8);
  return { next: t, cond: null };
}
