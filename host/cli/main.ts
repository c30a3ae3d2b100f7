/** Parses the command line and runs the command; returns the exit code. */
import { parseCommandLine, UsageError, type ParsedCommand } from './args.js';
import { auditCommand } from './audit-command.js';
import { PINBOX, PINBOX_VERSION } from './commands.js';
import { conformCommand } from './conform-hook.js';
import { ctlCommand } from './ctl-command.js';
import { demoCommand } from './demo-command.js';
import { eventsCommand } from './events-command.js';
import type { Output } from './output.js';
import { probeCommand } from './probe-command.js';
import { runCommand } from './run-command.js';
import { serveCommand } from './serve-command.js';
import { traceCommand } from './trace-command.js';

export interface MainOptions {
  /** What stops `serve`: a signal for the real command, anything a test likes. */
  untilStopped(): Promise<unknown>;
}

export async function pinboxMain(argv: readonly string[], io: Output, options: MainOptions): Promise<number> {
  let line;
  try {
    line = parseCommandLine(argv, PINBOX);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`${e.message}\n${e.hint}\n`);
    return e.exitCode;
  }
  if (line.kind === 'help') {
    io.out(line.text);
    return 0;
  }
  if (line.kind === 'version') {
    io.out(`pinbox ${PINBOX_VERSION}\n`);
    return 0;
  }
  try {
    return await run(line.parsed, io, options);
  } catch (e) {
    // A command may find a usage mistake only once it reads its arguments' contents.
    if (!(e instanceof UsageError)) throw e;
    io.err(`${e.message}\n${e.hint}\n`);
    return e.exitCode;
  }
}

function run(args: ParsedCommand, io: Output, options: MainOptions): Promise<number> | number {
  switch (args.command) {
    case 'demo':
      return demoCommand(args, io);
    case 'serve':
      return serveCommand(args, io, options.untilStopped());
    case 'run':
      return runCommand(args, io);
    case 'conform':
      return conformCommand(args, io);
    case 'probe':
      return probeCommand(args, io);
    case 'audit':
      return auditCommand(args, io);
    case 'events':
      return eventsCommand(args, io, options.untilStopped);
    case 'ctl':
      return ctlCommand(args, io, options.untilStopped);
    case 'trace':
      return traceCommand(args, io);
    default:
      io.err(`pinbox: ${args.command} has no action\n`);
      return 2;
  }
}
