/**
 * The conformance runner's in-process target (host/conform/target.ts): each scenario's VM is a
 * VM of a Vmm in this process, made from the scenario's policy (`scenarioPolicy`: KVM's initial
 * state — every capability 0, no MSR filter), its host operations the Machine's KVM calls (a
 * KvmError passes through with its errno), its guest actions run as every guest request is —
 * lowered to the real instruction on the boot image — with each user-space exit recorded as
 * KVM_RUN returned it and answered as the scenario says.
 */
import type { Machine } from '../vmm/machine.js';
import { parsePolicy } from '../vmm/policy/index.js';
import type { ExitChoice, MsrExitChoice, UserSpaceExit } from '../vmm/run/user-space-exit.js';
import { restoreSnapshot, takeSnapshot } from '../vmm/snapshot.js';
import { Vmm } from '../vmm/vmm.js';
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

/** The in-process target: one Vmm, one VM per scenario (named scenario-1, scenario-2…). */
export function inProcessTarget(): ScenarioTarget {
  const vmm = new Vmm({ policy: parsePolicy(scenarioPolicy(parsePolicy({}).vmOptions)), maxVms: 4096 });
  let made = 0;
  return {
    description: 'in-process',
    createVm: async (options: ScenarioVm) => {
      const machine = vmm.createVm(`scenario-${++made}`, parsePolicy(scenarioPolicy(options)));
      return new InProcessVm(vmm, machine);
    },
    close: async () => vmm.close(),
  };
}
