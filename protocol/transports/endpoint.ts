/**
 * Endpoint URLs (PROTOCOL.md §1.1):
 *
 *   unix:/path/to.sock      a Unix domain socket (an absolute or relative path)
 *   tcp:HOST:PORT           TCP; HOST is a name, an IPv4 address or [an IPv6 address]
 *   tcp:PORT                TCP on the loopback address 127.0.0.1
 *   stdio:                  this process's stdin/stdout (the child side of a stdio pipe)
 *
 * A server listens on 127.0.0.1 unless the URL names another host: listening on every
 * interface takes an explicit `tcp:0.0.0.0:PORT`.
 */
import { resolve as resolvePath } from 'node:path';
import { ProtocolError } from '../errors.js';

export type Endpoint =
  | { kind: 'unix'; path: string }
  | { kind: 'tcp'; host: string; port: number }
  | { kind: 'stdio' };

export const LOOPBACK_HOST = '127.0.0.1';

function badUrl(url: string, why: string): ProtocolError {
  return new ProtocolError('bad_url', `${JSON.stringify(url)}: ${why} (expected unix:/path, tcp:HOST:PORT, tcp:PORT or stdio:)`);
}

export function parseEndpoint(url: string): Endpoint {
  if (typeof url !== 'string') throw badUrl(String(url), 'not a string');
  if (url === 'stdio:') return { kind: 'stdio' };
  if (url.startsWith('unix:')) {
    const path = url.slice(5);
    if (path === '' || path.includes('\0')) throw badUrl(url, 'the socket path is empty or holds a NUL byte');
    return { kind: 'unix', path };
  }
  if (url.startsWith('tcp:')) {
    const rest = url.slice(4);
    const m = /^(?:(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):)?(\d{1,5})$/.exec(rest);
    if (!m) throw badUrl(url, 'not HOST:PORT');
    const port = Number(m[2]);
    if (port > 65535) throw badUrl(url, `port ${port} is out of range 0..65535`);
    const host = m[1] === undefined ? LOOPBACK_HOST : m[1].replace(/^\[(.*)\]$/, '$1');
    return { kind: 'tcp', host, port };
  }
  throw badUrl(url, 'unknown scheme');
}

/**
 * Whether two endpoints would bind the same socket: one unix path (relative paths resolved), or
 * one TCP port (not 0, which picks a free one) on one host; stdio: is one.
 */
export function sameSocket(a: Endpoint, b: Endpoint): boolean {
  if (a.kind === 'unix' && b.kind === 'unix') return resolvePath(a.path) === resolvePath(b.path);
  if (a.kind === 'tcp' && b.kind === 'tcp') return a.port !== 0 && a.port === b.port && a.host === b.host;
  return a.kind === 'stdio' && b.kind === 'stdio';
}

/** The URL of an endpoint, e.g. of the address a server actually bound. */
export function formatEndpoint(e: Endpoint): string {
  switch (e.kind) {
    case 'unix': return `unix:${e.path}`;
    case 'tcp': return `tcp:${e.host.includes(':') ? `[${e.host}]` : e.host}:${e.port}`;
    case 'stdio': return 'stdio:';
  }
}
