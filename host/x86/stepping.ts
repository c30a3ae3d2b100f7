/**
 * Stepping: while TF, RF or an armed instruction breakpoint can act, run() runs one instruction
 * at a time (debug.ts says why and what), with the breakpoint check before it and the
 * single-step trap after it. Kept apart from debug.ts because it drives the block loop, which
 * the instruction handlers that use debug.ts must not import.
 */
import { DR6_BS, X86_EFLAGS_RF, X86_EFLAGS_TF } from '../../protocol/abi.js';
import type { CpuCore } from './core.js';
import { breakpointHits, needsStepping, raiseDebugException } from './debug.js';
import { runBlocks } from './interpreter.js';

/** One instruction, with the breakpoint check before it and the single-step trap after it. */
function stepOne(c: CpuCore): void {
  if ((c.flags & X86_EFLAGS_RF) === 0 && c.breakpointsArmed) {
    const hits = breakpointHits(c, c.rip);
    if (hits !== 0) {
      raiseDebugException(c, hits, true);
      return;
    }
  }
  const tf = (c.flags & X86_EFLAGS_TF) !== 0;
  const delivered = c.idtDeliveries;
  const retired = c.retired;
  const limit = c.retireLimit;
  c.retireLimit = retired + 1;
  c.rfLoaded = false;
  try {
    runBlocks(c);
  } finally {
    c.retireLimit = limit;
  }
  // An intercepted instruction has not retired: the hypervisor finishes it, and its own skip
  // raises the trap (KVM's kvm_skip_emulated_instruction()).
  if (c.stop !== null || c.retired === retired) return;
  if (!c.rfLoaded) c.flags &= ~X86_EFLAGS_RF;
  // INT n, INT3, INTO and a fault's delivery clear TF for the handler: no trap follows them.
  if (tf && c.idtDeliveries === delivered) raiseDebugException(c, DR6_BS, false);
}

/**
 * Runs instructions one at a time while stepping is needed, within the budget; returns when it
 * no longer is (run() goes back to whole blocks), when the core stops, or when the state must
 * be checked again. Faults propagate as from runBlocks().
 */
export function stepInstructions(c: CpuCore): void {
  while (c.retired < c.retireLimit && c.stateChecked && needsStepping(c)) {
    stepOne(c);
    if (c.stop !== null) return;
  }
}
