/**
 * The code buffer and compile-time state of one trace translation: generated JavaScript lines,
 * function-scope locals, and the *pending* lazy-flags record — the flags of the last
 * flag-writing instruction, still in locals and not yet stored into the CPU's cc fields.
 *
 * Dead-flag elimination: a pending record is stored only where something could observe it — a
 * handler call, an exit from the trace, a fault (the catch stores the record that was pending
 * at the faulting instruction, so the fault-free path stores nothing) — and a later instruction
 * that rewrites all six flags simply replaces it. In a loop the last record of one iteration
 * stays in its locals into the next (`lc` says it is there): stored only if something observes
 * the flags before the next record replaces it. Conditions that the pending record can answer
 * directly (after CMP, TEST, logic, and Z/S after arithmetic) compile to plain comparisons.
 *
 * Retired instructions: a trace counts its N instructions up front (per loop iteration) in a
 * local, `R`, and every way out stores it into c.retired less the instructions it did not run
 * (an exit, the catch), so that the count is exact wherever the trace stops.
 *
 * Registers: the GPRs a trace uses live in locals (`$l3`/`$h3`: RBX's halves) from its entry
 * to every way out, where those it writes are stored back — exits, the catch (an inline
 * instruction writes its destination only after everything that could fault), and around a
 * handler call, which works on the CPU's registers (stored before, reloaded after). Which
 * registers are used and written, and the last record of a loop, are known only at the end, so
 * generated code carries markers that `source` replaces.
 */
import { CC_ADD, CC_DEC, CC_INC, CC_RES, CC_SUB } from '../flags.js';
import type { Insn } from '../decode/insn.js';

const STORE_REGS = '/*store-registers*/';
const LOAD_REGS = '/*load-registers*/';
const STORE_CARRIED = '/*store-carried-flags*/';

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

/** What the catch stores for a faulting slot. */
interface FaultState {
  /** The flags record pending there, the loop-carried one, or none (the CPU's flags are current). */
  flags: PendingFlags | 'carried' | null;
  /** The slot calls its handler: the CPU's registers and count are as the handler left them. */
  handler: boolean;
  /** The handler counts its own iterations (a REP string instruction). */
  selfRetiring: boolean;
}

export class Emitter {
  private readonly lines: string[] = [];
  private readonly locals: string[] = [];
  private counter = 0;
  pending: PendingFlags | null = null;
  /**
   * In a loop, from the start of the body until the first record: the previous iteration's
   * last record may still be in its locals (if `lc`), and is what the CPU's flags should be.
   */
  private carried: boolean;
  /** Slot being emitted, its instruction, and its offset and the next slot's from the trace start. */
  index = 0;
  insn!: Insn;
  at = 0;
  nextAt = 0;
  /** Instructions in the trace (per iteration). */
  readonly count: number;
  /** The trace's first instruction's offset in its page. */
  readonly entryOffset: number;
  private readonly faults: (FaultState | null)[];
  private readonly usedRegs = new Set<number>();
  private readonly writtenRegs = new Set<number>();
  private baseHalves = false;
  private slowStores = false;
  private handlerCalls = false;

