/**
 * Debug exceptions (SDM vol. 3B ch. 18): the single-step trap of RFLAGS.TF, instruction
 * breakpoints from DR0-DR3 and DR7, the resume flag RF, and DR6's record of what raised a #DB.
 *
 * The block loop runs traces of many instructions and checks nothing between them; when any of
 * these can act — TF or RF set, or an instruction breakpoint armed — run() steps one instruction
 * at a time instead (stepping.ts), checking a breakpoint before each and TF after it. What turns
 * stepping on mid-trace (POPF, IRET, SYSRET, MOV DR7) ends the trace by clearing `stateChecked`,
 * so that run() looks again before the next instruction.
 *
 * MODEL DECISIONS: data breakpoints (DR7 R/W = 01 or 11) and I/O breakpoints are accepted in
 * DR7 and never trigger; the MOV SS / POP SS shadow that delays a #DB by one instruction is not
 * modelled; a REP string instruction traps after each iteration, as on hardware.
 */
import { DB_VECTOR, DR6_ACTIVE_LOW, DR6_BD, DR6_BS, DR6_BT, DR6_TRAP_BITS, X86_EFLAGS_RF, X86_EFLAGS_TF } from '../../protocol/abi.js';
import type { CpuCore } from './core.js';
import { EVENT_HARDWARE, raiseEvent } from './exceptions/delivery.js';

/** DR6 bits that a #DB's conditions set (B0-B3, BD, BS, BT). */
const DR6_CONDITIONS = DR6_TRAP_BITS | DR6_BD | DR6_BS | DR6_BT;

/** Whether run() must step instruction by instruction: TF, RF, or an armed instruction breakpoint. */
export function needsStepping(c: CpuCore): boolean {
  return (c.flags & (X86_EFLAGS_TF | X86_EFLAGS_RF)) !== 0 || c.breakpointsArmed;
}

/**
 * Recomputes the armed instruction breakpoints from the DR7 in force (the hypervisor's when it
 * has put its own, else the guest's): enabled (Ln or Gn) with R/W = 00 (execution). Marks the
 * state for re-checking, so that a trace in progress ends and run() steps from here on.
 */
export function armBreakpoints(c: CpuCore): void {
  const host = c.hostBreakpoints;
  const dr7 = host === null ? c.dr7 : host.dr7;
  const dr = host === null ? c.dr : host.dr;
  let armed = false;
  for (let n = 0; n < 4; n++) {
    const enabled = ((dr7 >>> (2 * n)) & 3) !== 0;
    const execute = ((dr7 >>> (16 + 4 * n)) & 3) === 0;
    const at = Number(BigInt.asIntN(64, dr[n] ?? 0n));
    c.breakpointAt[n] = enabled && execute ? at : NaN;
    armed ||= enabled && execute;
  }
  c.breakpointsArmed = armed;
  c.stateChecked = false;
}

/** DR6 B0-B3 for the instruction breakpoints at `rip`. */
export function breakpointHits(c: CpuCore, rip: number): number {
  let hits = 0;
  for (let n = 0; n < 4; n++) if (c.breakpointAt[n] === rip) hits |= 1 << n;
  return hits;
}

/**
 * Raises #DB for `conditions` (DR6 bits): through the exception bitmap (whose intercept carries
 * them, as VMX's exit qualification does) or to the guest, which finds them in DR6. An
 * instruction breakpoint is a fault: the frame's RFLAGS has RF set, so that the handler's IRET
 * does not hit the same breakpoint again.
 */
export function raiseDebugException(c: CpuCore, conditions: number, fault: boolean): boolean {
  c.debugTrapBits = conditions;
  if (fault && ((c.exceptionBitmap >>> DB_VECTOR) & 1) === 0) c.flags |= X86_EFLAGS_RF;
  return raiseEvent(c, DB_VECTOR, -1, 0, EVENT_HARDWARE, c.rip, false);
}

/**
 * DR6 as a #DB being delivered leaves it: B0-B3 replaced by this #DB's, BD, BS and BT kept once
 * set (SDM vol. 3B §18.2.3; KVM's kvm_deliver_exception_payload()).
 */
export function noteDebugCondition(c: CpuCore): void {
  const bits = takeDebugCondition(c);
  c.dr6 = ((c.dr6 & ~DR6_TRAP_BITS) | DR6_ACTIVE_LOW | bits) >>> 0;
}

/** The conditions of the #DB being raised (and forgets them). */
export function takeDebugCondition(c: CpuCore): number {
  const bits = c.debugTrapBits & DR6_CONDITIONS;
  c.debugTrapBits = 0;
  return bits;
}
