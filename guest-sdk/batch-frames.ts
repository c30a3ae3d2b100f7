/**
 * Where a long batch is cut into frames. One frame holds at most MAX_BATCH_OPS ops
 * (PROTOCOL.md §8) and must fit the frame maximum both ways: the request, and the response the
 * host will send back. The sizes below are upper bounds worked out from the encoding rules of
 * PROTOCOL.md §2 (shortest integers, exact key names).
 */
import { MAX_BATCH_OPS } from '../protocol/index.js';

/**
 * One non-exec op, request or response, whichever is larger. The largest request item is a
 * hypercall with four 9-byte arguments, `insn: "vmmcall"` and `cpl` (86 bytes); the largest
 * response item is a faulting cpuid-sized result (about 90 bytes with its fault). The rest
 * leaves room for roughly one user-space exit (about 70 bytes) per op on average; a host
 * whose answer still exceeds its frame maximum refuses the batch with `limit`.
 */
export const BATCH_ITEM_BYTES = 160;

/**
 * An exec op beyond its code: up to 16 initial registers in the request (16 × 13 bytes plus
 * keys) and all 18 registers in the response (18 × about 14 bytes), stop, fault and exits.
 */
export const EXEC_ITEM_EXTRA_BYTES = 512;

/** The request envelope (`id`, `op: "batch"`, `ops` header) and the response's (`id`, `ok`, `result`, `results`). */
const FRAME_ENVELOPE_BYTES = 64;

interface SizedItem {
  op: string;
  code?: Uint8Array;
}

/** The end (exclusive) of the frame that starts at `start`. A frame always takes at least one op. */
export function batchFrameEnd(items: readonly SizedItem[], start: number, maxFrame: number): number {
  const budget = maxFrame - FRAME_ENVELOPE_BYTES;
  const limit = Math.min(items.length, start + MAX_BATCH_OPS);
  let bytes = 0;
  let i = start;
  for (; i < limit; i++) {
    const item = items[i]!;
    const size = item.op === 'exec' ? BATCH_ITEM_BYTES + EXEC_ITEM_EXTRA_BYTES + item.code!.length : BATCH_ITEM_BYTES;
    if (i > start && bytes + size > budget) break;
    bytes += size;
  }
  return i;
}
