/**
 * Near control transfers in 64-bit mode (SDM vol. 2 JMP, Jcc, CALL, RET, LOOP/LOOPcc,
 * JRCXZ): targets are 64-bit (a 66 prefix is ignored, as on Intel processors); a non-canonical
 * target raises #GP(0) on the branch itself, before anything (the return-address push
 * included) happens.
 *
 * Branch handlers always set c.rip (taken or not): they end a block.
 */
import type { CpuCore } from '../core.js';
import { raiseGP } from '../fault.js';
import { testCondition } from '../flags.js';
import type { Insn } from '../decode/insn.js';
import { readE } from './operands.js';
import { addRsp, rspValue } from './stack.js';
import { checkCanonical } from './address.js';
import { read64, write64 } from '../mmu/access.js';

const TWO32 = 4294967296;
const CANONICAL_LIMIT = 140737488355328; // 2^47

function branchTarget(c: CpuCore, target: number): number {
  if (target >= CANONICAL_LIMIT || target < -CANONICAL_LIMIT) raiseGP(c, 0);
  return target;
}

/** A 64-bit value (halves) as a branch target, #GP(0) if non-canonical. */
function targetFromHalves(c: CpuCore, lo: number, hi: number): number {
  if (hi !== (hi << 16) >> 16) raiseGP(c, 0);
  return hi * TWO32 + (lo >>> 0);
}

/** JMP Jb / Jz. */
export function jmpRel(c: CpuCore, i: Insn): void {
  c.rip = branchTarget(c, c.rip + i.len + i.imm);
}

/** Jcc Jb / Jz (condition in i.sub). */
export function jccRel(c: CpuCore, i: Insn): void {
  const next = c.rip + i.len;
  c.rip = testCondition(c, i.sub) ? branchTarget(c, next + i.imm) : next;
}

/** JMP Ev (FF /4). */
export function jmpE(c: CpuCore, i: Insn): void {
  const lo = readE(c, i, 8);
  c.rip = targetFromHalves(c, lo, c.vhi);
}

/** Pushes the return address (the next instruction) and jumps. */
function callTo(c: CpuCore, i: Insn, target: number): void {
  const ret = c.rip + i.len;
  const lin = checkCanonical(c, rspValue(c) - 8, true);
  const h = Math.floor(ret / TWO32);
  write64(c, lin, (ret - h * TWO32) | 0, h | 0);
  addRsp(c, -8);
  c.rip = target;
}

/** CALL Jz (E8). */
export function callRel(c: CpuCore, i: Insn): void {
  callTo(c, i, branchTarget(c, c.rip + i.len + i.imm));
}

/** CALL Ev (FF /2). */
export function callE(c: CpuCore, i: Insn): void {
  const lo = readE(c, i, 8);
  callTo(c, i, targetFromHalves(c, lo, c.vhi));
}

/** RET (C3) and RET Iw (C2): pops RIP, then releases Iw more bytes. */
export function ret(c: CpuCore, i: Insn): void {
  const lin = checkCanonical(c, rspValue(c), true);
  const lo = read64(c, lin);
  const target = targetFromHalves(c, lo, c.vhi);
  addRsp(c, i.entry.opcode === 0xc2 ? 8 + i.imm : 8);
  c.rip = target;
}

/**
 * LOOP (E2), LOOPE (E1), LOOPNE (E0): decrement the counter (RCX, or ECX with a 67 prefix)
 * without touching flags, branch while it is non-zero (and ZF matches). JRCXZ/JECXZ (E3).
 */
export function loop(c: CpuCore, i: Insn): void {
  const op = i.entry.opcode;
  const next = c.rip + i.len;
  let zero: boolean;
  if (op === 0xe3) {
    zero = i.asize === 4 ? c.lo[1] === 0 : (c.lo[1]! | c.hi[1]!) === 0;
    c.rip = zero ? branchTarget(c, next + i.imm) : next;
    return;
  }
  let lo = c.lo[1]!, hi = c.hi[1]!;
  let taken: boolean;
  if (i.asize === 4) {
    lo = (lo - 1) | 0;
    hi = 0;
    zero = lo === 0;
  } else {
    if (lo === 0) hi = (hi - 1) | 0;
    lo = (lo - 1) | 0;
    zero = (lo | hi) === 0;
  }
  if (op === 0xe2) taken = !zero;
  else if (op === 0xe1) taken = !zero && testCondition(c, 4);
  else taken = !zero && testCondition(c, 5);
  const target = taken ? branchTarget(c, next + i.imm) : next;
  c.lo[1] = lo;
  c.hi[1] = hi;
  c.rip = target;
}

