/**
 * Inline forms for 64-bit stack operations (`push`: PUSH register or immediate; `pop`: POP
 * register) and the pieces of the near branches the translator follows (`jmp`, `jcc`, `call`,
 * `ret`; how a trace links them is compile.ts's business). Semantics as execute/stack.ts and
 * execute/control.ts: canonical checks first, RSP changed only after the memory access
 * succeeded, a non-canonical target is #GP(0) on the branch.
 */
import type { Insn } from '../decode/insn.js';
import type { Emitter } from './emitter.js';
import { emitAdjustRsp, emitLoad, emitSplit, emitStackAddress, emitStore } from './emit-memory.js';

const LIMIT = 140737488355328;

/** `push`: PUSH r64 or an immediate (Iz/Ibs), 64-bit operand size. */
export function emitPush(e: Emitter, i: Insn): boolean {
  if (i.osize !== 8) return false;
  e.faultPoint();
  const [lo, hi] = i.entry.operands[0] === 'Zv' ? [e.lo(i.reg), e.hi(i.reg)] : [String(i.imm), String(i.immHi)];
  const v = e.local('v'), vh = e.local('vh');
  e.emit(`${v} = ${lo}; ${vh} = ${hi};`); // read before RSP moves (PUSH RSP pushes the old value)
  const a = emitStackAddress(e, -8);
  emitStore(e, a, 8, v, vh);
  e.setReg(4, a.lo, a.hi);
  e.storeCheck();
  return true;
}

/** `pop`: POP r64. */
export function emitPop(e: Emitter, i: Insn): boolean {
  if (i.osize !== 8) return false;
  e.faultPoint();
  const a = emitStackAddress(e, 0);
  const lo = e.local('v'), hi = e.local('vh');
  emitLoad(e, a, 8, lo, hi);
  emitAdjustRsp(e, 8);
  e.setReg(i.reg, lo, hi);
  return true;
}

/** A relative branch's target, as an offset from the trace's start. */
export function branchTarget(e: Emitter, i: Insn): number {
  return e.at + i.len + i.imm;
}

/** #GP(0) unless the number in `t` is canonical. */
export function emitCanonicalCheck(e: Emitter, t: string): void {
  e.emit(`if (${t} >= ${LIMIT} || ${t} < -${LIMIT}) raiseGP(c, 0);`);
}

/** CALL: pushes the return address (the next instruction; `onPage`: on the trace's page). */
export function emitCallPush(e: Emitter, i: Insn, onPage: boolean): void {
  e.faultPoint();
  let lo: string, hi: string;
  if (onPage) {
    [lo, hi] = e.onPageHalves(e.at + i.len);
  } else {
    const r = e.local('rt');
    lo = e.local('v');
    hi = e.local('vh');
    e.emit(`${r} = base + ${e.at + i.len};`);
    emitSplit(e, r, lo, hi);
  }
  const a = emitStackAddress(e, -8);
  emitStore(e, a, 8, lo, hi);
  e.setReg(4, a.lo, a.hi);
}

/** Bytes RET releases: the return address and Iw more. */
function retRelease(i: Insn): number {
  return i.entry.operands.includes('Iw') ? 8 + i.imm : 8;
}

/** RET / RET Iw: pops the return address into a local (#GP(0) if non-canonical) and releases Iw more bytes. */
export function emitRetPop(e: Emitter, i: Insn): string {
  e.faultPoint();
  const a = emitStackAddress(e, 0);
  const lo = e.local('v'), hi = e.local('vh'), t = e.local('tg');
  emitLoad(e, a, 8, lo, hi);
  e.emit(`if (${hi} !== (${hi} << 16) >> 16) raiseGP(c, 0); ${t} = ${hi} * 4294967296 + (${lo} >>> 0);`);
  emitAdjustRsp(e, retRelease(i));
  return t;
}

/**
 * A RET predicted to return to base + `expected` (on the trace's page, pushed by a CALL in the
 * trace): the popped halves are compared with the expected ones, and only a return elsewhere
 * pays for the canonical check and leaves the trace.
 */
export function emitPredictedRet(e: Emitter, i: Insn, expected: number): void {
  e.faultPoint();
  const a = emitStackAddress(e, 0);
  const lo = e.local('v'), hi = e.local('vh'), t = e.local('tg');
  emitLoad(e, a, 8, lo, hi);
  const [elo, ehi] = e.onPageHalves(expected);
  e.emit(`if (${lo} !== ${elo} || ${hi} !== ${ehi}) {`);
  e.emit(`if (${hi} !== (${hi} << 16) >> 16) raiseGP(c, 0); ${t} = ${hi} * 4294967296 + (${lo} >>> 0);`);
  emitAdjustRsp(e, retRelease(i));
  e.exit(t, e.index + 1);
  e.emit('}');
  emitAdjustRsp(e, retRelease(i));
}
