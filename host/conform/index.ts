/**
 * host/conform: conformance scenarios — the format (scenario.ts, the JSON Schema
 * host/vmm/schema/scenario.schema.json), the runner (runner.ts, run-scenario.ts, compare.ts)
 * against any ScenarioTarget (target.ts), the reporters, and `pinbox conform` (command.ts).
 */
export * from './scenario.js';
export { SCENARIO_SCHEMA } from './schema-check.js';
export type * from './target.js';
export { errnoOf } from './target.js';
export type { Failure, FailureKind, Outcome, ScenarioResult, Shown, StepObservation } from './results.js';
export { outcomeOf, summarise } from './results.js';
export { diffSuite, divergences, summariseDiff, type DiffObserver, type DiffOutcome, type DiffSummary, type ScenarioDiff, type StepDivergence } from './diff.js';
export { hostQuirks, knownDivergence, knownDivergences, type KnownDivergence } from './known-divergences.js';
export { scenarioNeeds, unsupportedReason, type Need } from './requirements.js';
export { createDiffReporter, DIFF_REPORTER_NAMES, type DiffReporter, type DiffReporterName } from './reporters/diff.js';
export { runScenario, type RunOptions } from './run-scenario.js';
export { loadScenario, malformedResult, runSuite, type SuiteObserver } from './runner.js';
export { discoverScenarioFiles } from './discover.js';
export { createReporter, jsonLine, junitXml, REPORTER_NAMES, type ReportOutput, type Reporter, type ReporterName } from './reporters/index.js';
export { conform, EXIT_FAILED, EXIT_PASSED, EXIT_USAGE, type ConformIo, type ConformOptions, type TargetFactory } from './command.js';
export { inProcessTarget, type InProcessTargetOptions } from './in-process-target.js';
export { remoteTarget, type RemoteTargetOptions } from './remote/index.js';
