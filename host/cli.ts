#!/usr/bin/env node
/**
 * The `pinbox` command: demo, serve, run, conform, events, ctl, trace (conform's runner plugs in
 * through host/cli/conform-hook.ts). Usage mistakes print a message naming the mistake and exit 2.
 */
import { EXIT_BROKEN_PIPE, watchBrokenPipe } from './cli/broken-pipe.js';
import { pinboxMain } from './cli/main.js';
import { processOutput, silenceProcessOutput } from './cli/output.js';

/** Resolves on the first SIGINT or SIGTERM, or when stdout's reader goes away. */
let stop!: (why: string) => void;
const stopped = new Promise<string>((resolve) => (stop = resolve));
/** Whether the command waits for `stopped` to end (serve, events): then it stops cleanly. */
let stoppable = false;
let pipeBroken = false;

for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => stop(signal));
watchBrokenPipe(process.stdout, () => {
  pipeBroken = true;
  silenceProcessOutput('stdout');
  if (stoppable) stop('EPIPE');
  else process.exit(EXIT_BROKEN_PIPE);
});
watchBrokenPipe(process.stderr, () => silenceProcessOutput('stderr'));

pinboxMain(process.argv.slice(2), processOutput, {
  untilStopped: () => {
    stoppable = true;
    return stopped;
  },
}).then(
  (code) => {
    process.exitCode = pipeBroken ? EXIT_BROKEN_PIPE : code;
  },
  (e: unknown) => {
    processOutput.err(`pinbox: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);
