/**
 * One VM as the VMM runs it: the KVM VM made from a policy, its boot image, a runner per
 * vCPU, how its exits are answered, whether it may run, and the control operations on it.
 *
 * Creating it applies the policy in the order compiled.ts documents: KVM_CREATE_VM, the
 * capabilities (user-space MSR exits before any filter, api.rst §4.97), the MSR filter, the
 * boot image, then each vCPU created and booted.
 *
 * Lifecycle (README "VM reset, INIT and triple faults"):
 *   - pause / resume: guest operations wait (one paused in a denial exit goes on when resumed);
 *   - kill: every operation on the VM fails (`vm_killed`) until a reset revives it;
 *   - reset: the VM as its policy makes it, as user space rebuilds a machine on a reboot —
 *     guest memory is cleared and the boot image written again, every vCPU gets INIT and the
 *     boot state, the Heki pins and the stored MSR values are cleared, and what control clients
 *     changed is undone: the capabilities and the MSR filter are the policy's again, a
 *     setMsrExitReply is dropped. Operations suspended in the VM are abandoned;
 *     Memory protections are cleared too (attributes, Heki's memory locks, MBEC, delivery), then
 *     the policy's memory section is applied again;
 *   - initVcpu: INIT and the boot state for one vCPU; the pins and memory protections stay (Heki keeps them across
 *     INIT, docs/heki.md §1.4; Paolo Bonzini's position, §5.4).
 * What each of these does to every CR-hardening mechanism is one table: docs/transitions.md.
 */
import type { HekiProfileName } from '../../protocol/abi.js';
import {
  KVM_HEKI_EXIT_REASON_CR0, KVM_HEKI_EXIT_REASON_CR4, KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_DEFAULT_DENY,
} from '../../protocol/abi.js';
import type { KvmBackend } from '../kvm/api/backend.js';
import { KvmError } from '../kvm/api/errors.js';
import type { GuestMemory } from '../kvm/api/guest-memory.js';
import type { HekiSnapshot, ModelVm } from '../kvm/api/model.js';
import type { MsrFilterSpec } from '../kvm/api/msr-filter.js';
import type { Regs, Segment, Sregs } from '../kvm/api/regs.js';
import type { KvmSystem, VmOptions } from '../kvm/api/system.js';
import type { ExceptionEvent, KvmVcpu, MsrEntry } from '../kvm/api/vcpu.js';
import type { KvmVm } from '../kvm/api/vm.js';
import type { RegInterceptSpec } from '../kvm/api/cr-hardening.js';
import { CrHardening } from './cr-hardening.js';
import {
  applyMemoryPolicy, memoryAttributesView, setMemoryAttributes, type MemoryAttributesRequest, type MemoryAttributesView,
} from './memory-protection.js';
import type { MonitorRegistry } from './monitors.js';
import type { InterceptMonitor } from './run/cr-exit-answers.js';
import { buildBootImage, type BootCpuFeatures, type BootLayout } from './boot/index.js';
import { notFound } from './errors.js';
import { PortDevices, type DeviceOptions } from './devices/index.js';
import type { HostFacts } from './host-facts.js';
import type { EventLog } from './events/index.js';
import type { CompiledPolicy, OnShutdown } from './policy/index.js';
import { RunState, type VmState } from './run-state.js';
import type { RequestLimits } from './run/allowance.js';
import { ExitAnswers, type MsrExitHandler } from './run/exit-answers.js';
import type { Pacer } from './run/pacer.js';
import { parseGuestRequest, type GuestRequest } from './run/operations.js';
import type { GuestResult } from './run/result.js';
import { reflectException, type MemoryDenial } from './run/memory-denials.js';
import { TracepointBridge } from './run/tracepoint-bridge.js';
import type { MsrExitChoice, PinboxExitAnswer } from './run/user-space-exit.js';
import { checkedPinboxAnswer } from './run/cr-exit-answers.js';
import { VcpuRunner, type PerformOptions, type RunnerHost } from './run/vcpu-runner.js';

