/**
 * The conformance runner's in-process target (host/conform/target.ts): each scenario's VM is a
 * VM of a Vmm in this process — on the KVM model, or on the machine's /dev/kvm — made from the scenario's policy (`scenarioPolicy`: KVM's initial
 * state — every capability 0, no MSR filter), its host operations the Machine's KVM calls (a
 * KvmError passes through with its errno), its guest actions run as every guest request is —
 * lowered to the real instruction on the boot image — with each user-space exit recorded as
 * KVM_RUN returned it and answered as the scenario says.
 */
import type { Machine } from '../vmm/machine.js';
import { parsePolicy } from '../vmm/policy/index.js';
import type { ExitChoice, MsrExitChoice, UserSpaceExit } from '../vmm/run/user-space-exit.js';
import { restoreSnapshot, takeSnapshot } from '../vmm/snapshot.js';
import type { HostSupport } from '../vmm/host-survey.js';
import { Vmm } from '../vmm/vmm.js';
import type { Scenario } from './model.js';
import { scenarioNeeds, unsupportedReason } from './requirements.js';
import { guestOutcome, wireGuestRequest } from './guest-wire.js';
import type {
  GuestOutcome, GuestRequest as TargetRequest, ScenarioTarget, TargetExit, TargetVm,
} from './target.js';
import { scenarioPolicy, type ScenarioVm } from './vm-block.js';

const CONTROL_REGISTERS = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8'] as const;

function targetExit(e: UserSpaceExit): TargetExit {
  return {
    reason: e.exitReason,
    ...(e.msr !== undefined && { msr: { ...e.msr } }),
    ...(e.heki !== undefined && { heki: { ...e.heki } }),
    ...(e.io !== undefined && { io: { ...e.io } }),
    ...(e.cr !== undefined && { cr: { ...e.cr } }),
    ...(e.intercept !== undefined && { intercept: { ...e.intercept } }),
    ...(e.memory !== undefined && { memory: { flags: e.memory.flags, gpa: e.memory.gpa, size: e.memory.size, gva: e.memory.gva ?? 0n } }),
  };
}

class InProcessVm implements TargetVm {
  constructor(private readonly vmm: Vmm, private readonly machine: Machine) {}

  async enableCap(cap: number, args: readonly bigint[], flags: number): Promise<void> {
    this.machine.enableCap(cap, args, flags);
  }

  async checkExtension(cap: number): Promise<{ value: number }> {
    return { value: this.machine.checkExtension(cap) };
  }

  async setMsrFilter(flags: number, ranges: readonly { flags: number; base: number; nmsrs: number; bitmap: Uint8Array | null }[]): Promise<void> {
    this.machine.setMsrFilter({ flags, ranges: ranges.map((r) => ({ ...r })) });
  }

  async getMsrs(vcpu: number, indices: readonly number[]): Promise<{ nmsrs: number; entries: { index: number; value: bigint }[] }> {
    const entries = this.machine.getMsrs(vcpu, indices);
    return { nmsrs: entries.length, entries: entries.map((e) => ({ index: e.index, value: e.data })) };
  }

  async setMsrs(vcpu: number, entries: readonly { index: number; value: bigint }[]): Promise<{ nmsrs: number }> {
    return { nmsrs: this.machine.setMsrs(vcpu, entries.map((e) => ({ index: e.index, data: e.value }))) };
  }

  async setSregs(vcpu: number, sregs: Partial<Record<'cr0' | 'cr2' | 'cr3' | 'cr4' | 'cr8' | 'efer' | 'apicBase', bigint>>): Promise<void> {
    this.machine.setSregs(vcpu, sregs);
  }

  async resetVm(): Promise<void> {
    this.machine.reset('control');
  }

  async initVcpu(vcpu: number): Promise<void> {
    this.machine.initVcpu(vcpu);
  }

  async snapshot(): Promise<unknown> {
    return takeSnapshot(this.machine);
  }

