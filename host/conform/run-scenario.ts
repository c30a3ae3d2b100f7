/**
 * Runs one scenario on a target: a VM of its own, then each step in order — the action, then
 * its comparison with `expect` — and a result. A mismatch does not stop the scenario (later
 * steps still say something); a failure of the target does, since the VM's state is then
 * unknown.
 */
import { compareStep, observedShown, type HostOutcome, type Observed } from './compare.js';
import { hex } from '../../protocol/notation.js';
import type { GuestStep, HostAction, HostStep, Scenario, Step, TargetGuestAction } from './model.js';
import type { Failure, ScenarioResult, StepObservation } from './results.js';
import { errnoOf, type GuestOutcome, type TargetVm, type ScenarioTarget } from './target.js';

export interface RunOptions {
  /** A target call that takes longer fails the scenario (default 60 s). */
  readonly stepTimeoutMs?: number;
  /** Keep what each step did (ScenarioResult.observations), for `--diff`. */
  readonly observe?: boolean;
}

/** The error code with which a host refuses what it lacks (host/vmm/errors.ts). */
const HOST_UNSUPPORTED = 'host_unsupported';

const DEFAULT_STEP_TIMEOUT_MS = 60_000;
const U64_MASK = (1n << 64n) - 1n;

/** The target failed (not KVM refusing): the scenario cannot go on. */
class TargetFailure extends Error {
  constructor(
    readonly path: string,
    message: string,
    /** The host said it lacks what the step needs (host_unsupported). */
    readonly unsupported = false,
  ) {
    super(message);
  }
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

async function withTimeout<T>(work: Promise<T>, ms: number, what: string, path: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TargetFailure(path, `${what}: the target did not answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([work, timeout]);
  } catch (e) {
    if (e instanceof TargetFailure) throw e;
    throw new TargetFailure(path, `${what}: ${messageOf(e)}`, (e as { code?: unknown } | null)?.code === HOST_UNSUPPORTED);
  } finally {
    clearTimeout(timer);
  }
}

/** "guest rdmsr 0xda0 on vCPU 0", "host setMsrFilter" — for messages. */
export function describeStep(step: Step): string {
  if (step.kind === 'host') return `host ${step.action.op}`;
  const a = step.action;
  const detail = 'index' in a ? ` ${hex(a.index)}` : 'cr' in a ? ` cr${a.cr}` : a.op === 'hypercall' ? ` ${hex(a.nr)}` : '';
  return `guest ${a.op}${detail} on vCPU ${step.vcpu}${step.cpl === 3 ? ' at CPL3' : ''}`;
}

class ScenarioRun {
  readonly failures: Failure[] = [];
  /** What each step did, when asked to keep it. */
  readonly observations: StepObservation[] | undefined;
  private readonly snapshots = new Map<string, unknown>();

  constructor(
    private readonly scenario: Scenario,
    private readonly vm: TargetVm,
    private readonly timeoutMs: number,
    observe: boolean,
  ) {
    this.observations = observe ? [] : undefined;
  }

  private call<T>(work: () => Promise<T>, what: string, path: string): Promise<T> {
    return withTimeout(Promise.resolve().then(work), this.timeoutMs, what, path);
  }

  async runStep(step: Step, index: number): Promise<void> {
    let observed: Observed;
    try {
      observed = step.kind === 'host' ? await this.runHost(step) : await this.runGuest(step, index);
    } catch (e) {
      // A step the host refused as unsupported did nothing to compare.
      if (!(e instanceof TargetFailure && e.unsupported)) {
        this.observations?.push({ step: index, path: step.path, action: describeStep(step), observed: { error: messageOf(e) }, matched: false });
      }
      throw e;
    }
    const profile = this.scenario.vm.profile;
    const mismatches = compareStep(profile, index, `${step.path}/expect`, step.expect, observed);
    for (const f of mismatches) this.failures.push({ ...f, message: `${describeStep(step)}: ${f.message}` });
    this.observations?.push({
      step: index, path: step.path, action: describeStep(step), observed: observedShown(profile, step.expect, observed), matched: mismatches.length === 0,
    });
  }

  private async withControlRegisters(step: Step, vcpu: number, observed: Observed): Promise<Observed> {
    if (step.expect.cr === undefined) return observed;
    const cr = await this.call(() => this.vm.controlRegisters(vcpu), 'reading the control registers', step.path);
    return { ...observed, cr };
  }

  private async runHost(step: HostStep): Promise<Observed> {
    const host = await this.call(() => this.hostAction(step.action, step.path), describeStep(step), step.path);
    const vcpu = 'vcpu' in step.action ? step.action.vcpu ?? 0 : 0;
    return this.withControlRegisters(step, vcpu, { host });
  }

  /** Performs a host action; KVM's refusals are outcomes, anything else propagates. */
  private async hostAction(action: HostAction, path: string): Promise<HostOutcome> {
    try {
      return await this.performHost(action, path);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === undefined) throw e;
      return { ok: false, errno, message: messageOf(e) };
    }
  }

  private async performHost(action: HostAction, path: string): Promise<HostOutcome> {
    const vm = this.vm;
    switch (action.op) {
      case 'enableCap':
        await vm.enableCap(action.cap, action.args, action.flags);
        return { ok: true };
      case 'checkExtension':
        return { ok: true, value: (await vm.checkExtension(action.cap)).value };
      case 'setMsrFilter':
        await vm.setMsrFilter(action.flags, action.ranges);
        return { ok: true };
      case 'getMsrs': {
        const r = await vm.getMsrs(action.vcpu, action.indices);
        return { ok: true, nmsrs: r.nmsrs, ...(r.entries && { entries: r.entries }) };
      }
      case 'setMsrs':
        return { ok: true, nmsrs: (await vm.setMsrs(action.vcpu, action.entries)).nmsrs };
      case 'setSregs':
        await vm.setSregs(action.vcpu, action.sregs);
        return { ok: true };
      case 'resetVm':
        await vm.resetVm();
        return { ok: true };
      case 'initVcpu':
        await vm.initVcpu(action.vcpu);
        return { ok: true };
      case 'snapshot': {
        if (vm.snapshot === undefined) throw new TargetFailure(path, 'this target cannot take snapshots');
        this.snapshots.set(action.name, await vm.snapshot());
        return { ok: true };
      }
      case 'restore': {
        if (vm.restore === undefined) throw new TargetFailure(path, 'this target cannot restore snapshots');
        await vm.restore(this.snapshots.get(action.name));
        return { ok: true };
      }
      case 'setCrFilter': {
        if (vm.setCrFilter === undefined) throw new TargetFailure(path, 'this target has no CR filter');
        const { op: _, xcr0Mask, ...filter } = action;
        await vm.setCrFilter({ ...filter, ...(xcr0Mask !== undefined && { xcr0Mask }) });
        return { ok: true };
      }
      case 'setMemoryAttributes': {
        if (vm.setMemoryAttributes === undefined) throw new TargetFailure(path, 'this target has no memory attributes');
        const { op: _, ...attributes } = action;
        await vm.setMemoryAttributes(attributes);
        return { ok: true };
      }
      case 'setRegisterIntercepts': {
        if (vm.setRegisterIntercepts === undefined) throw new TargetFailure(path, 'this target has no register intercepts');
        const { op: _, vcpu, ...spec } = action;
        await vm.setRegisterIntercepts(vcpu, spec);
        return { ok: true };
      }
    }
  }

  private async runGuest(step: GuestStep, index: number): Promise<Observed> {
    // The contract says "once, at the first exit": a second call (a later exit of the same
    // action, or the write of a writeCrMasked) must not run the steps again.
    let ranDuringExit = false;
    const duringExit =
      step.duringExit.length === 0
        ? undefined
        : async () => {
            if (ranDuringExit) return;
            ranDuringExit = true;
            for (const nested of step.duringExit) await this.runStep(nested, index);
          };
    const perform = (action: TargetGuestAction) =>
      this.call(
        () => this.vm.guest({
          vcpu: step.vcpu, cpl: step.cpl, action, answer: step.answer, crAnswer: step.crAnswer, interceptAnswer: step.interceptAnswer,
          ...(duringExit && { duringExit }),
        }),
        describeStep(step),
        step.path,
      );

    let guest: GuestOutcome;
    if (step.action.op === 'writeCrMasked') {
      guest = await this.writeCrMasked(step.action, perform);
    } else {
      guest = await perform(step.action);
    }
    if (duringExit !== undefined && !ranDuringExit) {
      this.failures.push({
        kind: 'mismatch',
        step: index,
        path: `${step.path}/vmm/duringExit`,
        expected: 'a user-space exit',
        actual: 'no exit',
        message: `${describeStep(step)}: the steps during the exit did not run: the action caused no user-space exit`,
      });
    }
    return this.withControlRegisters(step, step.vcpu, { guest });
  }

  /** Reads the CR, then writes (value | set) & ~clear: a step that must not depend on the boot value. */
  private async writeCrMasked(
    action: Extract<GuestStep['action'], { op: 'writeCrMasked' }>,
    perform: (a: TargetGuestAction) => Promise<GuestOutcome>,
  ): Promise<GuestOutcome> {
    const read = await perform({ op: 'readCr', cr: action.cr });
    if (read.fault !== undefined || read.value === undefined) return read;
    const value = ((read.value | action.set) & ~action.clear) & U64_MASK;
    const write = await perform({ op: 'writeCr', cr: action.cr, value });
    return { ...write, exits: [...read.exits, ...write.exits] };
  }
}

/** Runs one parsed scenario on a fresh VM of the target. */
export async function runScenario(scenario: Scenario, target: ScenarioTarget, options: RunOptions = {}): Promise<ScenarioResult> {
  const started = performance.now();
  const timeoutMs = options.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS;
  const result = (failures: Failure[], steps: number, extra: Partial<ScenarioResult> = {}): ScenarioResult => ({
    name: scenario.name,
    file: scenario.file,
    passed: failures.length === 0 && extra.unsupported === undefined,
    steps,
    failures,
    durationMs: performance.now() - started,
    ...extra,
  });

  // What the scenario needs and the host lacks is known before anything runs.
  let lacking: string | undefined;
  try {
    lacking = await withTimeout(Promise.resolve().then(() => target.unsupported?.(scenario)), timeoutMs, 'asking the target what it supports', '/vm');
  } catch (e) {
    return result([{ kind: 'error', step: null, path: '/vm', message: messageOf(e) }], 0);
  }
  if (lacking !== undefined) return result([], 0, { unsupported: lacking, ...(options.observe === true && { observations: [] }) });

  let vm: TargetVm;
  try {
    vm = await withTimeout(Promise.resolve().then(() => target.createVm(scenario.vm)), timeoutMs, 'the target could not create the VM', '/vm');
  } catch (e) {
    return result([{ kind: 'error', step: null, path: '/vm', message: messageOf(e) }], 0);
  }

  const run = new ScenarioRun(scenario, vm, timeoutMs, options.observe === true);
  let steps = 0;
  let unsupported: string | undefined;
  try {
    for (const [i, step] of scenario.steps.entries()) {
      steps++;
      await run.runStep(step, i);
    }
  } catch (e) {
    const failure = e instanceof TargetFailure ? e : new TargetFailure('', messageOf(e));
    const i = steps - 1;
    // The host lacks what this step needs: unsupported, unless a step before it already failed.
    if (failure.unsupported && run.failures.length === 0) unsupported = `step ${i}: ${failure.message}`;
    else run.failures.push({ kind: 'error', step: i, path: failure.path, message: `the target failed: ${failure.message}` });
  } finally {
    try {
      await withTimeout(Promise.resolve().then(() => vm.close()), timeoutMs, 'closing the VM', '');
    } catch (e) {
      run.failures.push({ kind: 'error', step: null, path: '', message: `closing the VM failed: ${messageOf(e)}` });
    }
  }
  return result(run.failures, steps, {
    ...(unsupported !== undefined && { unsupported }),
    ...(run.observations !== undefined && { observations: run.observations }),
  });
}
