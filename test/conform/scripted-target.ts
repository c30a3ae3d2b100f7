/**
 * A ScenarioTarget whose answers a test scripts, recording every call: enough to drive the
 * runner's logic (order, answers, writeCrMasked, duringExit, errors) without a VMM.
 */
import type {
  FilterRange, GuestOutcome, GuestRequest, MsrEntry, MsrsResult, RegisterValues, ScenarioTarget, ScenarioVm, SregsField, TargetVm,
} from '../../host/conform/index.js';

export type Call =
  | { readonly op: 'createVm'; readonly options: ScenarioVm }
  | { readonly op: 'guest'; readonly request: GuestRequest }
  | { readonly op: 'controlRegisters'; readonly vcpu: number }
  | { readonly op: 'close' }
  | { readonly op: string; readonly args: readonly unknown[] };

export interface Script {
  createVm?(options: ScenarioVm): void;
  /** The outcome of a guest request; default: no fault, no exits. */
  guest?(request: GuestRequest, calls: Call[]): Promise<GuestOutcome> | GuestOutcome;
  /** The result of a host operation (return it, or throw); default: undefined. */
  host?(op: string, args: readonly unknown[]): unknown;
  cr?: Record<'cr0' | 'cr2' | 'cr3' | 'cr4' | 'cr8', bigint>;
  /** Leave out snapshot/restore, as a target without them would. */
  noSnapshots?: boolean;
}

export const DEFAULT_CR = { cr0: 0x80050033n, cr2: 0n, cr3: 0x1000n, cr4: 0x310ea0n, cr8: 0n };

export class ScriptedTarget implements ScenarioTarget {
  readonly description = 'scripted';
  readonly calls: Call[] = [];
  closed = false;

  constructor(private readonly script: Script = {}) {}

  async createVm(options: ScenarioVm): Promise<TargetVm> {
    this.calls.push({ op: 'createVm', options });
    this.script.createVm?.(options);
    const calls = this.calls;
    const script = this.script;
    const host = async (op: string, args: unknown[]): Promise<unknown> => {
      calls.push({ op, args });
      return script.host?.(op, args);
    };
    const vm: TargetVm = {
      enableCap: async (cap: number, a: readonly bigint[], flags: number) => void (await host('enableCap', [cap, a, flags])),
      checkExtension: async (cap: number) => (await host('checkExtension', [cap])) as { value: number },
      setMsrFilter: async (flags: number, ranges: readonly FilterRange[]) => void (await host('setMsrFilter', [flags, ranges])),
      getMsrs: async (vcpu: number, indices: readonly number[]) => (await host('getMsrs', [vcpu, indices])) as MsrsResult,
      setMsrs: async (vcpu: number, entries: readonly MsrEntry[]) => (await host('setMsrs', [vcpu, entries])) as MsrsResult,
      setSregs: async (vcpu: number, sregs: RegisterValues<SregsField>) => void (await host('setSregs', [vcpu, sregs])),
      resetVm: async () => void (await host('resetVm', [])),
      initVcpu: async (vcpu: number) => void (await host('initVcpu', [vcpu])),
      guest: async (request: GuestRequest) => {
        calls.push({ op: 'guest', request });
        return script.guest ? script.guest(request, calls) : { exits: [] };
      },
      controlRegisters: async (vcpu: number) => {
        calls.push({ op: 'controlRegisters', vcpu });
        return script.cr ?? DEFAULT_CR;
      },
      close: async () => void calls.push({ op: 'close' }),
    };
    if (!script.noSnapshots) {
      vm.snapshot = async () => host('snapshot', []);
      vm.restore = async (snapshot: unknown) => void (await host('restore', [snapshot]));
    }
    return vm;
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The ops called, in order: "createVm", "enableCap", "guest:rdmsr", … */
  ops(): string[] {
    return this.calls.map((c) => (c.op === 'guest' ? `guest:${(c as { request: GuestRequest }).request.action.op}` : c.op));
  }
}
