/**
 * The control token a client presents in its hello. `pinbox serve` writes it to a file only its
 * owner can read — by default PATH.token beside a unix:PATH control socket — so that it never
 * has to appear on a command line, where any user could read it in the process list.
 */
import { readFileSync } from 'node:fs';
import { ProtocolError, parseEndpoint } from '../protocol/index.js';

/** What the protocol lets a token be: 1..256 bytes (hello `token: str(1..256)`). */
const MAX_TOKEN_BYTES = 256;

export interface TokenSource {
  /** The token itself. */
  readonly token?: string;
  /** A file holding it (what `pinbox serve --token-file` wrote): its first line. */
  readonly tokenFile?: string;
}

/** The token file `pinbox serve` writes by default for a control endpoint URL: PATH.token for unix:PATH. */
export function defaultTokenFile(url: string): string | undefined {
  const endpoint = parseEndpoint(url);
  return endpoint.kind === 'unix' ? `${endpoint.path}.token` : undefined;
}

/** The token of a token file: its first line, which must be 1 to 256 bytes. */
export function readTokenFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message;
    throw new ProtocolError('bad_token', `cannot read the control token file ${path}: ${why}`);
  }
  const token = text.split('\n', 1)[0]!.trim();
  const bytes = Buffer.byteLength(token, 'utf8');
  if (bytes < 1 || bytes > MAX_TOKEN_BYTES) {
    throw new ProtocolError('bad_token', `the control token file ${path} holds no token of 1 to ${MAX_TOKEN_BYTES} bytes on its first line`);
  }
  return token;
}

/**
 * The token to present at `url`: the one given, else the token file's, else the file serve
 * writes by default beside a unix socket. Throws a ProtocolError `bad_token` naming what it tried.
 */
export function resolveToken(url: string | undefined, source: TokenSource): string {
  if (source.token !== undefined && source.tokenFile !== undefined) {
    throw new ProtocolError('bad_token', 'the control token and a token file are given both: give one');
  }
  if (source.token !== undefined) return source.token;
  if (source.tokenFile !== undefined) return readTokenFile(source.tokenFile);
  const fallback = url === undefined ? undefined : defaultTokenFile(url);
  if (fallback === undefined) {
    throw new ProtocolError('bad_token', 'a control client needs the server\'s token: the token itself, or the file pinbox serve wrote it to');
  }
  return readTokenFile(fallback);
}
