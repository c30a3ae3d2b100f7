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
import { limitError, notFound } from './errors.js';
import { EVENT_NAMES, EventLog, type EventName, type TraceWriter } from './events/index.js';
import { Machine } from './machine.js';
import type { MemoryAttributesRequest, MemoryAttributesView } from './memory-protection.js';
import { MonitorRegistry } from './monitors.js';
import type { InterceptMonitor } from './run/cr-exit-answers.js';
import type { CompiledPolicy } from './policy/index.js';
import { DEFAULT_MAX_EXITS, DEFAULT_MAX_REQUEST_MS, RequestAllowance, type RequestLimits } from './run/allowance.js';
import type { MsrExitHandler } from './run/exit-answers.js';
import type { DeviceOptions } from './devices/index.js';
import { Pacer } from './run/pacer.js';

/** The per-request instruction budget unless configured: a guest loop that never ends stops here. */
export const DEFAULT_BUDGET = 1_000_000;
/** VMs guests may make (and, apart from them, VMs control clients may make) unless configured. */
export const DEFAULT_MAX_VMS = 64;
/** How long a VM a guest made lives on with no guest attached, unless configured: 10 minutes. */
export const DEFAULT_VM_IDLE_MS = 600_000;

/** Who made a VM: a guest naming it, or a control client's createVm (and in-process callers). */
export type VmOrigin = 'guest' | 'control';

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
  /** Guest instructions one request may retire (default 1,000,000); a delivered fault costs one too. */
  readonly budget?: number;
  /** User-space exits one request may cause (default 65,536). */
  readonly maxExits?: number;
  /**
   * Milliseconds of the server's time one request may take (default 1000; Infinity: no limit); a
   * batch is one request. Waiting — for a paused VM, a held exit, other clients' turns — does not count.
   */
  readonly maxRequestMs?: number;
  /** How long long-running work goes on before other clients get a turn (default 10 ms; pacer.ts). */
  readonly sliceMs?: number;
  /** VMs guests may make by naming them (default 64). */
  readonly maxVms?: number;
  /** VMs control clients (createVm) may make, counted apart from the guests' (default 64). */
  readonly maxControlVms?: number;
  /**
   * Whether a guest naming a VM that does not exist gets one made from the policy (default true,
   * pinbox serve --guest-vms create). False: guests attach only to VMs that exist — the policy's
   * VM, made at once, and those control clients made.
   */
  readonly guestsCreateVms?: boolean;
  /**
   * A VM a guest made (other than the policy's own) is dropped after this many ms with no guest
   * attached (default 10 minutes; Infinity: never).
   */
  readonly vmIdleMs?: number;
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

function positiveDuration(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!(value > 0) || Number.isNaN(value)) throw new RangeError(`${name} must be a positive number of milliseconds or Infinity, got ${String(value)}`);
  return value;
}

export class Vmm {
  readonly log: EventLog;
  readonly policy: CompiledPolicy;
  readonly budget: number;
  readonly maxVms: number;
  readonly maxControlVms: number;
  readonly guestsCreateVms: boolean;
  readonly vmIdleMs: number;
  /** The per-request limits (budget, exits, time) every VM's runners apply. */
  readonly limits: RequestLimits;
  /** Turns on the event loop, shared by every runner and the servers' batches. */
  readonly pacer: Pacer;
  /** The KVM the VMs are made on. */
  readonly backend: KvmBackend;
  /** The system fd, for KVM_CHECK_EXTENSION without a VM. */
  readonly kvm: KvmSystem;
  /** What is known of the backend's KVM. */
  readonly host: HostFacts;
  private readonly machines = new Map<string, Machine>();
  private readonly origins = new Map<Machine, VmOrigin>();
  /** Guest connections attached to each VM, and the reclaim timers of idle guest-made VMs. */
  private readonly attached = new Map<Machine, number>();
  private readonly idleTimers = new Map<Machine, ReturnType<typeof setTimeout>>();
  /** Each VM's monitor, the higher VTL that decides its register intercepts (docs/register-intercepts.md). */
  readonly monitors = new MonitorRegistry();
  private readonly detachTrace: (() => void) | undefined;
  private readonly options: VmmOptions;

