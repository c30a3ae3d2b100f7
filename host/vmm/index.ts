/**
 * host/vmm: "user space" (docs/architecture.md) — the VMM that makes VMs from a policy, runs guest
 * operations on their vCPUs as real instructions, answers their exits, keeps the event log,
 * and serves guests and control clients over the protocol.
 */
export { Vmm, DEFAULT_BUDGET, DEFAULT_MAX_VMS, RING_EVENTS, TRACEPOINT_EVENTS, type VmmOptions } from './vmm.js';
export { Machine, type FilterOrigin, type SregsPatch } from './machine.js';
export { unsurveyedFacts, type HostFacts } from './host-facts.js';
export { HostSupport, modelSupport, openBackend, surveyRealHost, SURVEY_RUN_MS, type Finding } from './host-survey.js';
export type { VmState } from './run-state.js';
export { VmmError, type VmmErrorCode } from './errors.js';
export type { PerformOptions, InstructionCounter } from './run/vcpu-runner.js';
export type { GuestRequest } from './run/operations.js';
export { parseGuestRequest } from './run/operations.js';
export type { GuestResult, GuestResultOf } from './run/result.js';
export type { MsrExitContext, MsrExitHandler } from './run/exit-answers.js';
export type {
  CrFilterExit, ExitChoice, MsrExitAnswer, MsrExitChoice, PinboxExitAnswer, RegisterInterceptExit, UserSpaceExit,
} from './run/user-space-exit.js';
export type { InterceptContext, InterceptMonitor } from './run/cr-exit-answers.js';
export { MonitorRegistry } from './monitors.js';
export * from './policy/index.js';
export * from './events/index.js';
export * from './image/index.js';
export { serveGuest, startServer, DEFAULT_MAX_CONNECTIONS, type PinboxServer, type ServerOptions } from './server/pinbox-server.js';
export { ControlToken } from './server/control-token.js';
export { SERVER_NAME } from './server/guest-endpoint.js';
export { takeSnapshot, restoreSnapshot } from './snapshot.js';
