/**
 * The code buffer and compile-time state of one block translation: generated JavaScript lines,
 * function-scope locals, and the *pending* lazy-flags record — the flags of the last
 * flag-writing instruction, still in locals and not yet stored into the CPU's cc fields.
 *
 * Dead-flag elimination: a pending record is stored only when something could observe it (an
 * instruction that may fault or leave the block, a generic flag reader); a later instruction
 * that rewrites all six flags simply replaces it. Conditions that the pending record can answer
 * directly (after CMP, TEST, logic, and Z/S after arithmetic) compile to plain comparisons.
 */
import { CC_ADD, CC_DEC, CC_INC, CC_RES, CC_SUB } from '../flags.js';
import type { Insn } from '../decode/insn.js';

/** A flag-writing operation whose operands and result are in generated locals. */
export interface PendingFlags {
  op: number;
  size: 4 | 8;
  /** Locals (or literals) holding operand/result low halves, and high halves for size 8. */
  d: string;
  s: string;
  r: string;
  dh: string;
  sh: string;
  rh: string;
  /** Carry-in / previous CF / explicit CF|AF|OF bits, as a local or literal. */
  aux: string;
}

export class Emitter {
  readonly lines: string[] = [];
  private readonly locals: string[] = [];
  private counter = 0;
  pending: PendingFlags | null = null;
  /** Whether the flags were first observed (stored) or first overwritten, from the block start. */
  firstFlagEvent: 'observe' | 'kill' | null = null;
  /** Index of the instruction being emitted, its insn, the next one's offset, the block's length. */
  index = 0;
  insn!: Insn;
  nextOffset = 0;
  readonly count: number;

  constructor(count: number) {
    this.count = count;
  }

  /** A new function-scope local (numeric). */
  local(prefix: string): string {
    const name = `${prefix}${this.counter++}`;
    this.locals.push(name);
    return name;
  }

  emit(line: string): void {
    this.lines.push(line);
  }

  declarations(): string {
    return this.locals.length ? `let ${this.locals.map((n) => `${n} = 0`).join(', ')};` : '';
  }

  /** Stores the pending flags into the CPU (before anything could observe them). */
  flushFlags(): void {
    this.firstFlagEvent ??= 'observe';
    const p = this.pending;
    if (p === null) return;
    this.emit(this.flagStore(p));
    this.pending = null;
  }

  /** The statements that store a pending record (without forgetting it). */
  flagStore(p: PendingFlags): string {
    const parts = [`c.ccOp = ${p.op}`, `c.ccSize = ${p.size}`, `c.ccRes = ${p.r}`, `c.ccAux = ${p.aux}`];
    if (p.op !== CC_RES) parts.push(`c.ccDst = ${p.d}`, `c.ccSrc = ${p.s}`);
    if (p.size === 8) {
      parts.push(`c.ccResHi = ${p.rh}`);
      if (p.op !== CC_RES) parts.push(`c.ccDstHi = ${p.dh}`, `c.ccSrcHi = ${p.sh}`);
    }
    return parts.join('; ') + ';';
  }

  /** Records new flags (replacing any pending ones: they were dead). */
  setFlags(p: PendingFlags): void {
    this.firstFlagEvent ??= 'kill';
    this.pending = p;
  }

  /** The current flags must be in the CPU from here on (a generic reader or an exit follows). */
  needFlags(): void {
    this.flushFlags();
  }

  /**
   * After an instruction that stored to memory: if the store rewrote decoded code (the slow
   * path reported it), leave the block right after this instruction so the rest is decoded
   * afresh. Instructions were counted as retired up front, so the rest is taken back.
   */
  storeCheck(): void {
    const rest = this.count - this.index - 1;
    if (rest === 0) return;
    const flags = this.pending !== null ? this.flagStore(this.pending) : '';
    this.emit(`if (c.codeInvalidated) { c.retired -= ${rest}; ${flags} c.rip = base + ${this.nextOffset}; return; }`);
  }
}

/**
 * A JS expression for CF from a pending record, or null when it must be read from the CPU.
 */
export function carryExpression(p: PendingFlags): string | null {
  if (p.op === CC_RES || p.op === CC_INC || p.op === CC_DEC) return `(${p.aux} & 1)`;
  if (p.size === 4) {
    if (p.op === CC_ADD) return `((${p.r} >>> 0) < (${p.d} >>> 0) ? 1 : 0)`;
    if (p.op === CC_SUB) return `((${p.d} >>> 0) < (${p.s} >>> 0) ? 1 : 0)`;
    return null;
  }
  if (p.op === CC_ADD) return `(((${p.rh} >>> 0) < (${p.dh} >>> 0) || (${p.rh} === ${p.dh} && (${p.r} >>> 0) < (${p.d} >>> 0))) ? 1 : 0)`;
  if (p.op === CC_SUB) return `(((${p.dh} >>> 0) < (${p.sh} >>> 0) || (${p.dh} === ${p.sh} && (${p.d} >>> 0) < (${p.s} >>> 0))) ? 1 : 0)`;
  return null;
}

/**
 * A JS boolean expression for condition `cc` (0..15) from a pending record, or null when the
 * generic testCondition() must decide.
 */
export function conditionExpression(p: PendingFlags, cc: number): string | null {
  const wide = p.size === 8;
  const zero = wide ? `((${p.r} | ${p.rh}) === 0)` : `(${p.r} === 0)`;
  const sign = wide ? `(${p.rh} < 0)` : `(${p.r} < 0)`;
  const neg = (e: string): string => `!${e}`;
  switch (cc) {
    case 4: return zero;
    case 5: return neg(zero);
    case 8: return sign;
    case 9: return neg(sign);
  }
  if (p.op === CC_SUB) {
    let lt: string, ltu: string, eq: string;
    if (!wide) {
      lt = `(${p.d} < ${p.s})`;
      ltu = `((${p.d} >>> 0) < (${p.s} >>> 0))`;
      eq = `(${p.d} === ${p.s})`;
    } else {
      lt = `(${p.dh} < ${p.sh} || (${p.dh} === ${p.sh} && (${p.d} >>> 0) < (${p.s} >>> 0)))`;
      ltu = `((${p.dh} >>> 0) < (${p.sh} >>> 0) || (${p.dh} === ${p.sh} && (${p.d} >>> 0) < (${p.s} >>> 0)))`;
      eq = `(${p.d} === ${p.s} && ${p.dh} === ${p.sh})`;
    }
    switch (cc) {
      case 2: return ltu;
      case 3: return neg(ltu);
      case 6: return `(${ltu} || ${eq})`;
      case 7: return `!(${ltu} || ${eq})`;
      case 12: return lt;
      case 13: return neg(lt);
      case 14: return `(${lt} || ${eq})`;
      case 15: return `!(${lt} || ${eq})`;
    }
    return null;
  }
  if (p.op === CC_RES && p.aux === '0') {
    // Logic: CF = OF = 0.
    switch (cc) {
      case 0: case 2: return 'false';
      case 1: case 3: return 'true';
      case 6: return zero;
      case 7: return neg(zero);
      case 12: return sign;
      case 13: return neg(sign);
      case 14: return `(${zero} || ${sign})`;
      case 15: return `!(${zero} || ${sign})`;
    }
  }
  return null;
}