  constructor(options: VmmOptions) {
    this.options = options;
    this.policy = options.policy;
    this.budget = positiveInteger('budget', options.budget, DEFAULT_BUDGET);
    this.maxVms = positiveInteger('maxVms', options.maxVms, DEFAULT_MAX_VMS);
    this.maxControlVms = positiveInteger('maxControlVms', options.maxControlVms, DEFAULT_MAX_VMS);
    this.guestsCreateVms = options.guestsCreateVms ?? true;
    this.vmIdleMs = positiveDuration('vmIdleMs', options.vmIdleMs, DEFAULT_VM_IDLE_MS);
    this.limits = {
      budget: this.budget,
      maxExits: positiveInteger('maxExits', options.maxExits, DEFAULT_MAX_EXITS),
      maxRequestMs: positiveDuration('maxRequestMs', options.maxRequestMs, DEFAULT_MAX_REQUEST_MS),
    };
    this.pacer = new Pacer(options.sliceMs);
    this.log = options.log ?? new EventLog(options.recordTracepoints ? {} : { record: RING_EVENTS });
    this.backend = options.backend ?? modelBackend();
    this.host = options.host ?? unsurveyedFacts(this.backend.describe());
    this.kvm = this.backend.open({ profile: options.policy.vmOptions.profile });
    if (this.limits.maxRequestMs === Infinity && this.kvm.model === undefined) {
      this.kvm.close?.();
      throw new RangeError(`maxRequestMs cannot be Infinity on the ${this.backend.name} backend: it counts no guest instructions, so time is all that bounds a request`);
    }
    this.detachTrace = options.trace === undefined ? undefined : this.log.attachTrace(options.trace);
    if (!this.guestsCreateVms) {
      try {
        this.createVm(this.policy.name, this.policy, 'guest');
      } catch (e) {
        this.close();
        throw e;
      }
    }
  }

  /**
   * The VM of this name, made from the VMM's policy if it does not exist yet (as for a guest
   * naming it: counted against maxVms). With guestsCreateVms false, only the policy's VM is.
   */
  vm(name: string = this.policy.name): Machine {
    const existing = this.machines.get(name);
    if (existing !== undefined) return existing;
    if (!this.guestsCreateVms) {
      throw notFound(`no VM "${name}": this server makes no VMs for guests (pinbox serve --guest-vms existing); a control client's createVm makes one`, 'vm');
    }
    return this.createVm(name, this.policy, 'guest');
  }

  /** The VM of this name, if it exists. */
  get(name: string): Machine | undefined {
    return this.machines.get(name);
  }

  /**
   * Makes a VM; an Error if the name is taken, `limit` past the maximum of its origin: VMs guests
   * make and VMs control clients make are counted apart, so that guests filling their share
   * never keep an operator from making one.
   */
  createVm(name: string, policy: CompiledPolicy = this.policy, origin: VmOrigin = 'control'): Machine {
    if (this.machines.has(name)) throw new Error(`VM "${name}" exists already`);
    const max = origin === 'guest' ? this.maxVms : this.maxControlVms;
    if (this.countOf(origin) >= max) {
      throw limitError(origin === 'guest'
        ? `cannot make VM "${name}": guests may have at most ${max} VMs made for them (pinbox serve --max-vms)`
        : `cannot make VM "${name}": control clients may make at most ${max} VMs (pinbox serve --max-control-vms)`);
    }
    const machine = new Machine(name, policy, {
      log: this.log,
      limits: this.limits,
      pacer: this.pacer,
      backend: this.backend,
      monitors: this.monitors,
      host: this.host,
      ...(this.options.msrHandler !== undefined && { msrHandler: this.options.msrHandler }),
      ...(this.options.devices !== undefined && { devices: this.options.devices }),
      ...(this.options.policySource !== undefined && policy === this.policy && { policySource: this.options.policySource }),
    });
    this.machines.set(name, machine);
    this.origins.set(machine, origin);
    return machine;
  }

