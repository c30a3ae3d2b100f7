/**
 * What the run loop (vcpu-runner.ts) asks of a debugger attached to a request — the gdb stub of
 * `pinbox run --gdb` (host/vmm/gdb) is one. The loop then runs the guest in slices, so that the
 * debugger is looked at between them (a Ctrl-C stops the guest; other VMs and clients run), hands
 * it every KVM_EXIT_DEBUG (its breakpoints and single steps, armed with KVM_SET_GUEST_DEBUG), and
 * lets it see the state the request ends in (a fault, a triple fault, HLT) before the VMM goes on.
 * Each call returns a promise that settles when the debugger lets the guest go on.
 */
import type { KvmRunDebug } from '../../kvm/api/exits.js';
import type { ExecOutcome } from './exec.js';

export interface RunDebugHook {
  /**
   * Guest instructions per KVM_RUN. The model counts them (ModelVcpu); a debugger is attached
   * only there (`pinbox run --gdb` refuses another backend).
   */
  readonly slice: number;
  /** Before the request's first instruction, its registers loaded: settles when the guest may start. */
  started(): Promise<void>;
  /** Between two slices: settles at once, or when a stop the debugger asked for (Ctrl-C) is over. */
  between(): Promise<void>;
  /** KVM_EXIT_DEBUG: the guest stopped for the debugger. */
  debugExit(debug: KvmRunDebug): Promise<void>;
  /** The request ends (exec: HLT, an unhandled fault, a triple fault) in this state. */
  ended(outcome: ExecOutcome): Promise<void>;
}

/**
 * The request ended in `outcome()`; the debugger sees it first when it is exec's (the outcome
 * of any other request is the VMM's own template ending, nothing of the guest's).
 */
export function debugEnding<R extends object>(debug: RunDebugHook, outcome: () => R): R | Promise<R> {
  const r = outcome();
  if (!('stop' in r) || !('regs' in r)) return r;
  return debug.ended(r as unknown as ExecOutcome).then(() => r);
}