export interface MachineOptions {
  readonly log: EventLog;
  readonly limits: RequestLimits;
  readonly pacer: Pacer;
  /** The KVM the VM is made on (host/kvm/api/backend.ts). */
  readonly backend: KvmBackend;
  /** What is known of the backend's KVM (host-facts.ts). */
  readonly host: HostFacts;
  readonly msrHandler?: MsrExitHandler;
  /** The policy file, for the vm_created event. */
  readonly policySource?: string;
  /** The VMM's monitors by VM name (the higher VTL of each VM that has one). */
  readonly monitors?: MonitorRegistry;
  /** Devices beyond the serial console (the exit port of `pinbox run`). */
  readonly devices?: DeviceOptions;
}

/** Where a filter came from, for msr_filter_changed. */
export type FilterOrigin = 'policy' | 'control';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? Partial<T[K]> : T[K] };
export type SregsPatch = DeepPartial<Sregs>;

/** No pins: what a backend without the model's view of Heki shows. */
const NO_PINS = Object.freeze({ cr0: 0n, cr4: 0n });

export class Machine implements RunnerHost {
  readonly vm: KvmVm;
  readonly kvm: KvmSystem;
  readonly layout: BootLayout;
  readonly state: RunState;
  readonly answers: ExitAnswers;
  /** The ports user space answers: the serial console, the exit port. */
  readonly devices: PortDevices;
  readonly log: EventLog;
  readonly limits: RequestLimits;
  readonly pacer: Pacer;
  readonly onShutdown: OnShutdown;
  readonly hypercallsComplete: boolean;
  readonly hypercallsDetail: string;
  private readonly runners: VcpuRunner[] = [];
  /** The secret a guest's hello must carry to attach to this VM (createVm's guestToken), if any. */
  guestToken: { matches(candidate: string): boolean } | undefined;
  /** KVM's tracepoints into the event log: the model's only (a real kernel's are in tracefs). */
  private readonly bridge: TracepointBridge | undefined;
  /**
   * What user space has set through KVM and cannot read back (KVM has no getter for them):
   * the KVM_ENABLE_CAP arguments by capability and the MSR filter in force, for snapshots.
   */
  private readonly capsEnabled = new Map<number, readonly bigint[]>();
  private filter: MsrFilterSpec | undefined;
  /** The CR4 features the boot state turns on: those the guest CPUID has. */
  private readonly bootFeatures: BootCpuFeatures;
  /** The CR filter and the register intercepts user space set (cr-hardening.ts). */
  readonly crHardening: CrHardening;
  private readonly monitors: MonitorRegistry | undefined;

  constructor(readonly name: string, readonly policy: CompiledPolicy, options: MachineOptions) {
    this.log = options.log;
    this.limits = options.limits;
    this.pacer = options.pacer;
    this.onShutdown = policy.onShutdown;
    this.hypercallsComplete = options.host.hypercalls.complete;
    this.hypercallsDetail = options.host.hypercalls.detail;
    this.state = new RunState(name);
    this.monitors = options.monitors;
    const vcpus = policy.vmOptions.vcpus;
    this.kvm = options.backend.open({ profile: policy.vmOptions.profile });
    // A refusal on the way (a policy the backend cannot honour) leaves no fd open.
    try {
      this.vm = this.kvm.createVm(vmOptionsFor(this.kvm, policy));
      this.crHardening = new CrHardening(this, policy);
      this.applyPolicyConfiguration();
      applyMemoryPolicy(this.vm, policy.memory);
      this.devices = new PortDevices(this.log, name, options.devices);
      this.answers = new ExitAnswers(this, policy, this.log, options.msrHandler, policy.onDenial, this.devices);
      const tracepoints = this.kvm.model?.tracepoints;
      this.bridge = tracepoints === undefined ? undefined : new TracepointBridge(tracepoints, this.log, name, {
        exitName: (v) => this.runners[v]?.vcpu.kvmRun.reason ?? 'KVM_EXIT_UNKNOWN',
        denialExits: (cr) => this.denialExits(cr),
        isCompletion: (v, rip) => this.runners[v]?.isCompletion(rip) === true,
        actsOnMemoryDenials: () => policy.memory.onViolation !== 'log',
        injectedMemoryDenial: (v, denial, rip) => this.injectedMemoryDenial(v, denial, rip),
      });

      const first = this.createVcpu(0);
      const cpuid = first.getCpuid();
      this.bootFeatures = { smep: cpuid.smep, smap: cpuid.smap, umip: cpuid.umip, fsgsbase: cpuid.fsgsbase };
      this.layout = buildBootImage(this.vm.memory, { vcpus, cpuFeatures: this.bootFeatures });
      if (this.log.wants('vm_created', name)) {
        const fields = { vcpus, memory: BigInt(policy.memorySize), profile: policy.vmOptions.profile };
        this.log.emit('vm_created', name, options.policySource === undefined ? fields : { ...fields, policy: options.policySource });
      }
      if (policy.msrFilter !== undefined) this.filterChanged(policy.msrFilter, 'policy');
      if (policy.crFilter !== undefined) this.crHardening.filterChanged('policy');
      for (let id = 0; id < vcpus; id++) {
        const runner = new VcpuRunner(id, id === 0 ? first : this.createVcpu(id), this);
        this.runners.push(runner);
        runner.reboot('create');
        this.crHardening.policyIntercepts(runner.vcpu);
      }
      this.refreshDenialWatch();
    } catch (e) {
      this.close();
      throw e;
    }
  }

