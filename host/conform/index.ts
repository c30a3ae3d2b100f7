/**
 * host/conform: conformance scenarios — the format (scenario.ts, the JSON Schema
 * host/vmm/schema/scenario.schema.json), the runner (runner.ts, run-scenario.ts, compare.ts)
 * against any ScenarioTarget (target.ts), the reporters, and `pinbox conform` (command.ts).
 */
export * from './scenario.js';
export { SCENARIO_SCHEMA } from './schema-check.js';
export type * from './target.js';
export { errnoOf } from './target.js';
export type { Failure, FailureKind, ScenarioResult, Shown } from './results.js';
export { summarise } from './results.js';
export { runScenario, type RunOptions } from './run-scenario.js';
export { loadScenario, malformedResult, runSuite, type SuiteObserver } from './runner.js';
export { discoverScenarioFiles } from './discover.js';
export { createReporter, jsonLine, junitXml, REPORTER_NAMES, type ReportOutput, type Reporter, type ReporterName } from './reporters/index.js';
export { conform, EXIT_FAILED, EXIT_PASSED, type ConformIo, type ConformOptions, type TargetFactory } from './command.js';
export { inProcessTarget } from './in-process-target.js';
export { remoteTarget, type RemoteTargetOptions } from './remote/index.js';