  /**
   * Makes `monitor` the higher VTL of VM `vm` (which need not exist yet): it decides each register
   * intercept of that VM's vCPUs from now on; `already_exists` if the VM has one. Returns the
   * function that detaches it (the intercepts stay, answered by the policy until another comes).
   */
  attachMonitor(vm: string, monitor: InterceptMonitor, connection?: number): () => void {
    const detach = this.monitors.attach(vm, monitor);
    const fields = connection === undefined ? {} : { connection };
    if (this.log.wants('monitor_attached', vm)) this.log.emit('monitor_attached', vm, fields);
    return () => {
      detach();
      if (this.log.wants('monitor_detached', vm)) this.log.emit('monitor_detached', vm, fields);
    };
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES on VM `vm` with pinbox's RWX attributes (KVM_MEMORY_ATTRIBUTE_PINBOX_*):
   * `not_found` for a VM that does not exist, the KVM's EINVAL for a range or attributes it refuses.
   */
  setMemoryAttributes(vm: string, request: MemoryAttributesRequest): void {
    this.existing(vm).setMemoryAttributes(request);
  }

  /** The memory protections of VM `vm`: attributes set, effective permissions (Heki's locks included), MBEC, delivery. */
  memoryAttributes(vm: string): MemoryAttributesView {
    return this.existing(vm).memoryAttributes();
  }

  private existing(name: string): Machine {
    const machine = this.machines.get(name);
    if (machine === undefined) throw notFound(`no VM "${name}"`, 'vm');
    return machine;
  }

  /** Drops a VM (its guests' later requests get `not_found`). */
  removeVm(name: string, cause: 'control' | 'idle' = 'control'): boolean {
    const machine = this.machines.get(name);
    if (machine === undefined) return false;
    machine.kill(cause);
    machine.close();
    this.machines.delete(name);
    this.origins.delete(machine);
    this.attached.delete(machine);
    this.stopIdleTimer(machine);
    return true;
  }

  /** VMs made by guests, or by control clients. */
  countOf(origin: VmOrigin): number {
    let n = 0;
    for (const o of this.origins.values()) if (o === origin) n++;
    return n;
  }

  /** A guest connection attached to the VM: it is not idle. */
  attach(machine: Machine): void {
    this.attached.set(machine, (this.attached.get(machine) ?? 0) + 1);
    this.stopIdleTimer(machine);
  }

  /**
   * A guest connection left the VM. A VM a guest made (other than the policy's own) that has no
   * guest left is dropped after vmIdleMs, unless one attaches meanwhile.
   */
  detach(machine: Machine): void {
    const n = (this.attached.get(machine) ?? 1) - 1;
    if (n > 0) {
      this.attached.set(machine, n);
      return;
    }
    this.attached.delete(machine);
    if (this.origins.get(machine) !== 'guest' || machine.name === this.policy.name || this.vmIdleMs === Infinity) return;
    this.stopIdleTimer(machine);
    const timer = setTimeout(() => {
      this.idleTimers.delete(machine);
      if (this.machines.get(machine.name) === machine && !this.attached.has(machine)) this.removeVm(machine.name, 'idle');
    }, this.vmIdleMs);
    timer.unref?.();
    this.idleTimers.set(machine, timer);
  }

  private stopIdleTimer(machine: Machine): void {
    const timer = this.idleTimers.get(machine);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.idleTimers.delete(machine);
  }

  get vmCount(): number {
    return this.machines.size;
  }

  get vmNames(): string[] {
    return [...this.machines.keys()];
  }

  /**
   * A fresh allowance of the per-request limits: one per request, shared by a batch's ops; with
   * `owner`, the request stops once that connection is closed.
   */
  allowance(batch = false, owner?: { readonly closed: boolean }): RequestAllowance {
    return new RequestAllowance(this.limits, batch, owner);
  }

  /** Writes out the trace and detaches it; closes what each VM (and this VMM) holds of KVM. */
  close(): void {
    this.log.flush();
    this.detachTrace?.();
    for (const m of this.machines.values()) m.close();
    for (const timer of this.idleTimers.values()) clearTimeout(timer);
    this.idleTimers.clear();
    this.kvm.close?.();
  }
}
