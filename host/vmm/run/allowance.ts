/**
 * What one request may cost (issue 9, finding 2): guest instructions (the budget; a delivered
 * fault costs one too), user-space exits, and the server's time. A request is one op, or a whole
 * batch: the ops of a batch draw on one allowance, in order, so a batch costs the server at
 * most what one request may. An op that starts with nothing left stops at once (exec reports
 * the stop; any other op fails with `limit`).
 *
 * Time is the time the server spends running the request: waiting does not count — for a VM
 * paused by a Heki denial until an operator resumes it, for a control client's held exit, or for
 * other clients' turns — since none of it keeps the server from anything else.
 */

export interface RequestLimits {
  /** Guest instructions (and fault deliveries) per request. */
  readonly budget: number;
  /** User-space exits per request. */
  readonly maxExits: number;
  /** Milliseconds of the server's time per request (Infinity: no limit). */
  readonly maxRequestMs: number;
}

/** User-space exits one request may cause unless configured. */
export const DEFAULT_MAX_EXITS = 65_536;
/** Milliseconds one request (or batch) may run unless configured. */
export const DEFAULT_MAX_REQUEST_MS = 1000;

export class RequestAllowance {
  /** Instructions left. */
  instructions: number;
  /** User-space exits left. */
  exits: number;
  /** Milliseconds spent running the request so far (not counting its waits). */
  spentMs = 0;
  /** performance.now() when the request's first op began running (-1: none yet). */
  started = -1;

  /**
   * @param owner the connection the request came on: once it is closed, nobody will read the
   *   answer, and the request's ops (those queued behind others too) stop at once.
   */
  constructor(readonly limits: RequestLimits, readonly batch = false, readonly owner?: { readonly closed: boolean }) {
    this.instructions = limits.budget;
    this.exits = limits.maxExits;
  }

  /** How the request is named in a refusal: "this request" or "this batch". */
  get what(): string {
    return this.batch ? 'this batch (its ops share one allowance)' : 'this request';
  }
}
