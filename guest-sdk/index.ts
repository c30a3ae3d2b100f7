/**
 * pinbox/guest-sdk: act as a guest kernel against any host that speaks the pinbox protocol.
 *
 * ```ts
 * import { connect } from 'pinbox/guest-sdk';
 * const guest = await connect('unix:/run/pinbox.sock');
 * const efer = await guest.rdmsr(0xc0000080);
 * const report = await guest.heki.lockDown();
 * guest.close();
 * ```
 *
 * See guest-sdk/README.md for the whole API.
 */
export { type ConnectOptions, Guest, connect } from './guest.js';
export type { Batch, BatchSettlement } from './batch.js';
export type { GuestOperations } from './guest-operations.js';
export type { Cpl, CrNumber, OpOptions, U64 } from './arguments.js';
export type {
  CpuidResult, ExecOptions, ExecRegs, ExecResult, HypercallArgs, HypercallOptions, SafeResult,
} from './operations.js';
export { GuestFault, HostError, type HostErrorCode, InvalidArgumentError } from './errors.js';
export { describeFault, exceptionName } from '../protocol/notation.js';
export { type KvmErrno, asSigned, kvmErrno } from './hypercall-return.js';
export type {
  Heki, HekiCallOptions, HekiLockCall, HekiLockDownOptions, HekiLockDownReport, HekiVersion, LockCrResult,
} from './heki.js';
export { HekiMemory, hekiMemoryProgram, type HekiMemoryResult, type HekiPages, type HekiPaRange } from './heki-memory.js';
export type { Andersen, AndersenDiscovery, AndersenLockDownReport, AndersenPinned, PinResult } from './andersen.js';
export {
  MAX_PROBE_MSRS, type MsrClass, type MsrClassRange, type MsrProbe, type MsrProbeReport, type ProbeMsrsOptions,
  type WriteProbe,
} from './msr-probe.js';
export type { MsrRangeInput, MsrSpan } from './msr-ranges.js';
/** Re-exported so that SDK users need no second import for what results carry. */
export type { Connection, Exit, Fault, Regs } from '../protocol/index.js';
