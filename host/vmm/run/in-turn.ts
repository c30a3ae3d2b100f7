/**
 * `pinbox run --vcpus N`: every vCPU starts at the image's entry, and they run in turn, a slice
 * of QUANTUM guest instructions each, vCPU 0 first — the same interleaving every time, so an SMP
 * guest (pin on one vCPU, attack from another, spin on a flag between) behaves the same on every
 * run and every machine. A vCPU is done when it halts, faults, shuts down or spends its budget;
 * the run is done when all are, or at once when one writes to the exit port (isa-debug-exit).
 *
 * A slice that spends its budget leaves the vCPU at an instruction boundary, as an external
 * interrupt would (KVM_EXIT_INTR); the next slice goes on from there (vcpu-runner.ts).
 */
import type { ExecOutcome, ExecRequest } from './exec.js';
import type { GuestResult } from './result.js';
import type { PerformOptions, VcpuRunner } from './vcpu-runner.js';

/** Guest instructions per slice when several vCPUs take turns. */
export const QUANTUM = 10_000;

export interface InTurnOptions {
  readonly entry: bigint;
  /** vCPUs 0..vcpus-1 run. */
  readonly vcpus: number;
  /** Guest instructions each vCPU may retire in all. */
  readonly budget: number;
  /** The registers each vCPU enters with (others 0). */
  readonly regs: (vcpu: number) => ExecRequest['regs'];
  readonly quantum?: number;
  /** For every slice: a debugger and its exit hook (`pinbox run --gdb`, one vCPU). */
  readonly perform?: PerformOptions;
}

/** How one vCPU ended: its last slice's outcome, or 'running' when another ended the run. */
export type VcpuEnd = (ExecOutcome | (Omit<ExecOutcome, 'stop'> & { stop: 'running' })) & Partial<GuestResult> & { readonly vcpu: number };

export interface InTurnOutcome {
  readonly vcpus: readonly VcpuEnd[];
  /** Set when a vCPU wrote to the exit port: which, and the value. */
  readonly exit?: { readonly vcpu: number; readonly value: number };
}

export interface InTurnHost {
  vcpu(id: number): VcpuRunner;
}

export async function runInTurn(host: InTurnHost, options: InTurnOptions): Promise<InTurnOutcome> {
  const n = options.vcpus;
  const quantum = n === 1 ? options.budget : Math.min(options.quantum ?? QUANTUM, options.budget);
  const left = new Array<number>(n).fill(options.budget);
  const ends: (VcpuEnd | undefined)[] = new Array(n).fill(undefined);
  const last: (VcpuEnd | undefined)[] = new Array(n).fill(undefined);
  let running = n;
  while (running > 0) {
    for (let v = 0; v < n; v++) {
      if (ends[v] !== undefined) continue;
      const budget = Math.min(quantum, left[v]!);
      const out = await host.vcpu(v).runInPlace({
        entry: options.entry, budget, slice: last[v] === undefined ? 'first' : 'resume', regs: options.regs(v),
      }, options.perform);
      const end: VcpuEnd = { ...out, vcpu: v };
      last[v] = end;
      if (out.stop === 'exit') {
        ends[v] = end;
        // A vCPU that never had its first slice has no registers to show: it had not started.
        const vcpus = ends.map((e, i) => e ?? (last[i] === undefined ? undefined : { ...last[i], stop: 'running' as const }));
        return { vcpus: vcpus.filter((e): e is VcpuEnd => e !== undefined), exit: { vcpu: v, value: out.exitValue! } };
      }
      if (out.stop === 'budget') {
        left[v]! -= budget;
        if (left[v]! > 0) continue;
      }
      ends[v] = end;
      running--;
    }
  }
  return { vcpus: ends as VcpuEnd[] };
}
