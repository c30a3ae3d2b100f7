/**
 * The VMM: VMs made from a policy, by name, and the event log they share.
 *
 *   const vmm = new Vmm({ policy: loadPolicyFile('policy.json') });
 *   const vm = vmm.vm();                                  // the policy's VM, made on first use
 *   const r = await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 });   // { value: 0xd01n, exits: [] }
 *   vmm.log.subscribe({ names: ['heki_denial'] }, (e) => console.log(e));
 *
 * A VM named by a guest (`vm(name)`) is made from the VMM's policy under that name; the
 * conformance runner and tests make VMs with policies of their own (`createVm(name, policy)`).
 * The log's ring keeps the VMM's own events (exits answered, Heki pins and denials, filter
 * changes, lifecycle); the mirrors of KVM's per-instruction tracepoints (kvm_exit, kvm_msr, …)
 * go to subscribers and traces only, unless `recordTracepoints` is set: at several per guest
 * operation they would crowd everything else out of the ring and slow every operation down.
 */
import { modelBackend, type KvmBackend } from '../kvm/api/backend.js';
import type { KvmSystem } from '../kvm/api/system.js';
import { unsurveyedFacts, type HostFacts } from './host-facts.js';
import { limitError } from './errors.js';
import { EVENT_NAMES, EventLog, type EventName, type TraceWriter } from './events/index.js';
import { Machine } from './machine.js';
import type { CompiledPolicy } from './policy/index.js';
import type { MsrExitHandler } from './run/exit-answers.js';
import type { DeviceOptions } from './devices/index.js';

/** The per-request instruction budget unless configured: a guest loop that never ends stops here. */
export const DEFAULT_BUDGET = 1_000_000;
/** VMs one VMM runs at most unless configured. */
export const DEFAULT_MAX_VMS = 64;

/** The events mirrored from KVM's tracepoints (one or more per guest instruction KVM handles). */
export const TRACEPOINT_EVENTS: readonly EventName[] = [
  'kvm_exit', 'kvm_userspace_exit', 'kvm_msr', 'kvm_cr', 'kvm_hypercall', 'kvm_pio', 'kvm_inj_exception',
];
/** What the default log's ring records: everything else. */
export const RING_EVENTS: readonly EventName[] = EVENT_NAMES.filter((n) => !TRACEPOINT_EVENTS.includes(n));

export interface VmmOptions {
  /** The policy VMs are made from. */
  readonly policy: CompiledPolicy;
  /** The file it came from (named in vm_created events). */
  readonly policySource?: string;
  /** The event log (default: a 10,000-event ring of RING_EVENTS). */
  readonly log?: EventLog;
  /** With the default log: let its ring record the tracepoint mirrors too. */
  readonly recordTracepoints?: boolean;
  /** A JSON Lines trace receiving every event, flushed before each answer. */
  readonly trace?: TraceWriter;
  /** Guest instructions one request may retire (default 1,000,000). */
  readonly budget?: number;
  /** VMs at most (default 64). */
  readonly maxVms?: number;
  /** Answers user-space MSR exits before the policy's msrHandlers (return undefined to defer). */
  readonly msrHandler?: MsrExitHandler;
  /**
   * The KVM the VMs are made on (default: the model, modelBackend()); `await loadBackend('kvm')`
   * gives the machine's /dev/kvm (host/kvm/api/backend.ts).
   */
  readonly backend?: KvmBackend;
  /** Devices beyond the serial console every VM has: isa-debug-exit for `pinbox run`. */
  readonly devices?: DeviceOptions;
  /**
   * What a survey found the backend's KVM can do (host-survey.ts: `await openBackend('kvm')`
   * gives both): where the host cannot complete a CPL0 hypercall, a hypercall fails with
   * host_unsupported instead of showing the fault KVM's attempt left. Default: nothing surveyed.
   */
  readonly host?: HostFacts;
}

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1) throw new RangeError(`${name} must be a positive whole number, got ${String(value)}`);
  return value;
}

export class Vmm {
  readonly log: EventLog;
  readonly policy: CompiledPolicy;
  readonly budget: number;
  readonly maxVms: number;
  /** The KVM the VMs are made on. */
  readonly backend: KvmBackend;
  /** The system fd, for KVM_CHECK_EXTENSION without a VM. */
  readonly kvm: KvmSystem;
  /** What is known of the backend's KVM. */
  readonly host: HostFacts;
  private readonly machines = new Map<string, Machine>();
  private readonly detachTrace: (() => void) | undefined;
  private readonly options: VmmOptions;

  constructor(options: VmmOptions) {
    this.options = options;
    this.policy = options.policy;
    this.budget = positiveInteger('budget', options.budget, DEFAULT_BUDGET);
    this.maxVms = positiveInteger('maxVms', options.maxVms, DEFAULT_MAX_VMS);
    this.log = options.log ?? new EventLog(options.recordTracepoints ? {} : { record: RING_EVENTS });
    this.backend = options.backend ?? modelBackend();
    this.host = options.host ?? unsurveyedFacts(this.backend.describe());
    this.kvm = this.backend.open({ profile: options.policy.vmOptions.profile });
    this.detachTrace = options.trace === undefined ? undefined : this.log.attachTrace(options.trace);
  }

  /** The VM of this name, made from the VMM's policy if it does not exist yet. */
  vm(name: string = this.policy.name): Machine {
    return this.machines.get(name) ?? this.createVm(name);
  }

  /** The VM of this name, if it exists. */
  get(name: string): Machine | undefined {
    return this.machines.get(name);
  }

  /** Makes a VM; `limit` past maxVms, an Error if the name is taken. */
  createVm(name: string, policy: CompiledPolicy = this.policy): Machine {
    if (this.machines.has(name)) throw new Error(`VM "${name}" exists already`);
    if (this.machines.size >= this.maxVms) {
      throw limitError(`cannot make VM "${name}": this VMM runs at most ${this.maxVms} VMs (pinbox serve --max-vms)`);
    }
    const machine = new Machine(name, policy, {
      log: this.log,
      budget: this.budget,
      backend: this.backend,
      host: this.host,
      ...(this.options.msrHandler !== undefined && { msrHandler: this.options.msrHandler }),
      ...(this.options.devices !== undefined && { devices: this.options.devices }),
      ...(this.options.policySource !== undefined && policy === this.policy && { policySource: this.options.policySource }),
    });
    this.machines.set(name, machine);
    return machine;
  }

  /** Drops a VM (its guests' later requests get `not_found`). */
  removeVm(name: string): boolean {
    const machine = this.machines.get(name);
    if (machine === undefined) return false;
    machine.kill('control');
    machine.close();
    this.machines.delete(name);
    return true;
  }

  get vmCount(): number {
    return this.machines.size;
  }

  get vmNames(): string[] {
    return [...this.machines.keys()];
  }

  /** Writes out the trace and detaches it; closes what each VM (and this VMM) holds of KVM. */
  close(): void {
    this.log.flush();
    this.detachTrace?.();
    for (const m of this.machines.values()) m.close();
    this.kvm.close?.();
  }
}
