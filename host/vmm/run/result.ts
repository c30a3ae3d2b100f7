/**
 * What a guest operation returns: the protocol's result for its op (PROTOCOL.md §5) — values
 * present exactly when there is no fault, the user-space exits it caused, and for exec the stop
 * reason and registers.
 */
import type { BatchableOp, ResultOf } from '../../../protocol/messages/index.js';

export type GuestResult = ResultOf<BatchableOp>;
export type GuestResultOf<O extends BatchableOp> = ResultOf<O>;