  get memory(): GuestMemory {
    return this.vm.memory;
  }

  /**
   * The model's calls on this VM (host/kvm/api/model.ts) — Heki's state, which has no ioctl —
   * or, on another backend, ENOTTY for `call`, as an ioctl the kernel does not have.
   */
  modelVm(call: string): ModelVm {
    const model = this.vm.model;
    if (model === undefined) throw new KvmError('ENOTTY', call, 'only the KVM model has it (Heki\'s state has no ioctl in a real kernel)');
    return model;
  }

  get vcpus(): number {
    return this.runners.length;
  }

  get profile(): HekiProfileName {
    return this.vm.profile.name;
  }

  get runState(): VmState {
    return this.state.state;
  }

  /** The VM speaks John Andersen's CR-pinning ABI (policy `andersen`). */
  get andersen(): boolean {
    return this.policy.vmOptions.andersen === true;
  }

  /** The VM's monitor, if one is attached (AnswerHost): it decides register intercepts. */
  monitor(): InterceptMonitor | undefined {
    return this.monitors?.get(this.name);
  }

  /** The pinned CR0/CR4 bits (read-only): the model's view; none where the backend gives no view. */
  get hekiPins(): { readonly cr0: bigint; readonly cr4: bigint } {
    return this.vm.model?.hekiPins ?? NO_PINS;
  }

  /** The runner of a vCPU; `not_found` for one the VM does not have. */
  vcpu(id: number): VcpuRunner {
    const runner = Number.isInteger(id) ? this.runners[id] : undefined;
    if (runner === undefined) throw notFound(`VM "${this.name}" has no vCPU ${String(id)} (it has ${this.runners.length}: 0..${this.runners.length - 1})`, 'vcpu');
    return runner;
  }

  /** Runs a guest request (checked against the protocol's schema) on a vCPU. */
  perform(vcpu: number, request: unknown, options?: PerformOptions): Promise<GuestResult> {
    let parsed: GuestRequest;
    let runner: VcpuRunner;
    try {
      parsed = parseGuestRequest(request);
      runner = this.vcpu(vcpu);
    } catch (e) {
      return Promise.reject(e);
    }
    return runner.perform(parsed, options);
  }

  /**
   * Runs a request the protocol has already validated (the servers): the result as a value
   * when it was had at once, else a promise (VcpuRunner.performNow).
   */
  performParsed(vcpu: number, request: GuestRequest, options?: PerformOptions): GuestResult | Promise<GuestResult> {
    return this.vcpu(vcpu).performNow(request, options);
  }

  // ---------------------------------------------------------------------------------------
  // RunnerHost
  // ---------------------------------------------------------------------------------------

  prepareTracing(): void {
    this.bridge?.sync();
  }

  flush(): void {
    this.log.flush();
  }

  pause(cause: 'heki_denial' | 'memory_denial' | 'control'): void {
    if (this.state.pause() && this.log.wants('vm_paused', this.name)) this.log.emit('vm_paused', this.name, { cause });
  }

  kill(cause: 'heki_denial' | 'memory_denial' | 'shutdown' | 'control' | 'idle'): void {
    if (this.state.kill(cause) && this.log.wants('vm_killed', this.name)) this.log.emit('vm_killed', this.name, { cause });
  }

  /** KVM_SET_VCPU_EVENTS (exception part) on one vCPU: replaces the exception queued. */
  injectException(vcpu: number, event: ExceptionEvent): void {
    this.vcpu(vcpu).vcpu.injectException(event);
  }

