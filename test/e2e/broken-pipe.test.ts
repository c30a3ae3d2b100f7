/**
 * `pinbox … | head` (issue 11 #2): the built command with a stdout whose reader has already
 * gone. It must end as a Unix tool ended by SIGPIPE does — nothing on stderr, status 141 — and a
 * server must first stop as on SIGTERM (its sockets removed).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const PINBOX_CLI = join(process.cwd(), 'dist', 'cli.js');

/** Runs the command with its stdout pipe closed on our side before it can write a byte. */
function withReaderGone(args: string[]): Promise<{ code: number | null; signal: string | null; stderr: string }> {
  const child = spawn(process.execPath, [PINBOX_CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.destroy();
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve) => child.once('close', (code, signal) => resolve({ code, signal, stderr })));
}

test('a one-shot command whose reader is gone exits 141 and prints nothing, no stack trace', async (t) => {
  for (const args of [['conform', '--list'], ['demo'], ['--help']]) {
    const r = await withReaderGone(args);
    t.is(r.stderr, '', args.join(' '));
    t.is(r.code, 141, args.join(' '));
  }
});

test('serve whose reader is gone stops as on SIGTERM: its socket is removed, status 141', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pbx-epipe-'));
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, '{}');
  const sock = join(dir, 'g.sock');
  const r = await withReaderGone(['serve', '--listen', `unix:${sock}`, '--policy', policy]);
  t.is(r.stderr, '');
  t.is(r.code, 141);
  t.false(existsSync(sock), 'the socket was closed and removed');
});
