/**
 * Answers user-space MSR exits (KVM_EXIT_X86_RDMSR / KVM_EXIT_X86_WRMSR) from a policy's
 * handler table, keeping the values stored by "store" handlers per vCPU, as MSRs are per
 * logical processor. The VMM copies an answer into kvm_run.msr before the next run():
 * `error` ≠ 0 makes KVM inject #GP (docs/msr-filter.md §2.4), `data` is what RDMSR returns.
 *
 *   const msrs = new EmulatedMsrs(policy.msrHandlers, policy.vcpus);
 *   const answer = exit.reason === 'KVM_EXIT_X86_RDMSR' ? msrs.read(vcpu, exit.msr.index)
 *                                                       : msrs.write(vcpu, exit.msr.index, exit.msr.data);
 *   run.msr.error = answer.error; run.msr.data = answer.data;
 *
 * An MSR without a handler is denied. `reset()` forgets stored values (a VM reset).
 */
import type { MsrHandler } from './compiled.js';

/** How an answer was decided, for the event log. */
export type MsrAnswerSource = 'value' | 'stored' | 'accept' | 'deny' | 'no-handler';

export interface MsrAnswer {
  /** 0: success; 1: KVM injects #GP. */
  readonly error: 0 | 1;
  /** For reads: the value returned. For writes: the value written. */
  readonly data: bigint;
  readonly source: MsrAnswerSource;
}

export class EmulatedMsrs {
  private readonly stored: Map<number, bigint>[];

  constructor(private readonly handlers: ReadonlyMap<number, MsrHandler>, vcpus: number) {
    this.stored = Array.from({ length: vcpus }, () => new Map());
  }

  handler(index: number): MsrHandler | undefined {
    return this.handlers.get(index);
  }

  read(vcpu: number, index: number): MsrAnswer {
    const store = this.vcpuStore(vcpu);
    const h = this.handlers.get(index);
    if (h === undefined) return { error: 1, data: 0n, source: 'no-handler' };
    switch (h.read.kind) {
      case 'value':
        return { error: 0, data: h.read.value, source: 'value' };
      case 'stored':
        return { error: 0, data: store.get(index) ?? h.read.initial, source: 'stored' };
      case 'deny':
        return { error: 1, data: 0n, source: 'deny' };
    }
  }

  write(vcpu: number, index: number, data: bigint): MsrAnswer {
    const store = this.vcpuStore(vcpu);
    const h = this.handlers.get(index);
    if (h === undefined) return { error: 1, data, source: 'no-handler' };
    switch (h.write) {
      case 'store':
        store.set(index, BigInt.asUintN(64, data));
        return { error: 0, data, source: 'stored' };
      case 'accept':
        return { error: 0, data, source: 'accept' };
      case 'deny':
        return { error: 1, data, source: 'deny' };
    }
  }

  /** Every stored value as [vcpu, index, value] (for snapshots). */
  storedValues(): [number, number, bigint][] {
    const out: [number, number, bigint][] = [];
    this.stored.forEach((store, vcpu) => {
      for (const [index, value] of store) out.push([vcpu, index, value]);
    });
    return out;
  }

  /** Replaces every stored value (a snapshot's); entries for vCPUs out of range are refused first. */
  restoreValues(values: readonly (readonly [number, number, bigint])[]): void {
    for (const [vcpu] of values) this.vcpuStore(vcpu);
    this.reset();
    for (const [vcpu, index, value] of values) this.vcpuStore(vcpu).set(index, BigInt.asUintN(64, value));
  }

  /** Forgets every stored value, as a VM reset does. */
  reset(): void {
    for (const s of this.stored) s.clear();
  }

  private vcpuStore(vcpu: number): Map<number, bigint> {
    const s = this.stored[vcpu];
    if (s === undefined) throw new RangeError(`vcpu ${vcpu} is outside 0..${this.stored.length - 1}`);
    return s;
  }
}