  /** The #PF of a memory fault the VMM answered, into one vCPU as KVM would have queued it (memory-denials.ts). */
  reflectException(vcpu: number, event: ExceptionEvent): void {
    reflectException(this.vm, this.vcpu(vcpu).vcpu, event);
  }

  /** A control client's resumeVm; false if the VM was not paused. */
  resume(): boolean {
    const resumed = this.state.resume();
    if (resumed && this.log.wants('vm_resumed', this.name)) this.log.emit('vm_resumed', this.name, { cause: 'control' });
    return resumed;
  }

  reset(cause: 'control' | 'shutdown' | 'restore' | 'other'): void {
    this.state.reset();
    const pins = this.hekiPins;
    const pinsCleared = pins.cr0 !== 0n || pins.cr4 !== 0n;
    // Only the model can clear pins; a real Heki kernel keeps them until the VM is destroyed.
    this.vm.model?.resetHekiPins();
    // Memory protections are VM state: a reset clears them all, then the policy's are applied
    // again once the boot image is back, as on a rebuilt VM (docs/memory-protection.md §7).
    this.vm.model?.resetMemoryProtection();
    this.answers.emulated.reset();
    this.devices.reset();
    this.answers.override = null;
    this.answers.cr.crOverride = null;
    this.applyPolicyConfiguration();
    this.refreshDenialWatch();
    clearMemory(this.vm.memory);
    buildBootImage(this.vm.memory, { vcpus: this.layout.vcpus, cpuFeatures: this.bootFeatures });
    applyMemoryPolicy(this.vm, this.policy.memory);
    if (this.log.wants('vm_reset', this.name)) this.log.emit('vm_reset', this.name, { cause, pins_cleared: pinsCleared });
    for (const runner of this.runners) {
      runner.reboot('reset');
      this.crHardening.policyIntercepts(runner.vcpu);
    }
  }

  /** INIT for one vCPU, then the boot state; the Heki pins stay. */
  initVcpu(vcpu: number): void {
    this.vcpu(vcpu).reboot('init');
  }

  // ---------------------------------------------------------------------------------------
  // The KVM API, through the VMM (control clients)
  // ---------------------------------------------------------------------------------------

  checkExtension(cap: number): number {
    return this.vm.checkExtension(cap);
  }

  enableCap(cap: number, args: readonly bigint[] = [], flags = 0): void {
    this.vm.enableCap(cap, args, flags);
    this.capsEnabled.set(cap, [...args]);
    this.refreshDenialWatch();
  }

  setMsrFilter(filter: MsrFilterSpec, origin: FilterOrigin = 'control'): void {
    this.vm.setMsrFilter(filter);
    this.filter = copyFilter(filter);
    this.filterChanged(filter, origin);
  }

  /** PINBOX_SET_CR_FILTER (pinbox's extension): the masks in force from the next CR write. */
  setCrFilter(masks: { cr0Mask: bigint; cr4Mask: bigint; flags?: number; xcr0Mask?: bigint }, origin: FilterOrigin = 'control'): void {
    this.crHardening.setFilter(masks, origin);
  }

  /** How CR-filter exits are answered from now on (null: by the policy again). */
  setCrExitReply(answer: PinboxExitAnswer | null): void {
    this.answers.cr.crOverride = answer === null ? null : checkedPinboxAnswer(answer, 'setCrExitReply');
  }

  /** PINBOX_SET_REG_INTERCEPTS on one vCPU, or on all of them (the monitor's). */
  setRegisterIntercepts(vcpu: number | undefined, spec: RegInterceptSpec, origin: 'policy' | 'monitor' | 'restore' = 'monitor'): void {
    const targets = vcpu === undefined ? this.runners : [this.vcpu(vcpu)];
    // Checked on the first before any changes: every vCPU takes the same rules.
    for (const r of targets) this.crHardening.setIntercepts(r.vcpu, spec, origin);
  }

  /** PINBOX_GET_REG_INTERCEPTS */
  getRegisterIntercepts(vcpu: number): RegInterceptSpec {
    return this.crHardening.getIntercepts(this.vcpu(vcpu).vcpu);
  }

