/**
 * `pinbox serve` as a user starts it: the built command (dist/cli.js) in a child process, on
 * unix sockets in a private temp dir, with a random control token that it writes to a token
 * file (read back here, as a control client on the same machine would) and a trace.
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTrace, type Event } from '../../host/vmm/events/index.js';
import { spawnServe, type ServeChild } from './serve-process.js';

/** The command as package.json's `bin` names it; `npm test` builds dist/ before the tests. */
const PINBOX_CLI = join(process.cwd(), 'dist', 'cli.js');

export interface CliServer {
  readonly child: ChildProcess;
  readonly guestUrl: string;
  readonly controlUrl: string;
  /** The token, as read from the token file the server wrote. */
  readonly token: string;
  /** That file (--token-file). */
  readonly tokenFile: string;
  /** The events of the trace file now. */
  trace(): Event[];
  /** SIGKILL, and the process gone. */
  kill(): Promise<void>;
  /** SIGTERM, the exit code, and the temp dir removed. */
  stop(): Promise<number | null>;
}

export async function startCliServe(policy: unknown = {}): Promise<CliServer> {
  const dir = mkdtempSync(join(tmpdir(), 'pbx-cli-'));
  const policyPath = join(dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify(policy));
  const guestUrl = `unix:${join(dir, 'guest.sock')}`;
  const controlUrl = `unix:${join(dir, 'control.sock')}`;
  const tokenFile = join(dir, 'control.token');
  const tracePath = join(dir, 'trace.jsonl');
  let server: ServeChild;
  try {
    server = await spawnServe(PINBOX_CLI, [
      '--listen', guestUrl, '--control', controlUrl, '--policy', policyPath, '--token-file', tokenFile, '--trace', tracePath,
    ]);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const { child, exited } = server;
  return {
    child,
    guestUrl,
    controlUrl,
    token: readFileSync(tokenFile, 'utf8').trim(),
    tokenFile,
    trace: () => readTrace(readFileSync(tracePath, 'utf8')).events,
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      const code = await exited;
      rmSync(dir, { recursive: true, force: true });
      return code;
    },
  };
}
