/**
 * `pinbox … | head`: once the reader has gone, the next write to stdout fails with EPIPE. A Unix
 * tool dies of SIGPIPE there, silently, and the shell reports status 141 (128 + SIGPIPE). Node
 * ignores SIGPIPE and raises an 'error' event on the stream instead, which, unhandled, kills the
 * process with a stack trace. pinbox does what the Unix tool does, as far as a process that
 * cannot take the signal can: it writes nothing more, and a command that holds something open
 * (serve's sockets, a control connection) first stops as on SIGTERM.
 */

/** The status a shell reports for a command that SIGPIPE ended. */
export const EXIT_BROKEN_PIPE = 128 + 13;

/** Calls `onBroken` once, the first time a write to `stream` finds its reader gone. */
export function watchBrokenPipe(stream: NodeJS.WritableStream, onBroken: () => void): void {
  let seen = false;
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    if (seen) return;
    seen = true;
    onBroken();
  });
}