  /** KVM_SET_MEMORY_ATTRIBUTES (pinbox's RWX attributes): the KVM's checks, nothing changed on a refusal. */
  setMemoryAttributes(request: MemoryAttributesRequest): void {
    setMemoryAttributes(this.vm, request);
  }

  /** The memory protections in force: attributes, effective permissions, MBEC, delivery (the model's view). */
  memoryAttributes(address?: bigint, limit?: number): MemoryAttributesView {
    return memoryAttributesView(this.vm, this.policy.memorySize, address, limit);
  }

  /** Loads a snapshot's Heki state: pins and exit masks (host/kvm's pinbox extension). */
  setHekiState(state: HekiSnapshot): void {
    this.modelVm('pinbox SET_HEKI_STATE').setHekiState(state);
    this.refreshDenialWatch();
  }

  /** The KVM_ENABLE_CAP arguments given so far, by capability (for snapshots). */
  get enabledCaps(): ReadonlyMap<number, readonly bigint[]> {
    return this.capsEnabled;
  }

  /** The MSR filter in force, as it was given (for snapshots). */
  get msrFilter(): MsrFilterSpec | undefined {
    return this.filter;
  }

  getRegs(vcpu: number): Regs {
    return this.vcpu(vcpu).vcpu.getRegs();
  }

  /** KVM_SET_REGS with only the given registers changed. */
  setRegs(vcpu: number, patch: Partial<Regs>): void {
    const runner = this.vcpu(vcpu);
    runner.vcpu.setRegs({ ...runner.vcpu.getRegs(), ...definedOnly(patch) });
    runner.forgetRegisters();
  }

  getSregs(vcpu: number): Sregs {
    return this.vcpu(vcpu).vcpu.getSregs();
  }

  /** KVM_SET_SREGS with only the given fields changed, down to single segment fields. */
  setSregs(vcpu: number, patch: SregsPatch): void {
    const runner = this.vcpu(vcpu);
    const current = runner.vcpu.getSregs();
    const next = { ...current } as Record<string, unknown>;
    for (const [key, value] of Object.entries(patch)) {
      if (value === undefined) continue;
      const old = (current as unknown as Record<string, unknown>)[key];
      next[key] = typeof value === 'object' && value !== null && typeof old === 'object' ? { ...(old as Segment), ...definedOnly(value) } : value;
    }
    runner.vcpu.setSregs(next as unknown as Sregs);
    runner.forgetRegisters();
  }

  getMsrs(vcpu: number, indices: readonly number[]): MsrEntry[] {
    return this.vcpu(vcpu).vcpu.getMsrs(indices);
  }

  setMsrs(vcpu: number, entries: readonly MsrEntry[]): number {
    return this.vcpu(vcpu).vcpu.setMsrs(entries);
  }

  /**
   * How MSR exits are answered from now on (null: by the policy again; 'untouched': KVM_RUN
   * again without writing kvm_run.msr).
   */
  setMsrExitReply(answer: MsrExitChoice | null): void {
    this.answers.override = answer === null || answer === 'untouched' ? answer : { error: answer.error, data: answer.data };
  }

  /** Stops listening to KVM and closes the VM (it is being dropped). */
  close(): void {
    this.bridge?.close();
    // Undefined only when KVM_CREATE_VM itself failed (the constructor's clean-up).
    (this.vm as KvmVm | undefined)?.close?.();
    this.kvm.close?.();
  }

  // ---------------------------------------------------------------------------------------

  /** KVM_CREATE_VCPU; on a backend other than the model, with the policy's guest CPUID (vmOptionsFor). */
  private createVcpu(id: number): KvmVcpu {
    const vcpu = this.vm.createVcpu(id);
    if (this.kvm.model === undefined) vcpu.setCpuid(this.policy.vmOptions.guestCpuid);
    return vcpu;
  }

