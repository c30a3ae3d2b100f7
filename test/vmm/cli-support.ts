/** Runs `pinbox` in this process with captured output. */
import { connect, type Guest } from '../../guest-sdk/index.js';
import { pinboxMain } from '../../host/cli/main.js';

export interface Ran {
  code: number;
  out: string;
  err: string;
}

export async function pinbox(argv: string[], untilStopped: () => Promise<unknown> = () => new Promise(() => {})): Promise<Ran> {
  let out = '';
  let err = '';
  const code = await pinboxMain(argv, { out: (t) => void (out += t), err: (t) => void (err += t) }, { untilStopped });
  return { code, out, err };
}

/** A long-running command (serve, events) in this process: its output so far, and a way to stop it. */
export interface Running {
  /** stdout so far. */
  out(): string;
  err(): string;
  /** Resolves once stdout matches `pattern` (fails after 10 s). */
  waitFor(pattern: RegExp): Promise<RegExpMatchArray>;
  /** What a SIGINT does to the real command; the result. */
  stop(): Promise<Ran>;
  readonly done: Promise<Ran>;
}

export function startPinbox(argv: string[]): Running {
  let out = '';
  let err = '';
  let stop!: () => void;
  const stopped = new Promise<void>((r) => (stop = r));
  const done = pinboxMain(argv, { out: (t) => void (out += t), err: (t) => void (err += t) }, { untilStopped: () => stopped })
    .then((code) => ({ code, out, err }));
  return {
    out: () => out,
    err: () => err,
    waitFor: async (pattern) => {
      const deadline = Date.now() + 10_000;
      let finished = false;
      void done.then(() => (finished = true));
      for (;;) {
        const m = pattern.exec(out);
        if (m !== null) return m;
        if (finished || Date.now() > deadline) throw new Error(`pinbox ${argv.join(' ')} never printed ${pattern}:\n${out}\n${err}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    stop: () => {
      stop();
      return done;
    },
    done,
  };
}

/** A guest of the server `pinbox serve` is bringing up at `url`: tries to connect until it is up (up to `tries` × 20 ms). */
export async function connectWhenUp(url: string, tries = 100): Promise<Guest> {
  for (let i = 0; i < tries; i++) {
    try {
      return await connect(url);
    } catch {
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error('serve did not come up');
}
