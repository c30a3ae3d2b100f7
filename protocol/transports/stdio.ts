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

/**
 * The parent side: spawns `command` with a pipe on stdin and stdout (stderr is inherited
 * unless `options.stdio` says otherwise) and connects to it.
 */
export function spawnStdio(command: string, args: readonly string[] = [], options: SpawnOptions = {}): StdioChild {
  const child = spawn(command, args, { ...options, stdio: ['pipe', 'pipe', options.stdio === 'ignore' ? 'ignore' : 'inherit'] });
  const connection = new StreamConnection(child.stdout!, child.stdin!, `stdio:${command}`);
  child.once('exit', () => connection.close());
  return { connection, child };
}
