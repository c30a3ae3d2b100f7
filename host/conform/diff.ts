/**
 * `pinbox conform --diff`: each scenario on two targets — the KVM model and the machine's
 * /dev/kvm — and every step where they did different things, both results side by side. What
 * a step "did" is its observation (compare.ts observedShown): the fields its `expect` looks at,
 * and always a host operation's success or errno and a guest action's fault and exits.
 *
 * A divergence the project has explained — a documented host quirk or a model decision
 * (known-divergences.ts) — is labelled with that explanation; any other is unexplained, which is
 * what `--diff` exists to find: the model is wrong there, or the host is, and someone must say which.
 */
import type { BackendHost } from '../kvm/api/backend.js';
import { knownDivergence, type KnownDivergence } from './known-divergences.js';
import type { Scenario, Step } from './model.js';
import { outcomeOf, type Outcome, type ScenarioResult, type Shown, type StepObservation } from './results.js';
import { runScenario, type RunOptions } from './run-scenario.js';
import { loadScenario } from './runner.js';
import type { ScenarioTarget } from './target.js';

/** One step the two targets did differently. */
export interface StepDivergence {
  /** The top-level step (0-based); null for the VM itself. */
  readonly step: number | null;
  readonly path: string;
  readonly action: string;
  /** What each did; `{ error }` where the target failed the step (the scenario stopped there). */
  readonly model: Shown;
  readonly kvm: Shown;
  /** Which of them did what the scenario expects. */
  readonly matched: { readonly model: boolean; readonly kvm: boolean };
  /** The project's explanation, if it has one. */
  readonly known?: KnownDivergence;
}

export type DiffOutcome = 'agree' | 'diverge' | 'unsupported' | 'malformed';

export interface ScenarioDiff {
  readonly name: string;
  readonly file: string;
  readonly outcome: DiffOutcome;
  /** Each target's outcome against the scenario's expectations. */
  readonly model: Outcome;
  readonly kvm: Outcome;
  /** Why the real host cannot run the scenario (outcome 'unsupported'). */
  readonly unsupported?: string;
  /** Why the file is not a scenario (outcome 'malformed'). */
  readonly error?: string;
  readonly divergences: readonly StepDivergence[];
}

export interface DiffObserver {
  start?(total: number, hosts: { readonly model?: BackendHost; readonly kvm?: BackendHost }): void;
  scenarioStarted?(index: number, file: string): void;
  scenarioFinished?(diff: ScenarioDiff): void;
}

function sameShown(a: Shown, b: Shown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The step a JSON Pointer names, nested duringExit steps included. */
function stepAt(steps: readonly Step[], path: string): Step | undefined {
  for (const s of steps) {
    if (s.path === path) return s;
    if (s.kind === 'guest' && path.startsWith(`${s.path}/`)) {
      const inner = stepAt(s.duringExit, path);
      if (inner !== undefined) return inner;
    }
  }
  return undefined;
}

/**
 * Every step both targets ran and did differently, in the order they ran. Where one target
 * failed a step (its observation is `{ error }`) the scenario stopped there on that side: that
 * step is compared, the ones after it are not.
 */
export function divergences(scenario: Scenario, model: readonly StepObservation[], kvm: readonly StepObservation[], host: BackendHost | undefined): StepDivergence[] {
  const byPath = new Map(kvm.map((o) => [o.path, o]));
  const out: StepDivergence[] = [];
  for (const m of model) {
    const k = byPath.get(m.path);
    if (k === undefined || sameShown(m.observed, k.observed)) continue;
    const step = stepAt(scenario.steps, m.path);
    const known = step === undefined ? undefined : knownDivergence(step, m.observed, k.observed, host);
    out.push({
      step: m.step, path: m.path, action: m.action, model: m.observed, kvm: k.observed,
      matched: { model: m.matched, kvm: k.matched },
      ...(known !== undefined && { known }),
    });
  }
  return out;
}

/** A VM that one target could not make: a divergence of its own, at /vm. */
function vmDivergence(model: ScenarioResult, kvm: ScenarioResult): StepDivergence | undefined {
  const failed = (r: ScenarioResult) => r.failures.find((f) => f.kind === 'error' && f.path === '/vm');
  const m = failed(model);
  const k = failed(kvm);
  if (m === undefined && k === undefined) return undefined;
  const shown = (f: typeof m): Shown => (f === undefined ? { ok: true } : { error: f.message });
  return { step: null, path: '/vm', action: 'make the scenario\'s VM', model: shown(m), kvm: shown(k), matched: { model: m === undefined, kvm: k === undefined } };
}

function diffOf(scenario: Scenario, model: ScenarioResult, kvm: ScenarioResult, host: BackendHost | undefined): ScenarioDiff {
  const base = { name: scenario.name, file: scenario.file, model: outcomeOf(model), kvm: outcomeOf(kvm) };
  const vm = vmDivergence(model, kvm);
  // Steps the host ran before it found it could not go on still count.
  const found = [...(vm === undefined ? [] : [vm]), ...divergences(scenario, model.observations ?? [], kvm.observations ?? [], host)];
  const outcome: DiffOutcome = found.length > 0 ? 'diverge' : kvm.unsupported !== undefined ? 'unsupported' : 'agree';
  return { ...base, outcome, ...(kvm.unsupported !== undefined && { unsupported: kvm.unsupported }), divergences: found };
}

/** Runs every scenario file on both targets, one after the other, and reports what differs. */
export async function diffSuite(
  files: readonly string[],
  targets: { readonly model: ScenarioTarget; readonly kvm: ScenarioTarget },
  observer: DiffObserver = {},
  options: RunOptions = {},
): Promise<ScenarioDiff[]> {
  observer.start?.(files.length, { ...(targets.model.host && { model: targets.model.host }), ...(targets.kvm.host && { kvm: targets.kvm.host }) });
  const run: RunOptions = { ...options, observe: true };
  const out: ScenarioDiff[] = [];
  for (const [i, file] of files.entries()) {
    observer.scenarioStarted?.(i, file);
    const loaded = loadScenario(file);
    let diff: ScenarioDiff;
    if ('error' in loaded) {
      const name = loaded.error.scenarioName ?? file;
      diff = { name, file, outcome: 'malformed', model: 'failed', kvm: 'failed', error: loaded.error.message, divergences: [] };
    } else {
      const model = await runScenario(loaded.scenario, targets.model, run);
      const kvm = await runScenario(loaded.scenario, targets.kvm, run);
      diff = diffOf(loaded.scenario, model, kvm, targets.kvm.host);
    }
    out.push(diff);
    observer.scenarioFinished?.(diff);
  }
  return out;
}

export interface DiffSummary {
  readonly agree: number;
  readonly unsupported: number;
  readonly diverge: number;
  readonly malformed: number;
  /** Divergent steps, and how many of them the project has explained (known-divergences.ts). */
  readonly steps: number;
  readonly explained: number;
  readonly total: number;
}

export function summariseDiff(diffs: readonly ScenarioDiff[]): DiffSummary {
  const count = (o: DiffOutcome) => diffs.filter((d) => d.outcome === o).length;
  const steps = diffs.flatMap((d) => d.divergences);
  return {
    agree: count('agree'), unsupported: count('unsupported'), diverge: count('diverge'), malformed: count('malformed'),
    steps: steps.length, explained: steps.filter((s) => s.known !== undefined).length, total: diffs.length,
  };
}