  constructor(count: number, loop: boolean, entryOffset: number) {
    this.count = count;
    this.entryOffset = entryOffset;
    this.carried = loop;
    this.faults = new Array<FaultState | null>(count).fill(null);
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

  // ---------------------------------------------------------------------------------------------
  // Registers
  // ---------------------------------------------------------------------------------------------

  /** GPR `r`'s bits 31:0 (int32), and bits 63:32. */
  lo(r: number): string {
    this.usedRegs.add(r);
    return `$l${r}`;
  }

  hi(r: number): string {
    this.usedRegs.add(r);
    return `$h${r}`;
  }

  /** Writes GPR `r` (both halves; `lo` is assigned first, so `hi` must not read `lo(r)`). */
  setReg(r: number, lo: string, hi: string): void {
    this.usedRegs.add(r);
    this.writtenRegs.add(r);
    this.emit(`$l${r} = ${lo}; $h${r} = ${hi};`);
  }

  /** Code that stores the written registers into the CPU (before a helper reads them there). */
  storeRegisters(): string {
    return STORE_REGS;
  }

  /** Whether base + `offset` is on the trace's page (and so canonical, as the page is). */
  onPage(offset: number): boolean {
    return this.entryOffset + offset >= 0 && this.entryOffset + offset < 4096;
  }

  /**
   * The halves of base + `offset` for an offset on the trace's page (no carry into bit 32 can
   * happen within a page): `BL`/`BH` are computed once at entry.
   */
  onPageHalves(offset: number): [string, string] {
    this.baseHalves = true;
    return [`((BL + ${offset}) | 0)`, 'BH'];
  }

  // ---------------------------------------------------------------------------------------------
  // Flags
  // ---------------------------------------------------------------------------------------------

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

  /** Code that puts the current flags into the CPU (without forgetting a pending record). */
  private currentFlagsStore(): string {
    if (this.pending !== null) return this.flagStore(this.pending);
    return this.carried ? STORE_CARRIED : '';
  }

  /** Stores the pending flags into the CPU (before a handler or a generic reader looks there). */
  flushFlags(): void {
    const code = this.currentFlagsStore();
    if (code !== '') this.emit(code);
    this.pending = null;
    this.carried = false;
  }

  /** Records new flags (replacing any pending ones: they were dead). */
  setFlags(p: PendingFlags): void {
    this.pending = p;
    this.carried = false;
  }

  // ---------------------------------------------------------------------------------------------
  // Faults, handlers, exits
  // ---------------------------------------------------------------------------------------------

  /**
   * From here the current instruction may fault: `k` names it for the catch, which stores the
   * flags current now (an exception frame or an intercept shows RFLAGS) and the registers.
   */
  faultPoint(): void {
    const flags = this.pending ?? (this.carried ? 'carried' : null);
    this.faults[this.index] = { flags, handler: false, selfRetiring: false };
    this.emit(`k = ${this.index};`);
  }

  /**
   * Calls the current slot's handler: flags, registers and the retired count go to the CPU
   * first and the registers and count come back after.
   */
  handlerCall(i: Insn): void {
    this.flushFlags();
    this.faults[this.index] = { flags: null, handler: true, selfRetiring: i.selfRetiring };
    this.handlerCalls = true;
    this.emit(`k = ${this.index}; ${STORE_REGS} c.retired = R${i.selfRetiring ? ' - 1' : ''}; g = c.tlbGeneration;`);
    this.emit(`X[${this.index}](c, I[${this.index}]); ${LOAD_REGS} R = c.retired;`);
  }

  /**
   * Code that leaves the trace with RIP = `rip` after `done` of its instructions (the rest
   * are given back), storing the flags and registers.
   */
  exitCode(rip: string, done: number): string {
    const flags = this.currentFlagsStore();
    const retired = done < this.count ? `R - ${this.count - done}` : 'R';
    return `{ ${flags} ${STORE_REGS} c.retired = ${retired}; c.rip = ${rip}; return; }`;
  }

  exit(rip: string, done: number): void {
    this.emit(this.exitCode(rip, done));
  }

  /** Code for a store's slow path: notes in `w` that the store rewrote decoded code. */
  noteSlowStore(): string {
    this.slowStores = true;
    return 'if (c.codeInvalidated) w = 1;';
  }

  /**
   * After an instruction that stored to memory: if the store rewrote decoded code, leave the
   * trace right after this instruction so the rest is decoded afresh.
   */
  storeCheck(): void {
    if (this.index === this.count - 1) return;
    this.emit(`if (w === 1) ${this.exitCode(`base + ${this.nextAt}`, this.index + 1)}`);
  }

  /**
   * After a handler call that is not the trace's last instruction: leave the trace right after
   * it if it rewrote decoded code, or flushed the TLB (INVLPG, a change of CPL or RFLAGS.AC):
   * the trace follows branches within its page on the assumption that the page maps to the same
   * frame, and the interpreter would fetch the next block through the new translation.
   */
  handlerCheck(): void {
    this.emit(`if (c.codeInvalidated || c.tlbGeneration !== g) ${this.exitCode(`base + ${this.nextAt}`, this.index + 1)}`);
  }

  /** The loop's back edge: what the next iteration starts with. */
  backEdge(): void {
    if (this.pending !== null) this.emit('lc = 1;');
  }

  // ---------------------------------------------------------------------------------------------
  // The function
  // ---------------------------------------------------------------------------------------------

  /** The catch: per faulting slot, the flags, registers and count it leaves in the CPU. */
  private catchCode(): string {
    const cases: string[] = [];
    const n = this.count;
    this.faults.forEach((f, k) => {
      if (f === null) return;
      if (f.handler) {
        cases.push(`case ${k}: c.retired -= ${n - k - (f.selfRetiring ? 1 : 0)}; break;`);
      } else if (f.flags !== null) {
        const flags = f.flags === 'carried' ? STORE_CARRIED : this.flagStore(f.flags);
        cases.push(`case ${k}: ${flags} ${STORE_REGS} c.retired = R - ${n - k}; break;`);
      }
    });
    return `switch (k) { ${cases.join(' ')} default: ${STORE_REGS} c.retired = R - (${n} - k); }`;
  }

  /**
   * The translated function's source. `loop`: the body repeats (its back edge is emitted),
   * comparing the count with RL: the budget's limit, or `slice` instructions from entry.
   */
  source(loop: boolean, slice: number): string {
    const n = this.count;
    const carried = loop ? this.pending : null;
    const regs = [...this.usedRegs].sort((a, b) => a - b);
    const written = [...this.writtenRegs].sort((a, b) => a - b);
    const declared = [
      ...regs.map((r) => `$l${r} = L[${r}], $h${r} = Hi[${r}]`),
      ...this.locals.map((name) => `${name} = 0`),
      ...(carried !== null ? ['lc = 0'] : []),
      ...(this.slowStores ? ['w = 0'] : []),
      ...(this.handlerCalls ? ['g = 0'] : []),
    ];
    // Everything the function needs from the CPU at entry comes as an argument or is bound when
    // it is made (a trace belongs to one CPU's code cache): its first run may come before V8
    // collects type feedback, and entry code optimised without feedback would deoptimise on
    // every call.
    const code = [
      'return function translated(c, base, R) {',
      this.baseHalves ? 'const BH = Math.floor(base / 4294967296) | 0, BL = base - Math.floor(base / 4294967296) * 4294967296;' : '',
      'let k = 0;',
      loop ? `const RL = Math.min(c.retireLimit, R + ${slice});` : '',
      declared.length > 0 ? `let ${declared.join(', ')};` : '',
      'try {',
      loop ? 'for (;;) {' : '',
      `R += ${n};`,
      ...this.lines,
      loop ? '}' : '',
      '} catch (err) {',
      this.catchCode(),
      'c.rip = base + OFF[k];',
      'throw err;',
      '}',
      '};',
    ].join('\n');
    return code
      .replaceAll(STORE_CARRIED, carried !== null ? `if (lc === 1) { ${this.flagStore(carried)} }` : '')
      .replaceAll(STORE_REGS, written.map((r) => `L[${r}] = $l${r}; Hi[${r}] = $h${r};`).join(' '))
      .replaceAll(LOAD_REGS, regs.map((r) => `$l${r} = L[${r}]; $h${r} = Hi[${r}];`).join(' '));
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
 * A JS boolean expression for condition `cc` (0..15): from the pending record when it answers
 * it, else testCondition() on the CPU's flags (stored first).
 */
export function conditionOf(e: Emitter, cc: number): string {
  const fast = e.pending !== null ? conditionExpression(e.pending, cc) : null;
  if (fast !== null) return fast;
  e.flushFlags();
  return `testCondition(c, ${cc})`;
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
