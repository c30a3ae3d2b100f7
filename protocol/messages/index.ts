/** The op table: every request the protocol defines, with its role, parameters and result. */
import type { Infer } from '../schema/index.js';
import { CONTROL_OPS } from './control.js';
import { GUEST_OPS } from './guest.js';
import { HELLO, helloParams, helloResult } from './hello.js';
import { MONITOR_OPS } from './monitor.js';
import type { OpSpec, ParamsOfSpec, ResultOfSpec } from './op.js';

export const OPS = { hello: HELLO, ...GUEST_OPS, ...CONTROL_OPS, ...MONITOR_OPS } satisfies Record<string, OpSpec>;

export type Op = keyof typeof OPS;
export type ParamsOf<O extends Op> = ParamsOfSpec<(typeof OPS)[O]>;
export type ResultOf<O extends Op> = ResultOfSpec<(typeof OPS)[O]>;
export type HelloParams = Infer<typeof helloParams>;
export type HelloResult = Infer<typeof helloResult>;

/** A validated request as a handler receives it: `{ op, ...params }`, narrowed by `op`. */
export type Request<O extends Op = Op> = { [K in O]: { [F in keyof ({ op: K } & ParamsOf<K>)]: ({ op: K } & ParamsOf<K>)[F] } }[O];

/** The spec of an op name received from a peer, or undefined; never an Object.prototype key. */
export function opSpec(name: string): OpSpec | undefined {
  return Object.hasOwn(OPS, name) ? (OPS as Record<string, OpSpec>)[name] : undefined;
}

export { CONTROL_OPS, GUEST_OPS, MONITOR_OPS };
export type { ControlOp } from './control.js';
export type { MonitorOp } from './monitor.js';
export type { BatchItem, BatchItemResult, BatchableOp, ExecStop, GuestOp } from './guest.js';
export { BATCHABLE_OPS, EXEC_STOPS, MAX_BATCH_OPS, MAX_EXEC_CODE, MAX_EXEC_CONSOLE } from './guest.js';
export type { Role, OpSpec } from './op.js';
export type { Outcome } from './outcome.js';
export * from './common.js';
export { MAX_GUEST_ENDPOINTS } from './hello.js';
export { MAX_MEMORY_RUNS, MAX_POLICY_BYTES } from './control.js';
export { type MsrExitReply, UNTOUCHED, msrExitReply } from './msr-exit-reply.js';
