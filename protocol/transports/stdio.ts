/**
 * The stdio transport: a parent runs the peer as a child process and talks over its
 * stdin/stdout; the child talks over its own stdin/stdout. stdout then carries frames only —
 * anything the child wants to log goes to stderr.
 */
import { type ChildProcess, type SpawnOptions, spawn } from 'node:child_process';
import type { Connection } from './connection.js';
import { StreamConnection } from './stream.js';

/** The child side: this process's stdin and stdout. */
export function stdioConnection(): Connection {
  return new StreamConnection(process.stdin, process.stdout, 'stdio');
}

export interface StdioChild {
  readonly connection: Connection;
  readonly child: ChildProcess;
}

export interface StdioSpawnOptions extends Omit<SpawnOptions, 'stdio'> {
  /** Where the child's stderr goes (its logs): inherited unless said otherwise. */
  stderr?: 'inherit' | 'ignore' | 'pipe';
}

/** The parent side: spawns `command` with pipes on its stdin and stdout and connects to it. */
export function spawnStdio(command: string, args: readonly string[] = [], options: StdioSpawnOptions = {}): StdioChild {
  const { stderr = 'inherit', ...spawnOptions } = options;
  const child = spawn(command, args, { ...spawnOptions, stdio: ['pipe', 'pipe', stderr] });
  const connection = new StreamConnection(child.stdout!, child.stdin!, `stdio:${command}`);
  child.once('exit', () => connection.close());
  return { connection, child };
}
