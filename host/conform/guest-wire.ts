/**
 * A scenario's guest action as the protocol's guest request (PROTOCOL.md §5), and a guest
 * result back as the runner's GuestOutcome. Both targets speak it: the in-process one hands the
 * request to the VMM as its guest endpoint does, the remote one sends it to a pinbox server.
 */
import type { BatchableOp, Request } from '../../protocol/messages/index.js';
import type { TargetGuestAction } from './model.js';
import type { GuestOutcome, TargetExit, TargetFault } from './target.js';

/** `{ op, ...params }` of a guest op. */
export type WireGuestRequest = Request<BatchableOp>;

export function wireGuestRequest(action: TargetGuestAction, cpl: 0 | 3): WireGuestRequest {
  switch (action.op) {
    case 'hypercall':
      return { op: 'hypercall', nr: action.nr, args: [...action.args], insn: action.insn, cpl };
    case 'exec':
      return {
        op: 'exec', code: action.code, regs: { ...action.regs }, cpl,
        ...(action.budget !== undefined && { budget: action.budget }),
      };
    default:
      return { ...action, cpl };
  }
}

/**
 * The outcome of a guest result (its exits already turned into TargetExits): the fault, the
 * value or return, exec's stop and registers, and CPUID's EAX..EDX as rax..rdx.
 */
export function guestOutcome(action: TargetGuestAction, result: object, exits: readonly TargetExit[]): GuestOutcome {
  const r = result as Record<string, unknown>;
  const fault = r.fault as { vector: number; errorCode?: number } | undefined;
  const faulted: TargetFault | undefined = fault === undefined ? undefined : { vector: fault.vector, errorCode: fault.errorCode };
  const base = { exits, ...(faulted !== undefined && { fault: faulted }) };
  if (action.op === 'exec') return { ...base, stop: r.stop as GuestOutcome['stop'], regs: r.regs as GuestOutcome['regs'] };
  if (faulted !== undefined) return base;
  if (action.op === 'cpuid') {
    return { ...base, regs: { rax: BigInt(r.eax as number), rbx: BigInt(r.ebx as number), rcx: BigInt(r.ecx as number), rdx: BigInt(r.edx as number) } };
  }
  if (r.value !== undefined) return { ...base, value: r.value as bigint };
  if (r.ret !== undefined) return { ...base, ret: r.ret as bigint };
  return base;
}
