/**
 * Wrong tokens (issue 9, finding 8). Without a brake a client could try 50,000 control tokens in
 * under four seconds on one connection. Now a connection that gives a wrong token three times is
 * closed, and wrong tokens are answered more and more slowly: the n-th wrong token the server
 * has seen in the last minute (at either endpoint, from anyone) is answered after
 * 100 ms · 2^(n−1), at most 5 s. A right token is answered at once, whatever came before.
 */
import type { ProtocolError } from '../../../protocol/errors.js';
import type { ServerSession } from '../../../protocol/server-session.js';

/** Wrong tokens a connection may give; the last of them closes it. */
export const WRONG_TOKENS_PER_CONNECTION = 3;
const FIRST_DELAY_MS = 100;
const MAX_DELAY_MS = 5000;
const WINDOW_MS = 60_000;

export class TokenFailures {
  /** When the recent wrong tokens came (performance.now()), oldest first. */
  private readonly recent: number[] = [];
  private readonly bySession = new WeakMap<object, number>();

  /** Wrong tokens seen in the last minute. */
  get recentCount(): number {
    this.forgetOld(performance.now());
    return this.recent.length;
  }

  /**
   * A wrong token from `session`: the hello is refused with `error` after the delay, and the
   * connection is closed if this was its last try. Returns the refusal, to return from hello().
   */
  refuse(session: ServerSession<unknown>, error: ProtocolError): Promise<never> {
    const now = performance.now();
    this.forgetOld(now);
    this.recent.push(now);
    const tries = (this.bySession.get(session) ?? 0) + 1;
    this.bySession.set(session, tries);
    const last = tries >= WRONG_TOKENS_PER_CONNECTION;
    const delay = Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** Math.min(this.recent.length - 1, 16));
    const refusal = last
      ? Object.assign(error, { message: `${error.message}; this connection has given ${tries} wrong tokens and is closed` })
      : error;
    return new Promise<never>((_resolve, reject) => {
      const timer = setTimeout(() => {
        reject(refusal);
        // After the refusal is written (the session answers on a later microtask).
        if (last) setImmediate(() => session.close());
      }, delay);
      timer.unref?.();
    });
  }

  private forgetOld(now: number): void {
    while (this.recent.length > 0 && now - this.recent[0]! > WINDOW_MS) this.recent.shift();
    // A flood keeps at most a bounded history: the delay is at its maximum long before.
    if (this.recent.length > 64) this.recent.splice(0, this.recent.length - 64);
  }
}
