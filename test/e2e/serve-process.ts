/**
 * `pinbox serve` as a child process on unix sockets in a private temp dir, with a trace file
 * and a known control token, and clients for it: guests through the guest SDK, control
 * through the protocol's ClientSession.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClientSession, connect as openConnection } from '../../protocol/index.js';
import { connect, type Guest } from '../../guest-sdk/index.js';
import { readTrace, type Event } from '../../host/vmm/events/index.js';

const PINBOX = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'pinbox.js');
export const TOKEN = 'e2e-token';

export interface ServeProcess {
  readonly child: ChildProcess;
  readonly guestUrl: string;
  readonly controlUrl: string;
  readonly tracePath: string;
  /** What the server printed so far. */
  output(): string;
  guest(vm?: string, vcpu?: number): Promise<Guest>;
  control(): Promise<ClientSession>;
  /** The events in the trace file now. */
  trace(): Event[];
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
  /** SIGKILL: a crash. */
  kill(): Promise<void>;
  cleanup(): void;
}

export interface ServeChild {
  readonly child: ChildProcess;
  /** What the server printed so far, stdout and stderr. */
  output(): string;
  readonly exited: Promise<number | null>;
}

/**
 * Spawns `node SCRIPT serve ARGS…` and waits for its ready line; a server that exits or stays
 * silent for 20 s first is killed and reported with what it printed.
 */
export async function spawnServe(script: string, args: readonly string[]): Promise<ServeChild> {
  const child = spawn(process.execPath, [script, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (out += d));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${script} serve did not start:\n${out}`)), 20_000);
      child.stdout!.on('data', () => {
        if (!out.includes('pinbox serve: ready')) return;
        clearTimeout(timer);
        resolve();
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`${script} serve exited with ${code}:\n${out}`));
      });
    });
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  return { child, output: () => out, exited };
}

export async function startServe(policy: unknown, extraArgs: string[] = []): Promise<ServeProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'pbx-e2e-'));
  const policyPath = join(dir, 'policy.json');
  writeFileSync(policyPath, JSON.stringify(policy));
  const guestUrl = `unix:${join(dir, 'g.sock')}`;
  const controlUrl = `unix:${join(dir, 'c.sock')}`;
  const tracePath = join(dir, 'trace.jsonl');
  let server: ServeChild;
  try {
    // A request's time is the server's wall-clock time running it, so on a loaded shared machine
    // even a small batch can pass the default 1 s: tests that are not about that limit get 10 s.
    const requestTime = extraArgs.includes('--max-request-ms') ? [] : ['--max-request-ms', '10000'];
    server = await spawnServe(PINBOX, [
      '--listen', guestUrl, '--control', controlUrl, '--policy', policyPath, '--trace', tracePath, '--token', TOKEN, ...requestTime, ...extraArgs,
    ]);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const { child, output, exited } = server;
  const clients: { close(): void }[] = [];
  return {
    child,
    guestUrl,
    controlUrl,
    tracePath,
    output,
    guest: async (vm, vcpu) => {
      const g = await connect(guestUrl, { vm, vcpu });
      clients.push(g);
      return g;
    },
    control: async () => {
      const s = new ClientSession(await openConnection(controlUrl));
      clients.push(s);
      await s.hello({ role: 'control', token: TOKEN });
      return s;
    },
    trace: () => readTrace(readFileSync(tracePath, 'utf8')).events,
    stop: async () => {
      for (const c of clients) c.close();
      child.kill('SIGTERM');
      return exited;
    },
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    cleanup: () => {
      for (const c of clients) c.close();
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
