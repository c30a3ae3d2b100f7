/**
 * How a command reaches a server's control endpoint: `--host URL` and the control token, which
 * it takes from a file (`--token-file`, or PATH.token beside a unix:PATH socket, where `pinbox
 * serve` writes it) so that it never sits in the process list; `--token` is there for scripts
 * that have it in hand. conform, events and ctl share these options and this reading of them.
 */
import { ControlClient } from '../../control/control-client.js';
import { ProtocolError, RemoteError } from '../../protocol/errors.js';
import { formatEndpoint } from '../../protocol/transports/endpoint.js';
import { resolveToken } from '../../control/token.js';
import { UsageError, type OptionSpec, type ParsedCommand } from './args.js';
import type { Output } from './output.js';

export const ENDPOINT = 'unix:PATH|tcp:[HOST:]PORT';

export const HOST_OPTION: OptionSpec = {
  name: 'host',
  value: { kind: 'endpoint' },
  placeholder: ENDPOINT,
  required: true,
  description: 'the pinbox server\'s control endpoint (pinbox serve --control)',
};

export const TOKEN_FILE_OPTION: OptionSpec = {
  name: 'token-file',
  value: { kind: 'file' },
  placeholder: 'FILE',
  description: 'the file holding the server\'s control token (default: PATH.token for --host unix:PATH, where pinbox serve writes it)',
};

export const TOKEN_OPTION: OptionSpec = {
  name: 'token',
  value: { kind: 'string' },
  placeholder: 'TOKEN',
  description: 'the control token itself (any user can read it in the process list: prefer --token-file)',
};

/** The control endpoint's URL and the token to present there, or a UsageError naming what is missing. */
export function controlTarget(args: ParsedCommand): { url: string; token: string } {
  const url = formatEndpoint(args.endpoint('host')!);
  const command = args.subcommand === undefined ? args.command : `${args.command} ${args.subcommand}`;
  try {
    const token = resolveToken(url, {
      ...(args.has('token') && { token: args.string('token')! }),
      ...(args.has('token-file') && { tokenFile: args.string('token-file')! }),
    });
    return { url, token };
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    throw new UsageError('pinbox', command, e.message);
  }
}

/** How a refusal reads on stderr: the server's message with its code (and errno), or why the server was not reached. */
export function refusalText(e: ProtocolError): string {
  return e instanceof RemoteError ? `${e.message} [${e.code}${e.errno === undefined ? '' : ` ${e.errno}`}]` : e.message;
}

/** Connects to the server --host names, as `client`; prints why not and gives undefined if it cannot. */
export async function openControl(args: ParsedCommand, io: Output, client: string): Promise<ControlClient | undefined> {
  const { url, token } = controlTarget(args);
  const command = args.subcommand === undefined ? args.command : `${args.command} ${args.subcommand}`;
  try {
    return await ControlClient.connect(url, { token, client });
  } catch (e) {
    if (e instanceof RemoteError) io.err(`pinbox ${command}: ${refusalText(e)}\n`);
    else io.err(`pinbox ${command}: cannot reach ${url}: ${(e as Error).message}\n`);
    return undefined;
  }
}
