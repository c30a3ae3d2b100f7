/** Helpers for the VMM tests: a VMM over a policy document, and the events it recorded. */
import { EventLog, parsePolicy, Vmm, type Event, type EventName, type VmmOptions } from '../../host/vmm/index.js';

export interface TestVmm {
  vmm: Vmm;
  vm: ReturnType<Vmm['vm']>;
  /** Every event, in order (a subscriber from the start). */
  events: Event[];
  named(name: EventName): Event[];
}

export function testVmm(policy: unknown = {}, options: Omit<VmmOptions, 'policy'> = {}): TestVmm {
  const log = options.log ?? new EventLog();
  const events: Event[] = [];
  log.subscribe({}, (e) => events.push(e));
  const vmm = new Vmm({ ...options, log, policy: parsePolicy(policy) });
  return { vmm, vm: vmm.vm(), events, named: (name) => events.filter((e) => e.name === name) };
}

/** Machine code, written as bytes with the instruction in a comment. */
export const code = (...bytes: number[]): Uint8Array => Uint8Array.from(bytes);
