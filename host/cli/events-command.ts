/**
 * `pinbox events --host URL [--vm VM] [--name EVENT]… [--since SEQ] [--no-follow] [--completions] [--json]`:
 * a running server's events, as they happen, one per line (docs/events.md's text or JSON form).
 * With --since, what the server's ring holds from SEQ on comes first; with --no-follow, only
 * that. Follows until interrupted, or until the server closes the connection.
 */
import { encodeEventLine, type Event, type EventName } from '../../protocol/events/index.js';
import { ProtocolError } from '../../protocol/errors.js';
import { formatEndpoint } from '../../protocol/transports/endpoint.js';
import type { ParsedCommand } from './args.js';
import { openControl, refusalText } from './control-options.js';
import { eventLine, seconds, type Output } from './output.js';

const CLIENT = 'pinbox events';

export async function eventsCommand(args: ParsedCommand, io: Output, untilStopped: () => Promise<unknown>): Promise<number> {
  const vm = args.string('vm');
  const names = args.all('name') as EventName[];
  const wanted = names.length === 0 ? undefined : new Set<string>(names);
  const json = args.flag('json');
  const follow = !args.flag('no-follow');
  const print = (e: Event): void => io.out(json ? encodeEventLine(e) : `${String(e.seq).padStart(6)} ${seconds(e.time)} ${eventLine(e).trimStart()}`);

  const ctl = await openControl(args, io, CLIENT);
  if (ctl === undefined) return 1;
  try {
    // Subscribe first, holding what comes, so that nothing falls between the ring and the pushes.
    let held: Event[] | undefined = [];
    if (follow) {
      await ctl.subscribe({ ...(vm !== undefined && { vm }), ...(wanted !== undefined && { events: names }), completions: args.flag('completions') }, (e) => {
        if (held !== undefined) held.push(e);
        else print(e);
      });
    }
    const printed = new Set<bigint>();
    if (args.has('since') || !follow) {
      for await (const e of ctl.eventsSince({ ...(vm !== undefined && { vm }), since: BigInt(args.count('since') ?? 0) })) {
        if (wanted !== undefined && !wanted.has(e.name)) continue;
        print(e);
        printed.add(e.seq);
      }
    }
    if (!follow) return 0;
    for (const e of held.sort((a, b) => (a.seq < b.seq ? -1 : 1))) if (!printed.has(e.seq)) print(e);
    held = undefined;
    const closed = new Promise<string>((resolve) => ctl.onClose(() => resolve('closed')));
    if ((await Promise.race([untilStopped(), closed])) === 'closed') {
      io.err(`pinbox events: the server at ${formatEndpoint(args.endpoint('host')!)} closed the connection\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    // The server going away before it answered the subscription is the same event for the user
    // as it going away after: say so the same way (a loaded server may not answer in time).
    if (follow && e.code === 'connection_closed') {
      io.err(`pinbox events: the server at ${formatEndpoint(args.endpoint('host')!)} closed the connection\n`);
      return 1;
    }
    io.err(`pinbox events: ${refusalText(e)}\n`);
    return 1;
  } finally {
    ctl.close();
  }
}