  /**
   * The policy's capabilities and MSR filter (compiled.ts order: capabilities first), in place
   * of whatever control clients set. A filter that differs from the policy's is replaced, or
   * cleared (KVM_X86_SET_MSR_FILTER with no range) when the policy has none.
   */
  private applyPolicyConfiguration(): void {
    const policy = this.policy;
    this.crHardening.applyPolicyFilter();
    this.capsEnabled.clear();
    for (const { cap, args } of policy.caps) {
      // A capability KVM lacks is not asked for: on a kernel without Heki, the policy's Heki
      // exits have nothing to act on (the model has every capability a policy names).
      if (this.vm.checkExtension(cap) === 0) continue;
      this.vm.enableCap(cap, args);
      this.capsEnabled.set(cap, args);
    }
    const wanted = policy.msrFilter;
    if (this.filter === wanted) return;
    this.vm.setMsrFilter(wanted ?? { flags: KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [] });
    this.filter = wanted;
    // The first install is told in the constructor, after vm_created.
    if (this.runners.length > 0) this.filterChanged(wanted ?? { flags: KVM_MSR_FILTER_DEFAULT_ALLOW, ranges: [] }, 'policy');
  }

  /**
   * A denial KVM answered with its own #PF (delivery "inject"), from inside KVM_RUN: recorded,
   * and memory.onViolation applied as for an exit — a pause or kill stops the vCPU before the
   * guest runs on (VcpuRunner.interrupt kicks it out of KVM_RUN).
   */
  private injectedMemoryDenial(vcpu: number, denial: MemoryDenial, rip: bigint): void {
    const action = this.answers.memory.record(vcpu, denial, rip, 'inject');
    if (action === 'log') return;
    if (action === 'kill') {
      this.kill('memory_denial');
      this.runners[vcpu]?.interrupt(this.answers.memory.killed(vcpu, denial));
    } else {
      this.pause('memory_denial');
      this.runners[vcpu]?.interrupt('pause');
    }
  }

  /** Whether KVM hands a denied write to CR`cr` to user space (KVM_CAP_HEKI_DENIAL), as the model's tracepoints need to know. */
  private denialExits(cr: number): boolean {
    const bit = cr === 0 ? KVM_HEKI_EXIT_REASON_CR0 : KVM_HEKI_EXIT_REASON_CR4;
    return (this.modelVm('pinbox GET_HEKI_STATE').getHekiState().denialExitReason & bit) !== 0;
  }

  /**
   * Listeners follow the denial mask at once, not at the next request: a control client (or an
   * exit hook) may change KVM_CAP_HEKI_DENIAL while an operation waits in an exit, and a denial
   * KVM then handles in-kernel later in that same operation must still reach the event log.
   */
  private refreshDenialWatch(): void {
    if (this.bridge === undefined) return;
    this.bridge.watchInKernelDenials(!this.denialExits(0) || !this.denialExits(4));
    this.bridge.sync();
  }

  private filterChanged(filter: MsrFilterSpec, origin: FilterOrigin): void {
    if (!this.log.wants('msr_filter_changed', this.name)) return;
    const nranges = (filter.ranges ?? []).filter((r) => r.nmsrs !== 0).length;
    this.log.emit('msr_filter_changed', this.name, { flags: filter.flags & KVM_MSR_FILTER_DEFAULT_DENY, nranges, origin });
  }
}

/**
 * KVM_CREATE_VM's options from the policy. The model takes them all. On another backend the host
 * is the machine's own: a policy that describes another (hostModel, ignoreMsrs) is refused by
 * KVM_CREATE_VM naming the option, and the guest CPUID goes to each vCPU (createVcpu).
 */
function vmOptionsFor(kvm: KvmSystem, policy: CompiledPolicy): VmOptions {
  const { vcpus, guestCpuid, ignoreMsrs, ...options } = policy.vmOptions;
  if (kvm.model !== undefined) return { ...options, guestCpuid, ignoreMsrs, maxVcpus: vcpus };
  return ignoreMsrs ? { ...options, ignoreMsrs } : options;
}

function copyFilter(filter: MsrFilterSpec): MsrFilterSpec {
  return {
    flags: filter.flags,
    ranges: (filter.ranges ?? []).map((r) => ({ flags: r.flags, base: r.base, nmsrs: r.nmsrs, bitmap: r.bitmap === undefined || r.bitmap === null ? r.bitmap : Uint8Array.from(r.bitmap) })),
  };
}

function definedOnly<T extends object>(patch: T): Partial<T> {
  return Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Zeroes every frame that holds data (the others already read as zero). */
function clearMemory(memory: GuestMemory): void {
  const zero = new Uint8Array(4096);
  for (let frame = 0; frame < memory.frameCount; frame++) {
    if (memory.isAllocated(frame)) memory.writeBytes(frame * 4096, zero);
  }
}