  async setCrFilter(filter: { flags: number; cr0Mask: bigint; cr4Mask: bigint; xcr0Mask?: bigint }): Promise<void> {
    this.machine.setCrFilter(filter);
  }

  async setMemoryAttributes(attributes: { address: bigint; size: bigint; attributes: bigint }): Promise<void> {
    this.vmm.setMemoryAttributes(this.machine.name, attributes);
  }

  async setRegisterIntercepts(vcpu: number | undefined, spec: { control: bigint; cr0Mask: bigint; cr4Mask: bigint; miscEnableMask: bigint }): Promise<void> {
    this.machine.setRegisterIntercepts(vcpu, spec);
  }

  async restore(snapshot: unknown): Promise<void> {
    if (!(snapshot instanceof Uint8Array)) throw new TypeError('not a snapshot of this target');
    restoreSnapshot(this.machine, snapshot);
  }

  async guest(request: TargetRequest): Promise<GuestOutcome> {
    const exits: TargetExit[] = [];
    let during = request.duringExit;
    const answer: MsrExitChoice = request.answer;
    const answerTo = (exit: UserSpaceExit): ExitChoice =>
      exit.cr !== undefined ? request.crAnswer : exit.intercept !== undefined ? request.interceptAnswer : answer;
    const result = await this.machine.perform(request.vcpu, wireGuestRequest(request.action, request.cpl), {
      onExit: async (exit) => {
        exits.push(targetExit(exit));
        if (during !== undefined) {
          const call = during;
          during = undefined;
          await call();
        }
        return answerTo(exit);
      },
    });
    return guestOutcome(request.action, result, exits);
  }

  async controlRegisters(vcpu: number): Promise<Record<(typeof CONTROL_REGISTERS)[number], bigint>> {
    const s = this.machine.getSregs(vcpu);
    return { cr0: s.cr0, cr2: s.cr2, cr3: s.cr3, cr4: s.cr4, cr8: s.cr8 };
  }

  async close(): Promise<void> {
    this.vmm.removeVm(this.machine.name);
  }
}

export interface InProcessTargetOptions {
  /**
   * The KVM the scenarios run on and what it can do (host/vmm's openBackend()): default the
   * model. On a real kernel, a scenario that needs what the host lacks is unsupported
   * (requirements.ts), and the VM options that describe a host (its CPU, kvm.ignore_msrs) are
   * left to the host's own, once requirements.ts found they match or do not matter.
   */
  readonly support?: HostSupport;
}

/** A real host has its own CPU and module parameters: the scenario's VM without them (requirements.ts checked they agree). */
function onRealHost(vm: ScenarioVm): ScenarioVm {
  const { hostCr0: _cr0, hostCr4: _cr4, cr4PinnableMask: _mask, ...rest } = vm;
  return { ...rest, ignoreMsrs: false };
}

/** The in-process target: one Vmm, one VM per scenario (named scenario-1, scenario-2…). */
export function inProcessTarget(options: InProcessTargetOptions = {}): ScenarioTarget {
  const support = options.support;
  const real = support !== undefined && support.backend.name !== 'model';
  const vmm = new Vmm({
    policy: parsePolicy(scenarioPolicy(parsePolicy({}).vmOptions)),
    maxControlVms: 4096,
    ...(support !== undefined && { backend: support.backend, host: support }),
  });
  let made = 0;
  return {
    description: real ? 'in-process, on real KVM' : 'in-process',
    host: vmm.backend.describe(),
    ...(real && { unsupported: (scenario: Scenario) => unsupportedReason(scenarioNeeds(scenario), support) }),
    createVm: async (vm: ScenarioVm) => {
      const machine = vmm.createVm(`scenario-${++made}`, parsePolicy(scenarioPolicy(real ? onRealHost(vm) : vm)));
      return new InProcessVm(vmm, machine);
    },
    close: async () => vmm.close(),
  };
}
