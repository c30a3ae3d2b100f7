/**
 * `pinbox trace FILE [--format text|chrome] [--output FILE]`: a trace file (pinbox serve --trace)
 * as `trace-cmd report` text (trace-text.ts), or as Chrome trace-event JSON for Perfetto
 * (trace-chrome.ts). A trace cut short by a crash is read up to its last whole line, and said so
 * on stderr.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readTrace, TraceFormatError, type TraceContents } from '../../protocol/events/index.js';
import type { ParsedCommand } from './args.js';
import type { Output } from './output.js';
import { chromeTrace } from './trace-chrome.js';
import { traceCmdLine } from './trace-text.js';

export function traceCommand(args: ParsedCommand, io: Output): number {
  const file = args.string('file')!;
  let trace: TraceContents;
  try {
    trace = readTrace(readFileSync(file, 'utf8'));
  } catch (e) {
    if (!(e instanceof TraceFormatError)) throw e;
    io.err(`pinbox trace: ${file} is not a pinbox trace: ${e.message}\n`);
    return 2;
  }
  if (trace.truncatedTail) io.err(`pinbox trace: ${file} ends in a partial line (the writer stopped mid-line); it is left out\n`);
  const text = args.string('format') === 'chrome' ? JSON.stringify(chromeTrace(trace.events)) + '\n' : trace.events.map(traceCmdLine).join('');
  const output = args.string('output');
  if (output === undefined) io.out(text);
  else writeFileSync(output, text);
  return 0;
}
