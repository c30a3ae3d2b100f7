/**
 * The execution loop: find the block at RIP (fetch translation, then the per-frame block cache,
 * then the cached successor), run its pre-decoded instructions, repeat until an intercept, the
 * budget, or a state that needs re-checking. Faults propagate (as GUEST_FAULT) to run(), with
 * c.rip on the faulting instruction and c.retired counting the instructions before it.
 *
 * Within a block, c.rip is set to each instruction's address before it runs (handlers compute
 * RIP-relative addresses and branch targets from it); branch handlers set c.rip themselves.
 */
import { Block, buildBlock, cachedBlock, decodeStraddling } from './block.js';
import type { CpuCore } from './core.js';
import type { Insn } from './decode/insn.js';
import { translateFetch } from './mmu/access.js';
import { physRead8 } from './mmu/physical.js';
import { raiseUD } from './fault.js';
import { compileBlock } from './jit/compile.js';


/** The block at c.rip, or null when its first instruction straddles a page boundary. */
function lookupBlock(c: CpuCore): Block | null {
  const pa = translateFetch(c, c.rip);
  if (pa >= c.memory.size) raiseUD(c); // unbacked fetch: all-ones bytes, FF FF is not an instruction
  const frame = Math.floor(pa / 4096);
  const off = pa - frame * 4096;
  return cachedBlock(c, frame, off) ?? buildBlock(c, frame, off);
}

/** Runs one instruction that crosses a page boundary (decoded each time, never cached). */
function stepStraddling(c: CpuCore): void {
  const start = c.rip;
  const pa = translateFetch(c, start);
  const avail = 4096 - (pa % 4096);
  const first = new Uint8Array(Math.min(avail, 15));
  for (let k = 0; k < first.length; k++) first[k] = physRead8(c, pa + k);
  const i = decodeStraddling(first, () => {
    const pa2 = translateFetch(c, start + avail);
    const rest = new Uint8Array(15);
    for (let k = 0; k < 15; k++) rest[k] = physRead8(c, pa2 + k);
    return rest;
  });
  runSingle(c, i, start);
}

/** Runs one instruction at `rip` with full bookkeeping. */
function runSingle(c: CpuCore, i: Insn, rip: number): boolean {
  c.rip = rip;
  i.exec(c, i);
  if (c.stop !== null) return false;
  if (!i.selfRetiring) c.retired++;
  if (i.entry.flow !== 'branch') c.rip = rip + i.len;
  return true;
}

/** Runs a block's instructions one at a time, stopping at the budget. */
function stepBlock(c: CpuCore, b: Block): void {
  const base = c.rip;
  const insns = b.insns;
  for (let k = 0; k < insns.length && c.retired < c.retireLimit; k++) {
    const i = insns[k]!;
    if (!runSingle(c, i, base + i.offset)) return;
    if (i.entry.flow === 'branch' || c.codeInvalidated) return;
  }
}

/**
 * Runs a whole block (the budget allows it). The block's instructions are counted as retired up
 * front and the count corrected when it ends early (a fault, an intercept, rewritten code), so
 * that a REP instruction at its end sees the exact budget left.
 */
function runBlock(c: CpuCore, b: Block): void {
  const base = c.rip;
  const insns = b.insns;
  const n = insns.length;
  c.retired += n;
  let k = 0;
  try {
    for (; k < n; k++) {
      const i = insns[k]!;
      c.rip = base + i.offset;
      if (i.selfRetiring) c.retired--;
      i.exec(c, i);
      if (c.codeInvalidated && k < n - 1) {
        // A store rewrote cached code: continue from the next instruction, freshly decoded.
        c.retired -= n - k - 1;
        c.rip = base + insns[k + 1]!.offset;
        return;
      }
    }
  } catch (e) {
    c.retired -= n - k - (insns[k]?.selfRetiring ? 1 : 0);
    throw e;
  }
  if (c.stop !== null) {
    c.retired--;
    return;
  }
  if (!b.endsWithBranch) c.rip = base + b.byteLength;
}

/**
 * Runs blocks until c.stop is set, the budget is spent, or the state must be re-checked
 * (c.stateChecked false). Throws GUEST_FAULT for a fault.
 */
export function runBlocks(c: CpuCore): void {
  let prev: Block | null = null;
  while (c.retired < c.retireLimit && c.stateChecked) {
    const rip = c.rip;
    let b: Block | null = null;
    if (prev !== null && prev.nextGeneration === c.tlbGeneration) {
      if (prev.nextRip0 === rip) b = prev.next0;
      else if (prev.nextRip1 === rip) b = prev.next1;
      if (b !== null && !b.valid) b = null;
    }
    if (b === null) {
      b = lookupBlock(c);
      if (b === null) {
        prev = null;
        stepStraddling(c);
        if (c.stop !== null) return;
        continue;
      }
      if (prev !== null) rememberSuccessor(c, prev, rip, b);
    }
    c.codeInvalidated = false;
    if (b.compiled === null && c.jitEnabled && b.runs++ >= c.jitThreshold) compileBlock(c, b);
    if (b.compiled !== null && c.retired + b.compiledLength <= c.retireLimit) {
      c.translatedRuns++;
      b.compiled(c, rip, c.retired);
    } else if (c.retired + b.length > c.retireLimit) {
      stepBlock(c, b);
    } else {
      runBlock(c, b);
    }
    if (c.stop !== null) return;
    prev = c.codeInvalidated ? null : b;
  }
}

function rememberSuccessor(c: CpuCore, prev: Block, rip: number, b: Block): void {
  if (prev.nextGeneration !== c.tlbGeneration) {
    prev.nextGeneration = c.tlbGeneration;
    prev.nextRip0 = rip;
    prev.next0 = b;
    prev.nextRip1 = 0.5;
    prev.next1 = null;
  } else {
    // The newest successor goes to slot 0, the previous one moves to slot 1.
    prev.nextRip1 = prev.nextRip0;
    prev.next1 = prev.next0;
    prev.nextRip0 = rip;
    prev.next0 = b;
  }
}
