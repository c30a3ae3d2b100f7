/**
 * KVM's tracepoints (arch/x86/kvm/trace.h), with the kernel's event and field names, plus
 * `kvm_heki_blocked` for Heki's `pr_warn_ratelimited("heki: Blocked CRn update: 0x%lx")`
 * and `kvm_msr_ignored` for ignore_msrs' `kvm_pr_unimpl("ignored rdmsr/wrmsr ...")`.
 *
 * Zero cost when nobody listens: emitters test `active` (one property load) before they
 * build the event object. A listener of a tracepoint that fires only on a rare event (RARE: a
 * memory denial) does not make the tracepoints `active`, so a VMM can always hear its denials
 * without every intercept building events; those emitters test `enabled(name)` instead.
 */

import type { TracepointEvents, TracepointName, TracepointSource } from './api/tracepoints.js';

type Listener<K extends TracepointName> = (event: TracepointEvents[K]) => void;

/** Tracepoints for events that do not happen at every intercept: listening to them costs the others nothing. */
const RARE: ReadonlySet<TracepointName> = new Set(['kvm_memory_denial']);

export class Tracepoints implements TracepointSource {
  /** True while anyone listens to a tracepoint that is not RARE (those emitters test `enabled`). */
  active = false;
  private readonly listeners = new Map<TracepointName, Set<Listener<never>>>();

  /** Listens to one tracepoint; returns the function that stops listening. */
  on<K extends TracepointName>(name: K, listener: Listener<K>): () => void {
    let set = this.listeners.get(name);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(listener as Listener<never>);
    this.active ||= !RARE.has(name);
    return () => {
      set.delete(listener as Listener<never>);
      if (set.size === 0) this.listeners.delete(name);
      this.active = [...this.listeners.keys()].some((n) => !RARE.has(n));
    };
  }

  /** Whether `name` has a listener (to skip building an event nobody reads); what a RARE tracepoint's emitter tests. */
  enabled(name: TracepointName): boolean {
    return this.listeners.has(name);
  }

  emit<K extends TracepointName>(name: K, event: TracepointEvents[K]): void {
    const set = this.listeners.get(name);
    if (set === undefined) return;
    for (const listener of set) (listener as Listener<K>)(event);
  }
}
