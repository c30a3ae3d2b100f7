/**
 * Traces: what one translation covers. From a hot block the translator follows the control
 * flow it can predict on the block's own page — a relative JMP or CALL to its target, a RET to
 * the return address that a CALL earlier in the trace pushed (checked when it runs: a return
 * elsewhere leaves the trace), a Jcc on to its not-taken path (taken leaves the trace) — so
 * that a loop with calls in it becomes one function, as Blink connects its JIT paths and v86
 * compiles a whole page's hot code into one wasm function.
 *
 * Staying on one page keeps this safe without new machinery: every instruction of a trace is
 * on its entry block's frame, so a write to that frame (which drops all of the frame's blocks,
 * block.ts) drops the trace with its entry block, and every address in it is the entry's
 * linear page plus an offset. A branch off the page ends the trace.
 */
import { buildBlock, cachedBlock, type Block } from '../block.js';
import type { CpuCore } from '../core.js';
import type { Insn } from '../decode/insn.js';
import { PAGE_SIZE } from '../memory.js';

/** Instructions after which a trace stops following branches (it may end a block later). */
export const MAX_TRACE = 64;

export interface Slot {
  readonly insn: Insn;
  /** The instruction's offset from the trace's first instruction (negative: before it on the page). */
  readonly at: number;
  /** For a RET: the offset of the return address pushed by its CALL in the trace, or null. */
  readonly expected: number | null;
}

/** The trace starting at block `entry`: its instructions in the order they run. */
export function buildTrace(c: CpuCore, entry: Block): Slot[] {
  const slots: Slot[] = [];
  const returns: number[] = [];
  const start = entry.offset;
  let b: Block | null = entry;
  while (b !== null) {
    const insns = b.insns;
    const lastInsn = insns[insns.length - 1]!;
    let expected: number | null = null;
    for (const i of insns) {
      const at = b.offset + i.offset - start;
      if (i === lastInsn && i.entry.jit === 'ret' && returns.length > 0) expected = returns.pop()! - start;
      slots.push({ insn: i, at, expected: i === lastInsn ? expected : null });
    }
    const end = b.offset + b.byteLength;
    let next: number;
    switch (lastInsn.entry.jit) {
      case 'jmp':
        next = end + lastInsn.imm;
        break;
      case 'call':
        next = end + lastInsn.imm;
        if (next !== start) returns.push(end);
        break;
      case 'ret':
        next = expected === null ? -1 : start + expected;
        break;
      case 'jcc':
        next = end + lastInsn.imm === start ? -1 : end; // a loop's back edge ends the trace
        break;
      default:
        next = lastInsn.entry.flow === 'next' ? end : -1; // a block cut short by its length limit
        break;
    }
    if (next < 0 || next >= PAGE_SIZE || next === start || slots.length >= MAX_TRACE) break;
    b = cachedBlock(c, b.frame, next) ?? buildBlock(c, b.frame, next);
  }
  return slots;
}
