#!/usr/bin/env node
/**
 * The `pinbox` command: demo, serve, run (and conform, whose runner plugs in through
 * host/cli/conform-hook.ts). Usage mistakes print a message naming the mistake and exit 2.
 */
import { pinboxMain } from './cli/main.js';
import { processOutput } from './cli/output.js';

pinboxMain(process.argv.slice(2), processOutput, { untilStopped: untilSignal }).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`pinbox: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  },
);

/** Resolves on the first SIGINT or SIGTERM (what stops `pinbox serve`). */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const stop = (signal: string): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve(signal);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
