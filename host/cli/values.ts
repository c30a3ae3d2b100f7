/**
 * The kinds of values a command line takes, and how each is checked and converted as it is read
 * (args.ts): strings, names, choices, counts, addresses, endpoints, files, `KEY=VALUE`
 * assignments. A value that does not fit is refused with what was expected and, where it can
 * say more, why.
 */
import { statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ProtocolError } from '../../protocol/errors.js';
import { parseEndpoint, type Endpoint as ProtocolEndpoint } from '../../protocol/transports/endpoint.js';
import { closestName } from '../vmm/policy/spelling.js';

/**
 * A listening or connecting address, in the protocol's grammar (PROTOCOL.md §1, parsed by
 * protocol/transports/endpoint.ts, the one parser of endpoint URLs): `unix:PATH`,
 * `tcp:HOST:PORT` or `tcp:PORT`. `stdio:` is not one a command line can use: it is the pipe of a
 * server its client started as a child.
 */
export type Endpoint = Exclude<ProtocolEndpoint, { kind: 'stdio' }>;

/** `KEY=VALUE`: a register, segment field or MSR index, and a 64-bit value. */
export interface Assignment {
  readonly key: string;
  readonly value: bigint;
}

export type ValueSpec =
  | { readonly kind: 'string' }
  /** A VM name, as the protocol has it: 1 to 64 of A-Z a-z 0-9 _ . - */
  | { readonly kind: 'name' }
  | { readonly kind: 'endpoint' }
  /** A guest address or 64-bit value: hex "0x…" or decimal, 0 to 2^64 - 1, as a bigint. */
  | { readonly kind: 'address' }
  /** A 64-bit number that is not an address (a mask, a value): parsed as an address is. */
  | { readonly kind: 'u64' }
  /** An existing regular file. */
  | { readonly kind: 'file' }
  /** A file to create: its directory must exist. */
  | { readonly kind: 'output-file' }
  /** An existing file or directory. */
  | { readonly kind: 'path' }
  | { readonly kind: 'choice'; readonly choices: readonly string[] }
  /** A whole number from min to max, decimal (with optional _ or , separators) or 0x-hex. */
  | { readonly kind: 'count'; readonly min: number; readonly max: number }
  /** KEY=VALUE with VALUE a 64-bit number; KEY one of `keys`, or (without keys) a u32 such as an MSR index. */
  | { readonly kind: 'assignment'; readonly keys?: readonly string[] };

export type Value = string | bigint | number | Endpoint | Assignment;

/** What a value of this kind looks like, for messages: "unix:PATH, tcp:HOST:PORT or tcp:PORT". */
export function expectedValue(spec: ValueSpec): string {
  switch (spec.kind) {
    case 'string':
      return 'a value';
    case 'name':
      return 'a name of 1 to 64 letters, digits, _ . or -';
    case 'choice':
      return `one of ${spec.choices.join(', ')}`;
    case 'count':
      return `a whole number from ${spec.min} to ${spec.max}`;
    case 'endpoint':
      return 'unix:PATH, tcp:HOST:PORT or tcp:PORT';
    case 'address':
      return 'an address such as 0x100000';
    case 'u64':
      return 'a 64-bit number, 0x… or decimal';
    case 'file':
      return 'an existing file';
    case 'path':
      return 'an existing file or directory';
    case 'output-file':
      return 'a file to write';
    case 'assignment':
      return spec.keys === undefined ? 'INDEX=VALUE, such as 0xc0000102=0x1000' : `NAME=VALUE with NAME one of ${spec.keys.join(', ')}`;
  }
}

type Parsed = { ok: true; value: Value } | { ok: false; why?: string };

const NUMBER = /^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/;

function u64(text: string): bigint | undefined {
  if (!NUMBER.test(text)) return undefined;
  const value = BigInt(text);
  return value < 1n << 64n ? value : undefined;
}

/** Checks and converts a value; on failure, `why` adds to expectedValue() when it can say more. */
export function parseValue(spec: ValueSpec, text: string): Parsed {
  switch (spec.kind) {
    case 'string':
      return text === '' ? { ok: false } : { ok: true, value: text };
    case 'name':
      return /^[A-Za-z0-9_.-]{1,64}$/.test(text) ? { ok: true, value: text } : { ok: false };
    case 'choice': {
      if (spec.choices.includes(text)) return { ok: true, value: text };
      const guess = closestName(text, spec.choices);
      return guess === undefined ? { ok: false } : { ok: false, why: `did you mean '${guess}'?` };
    }
    case 'count': {
      if (!/^(0x[0-9a-fA-F]+|[0-9][0-9_,]*)$/.test(text)) return { ok: false };
      const value = Number(text.replace(/[_,]/g, ''));
      if (!Number.isSafeInteger(value)) return { ok: false, why: 'too large' };
      if (value < spec.min || value > spec.max) return { ok: false, why: value < spec.min ? `below ${spec.min}` : `above ${spec.max}` };
      return { ok: true, value };
    }
    case 'endpoint':
      return endpoint(text);
    case 'address':
    case 'u64': {
      if (!NUMBER.test(text)) return { ok: false };
      const value = u64(text);
      return value === undefined ? { ok: false, why: 'more than 64 bits' } : { ok: true, value };
    }
    case 'file':
    case 'path':
      return existing(spec.kind, text);
    case 'output-file':
      return outputFile(text);
    case 'assignment':
      return assignment(spec.keys, text);
  }
}

function endpoint(text: string): Parsed {
  let parsed: ProtocolEndpoint;
  try {
    parsed = parseEndpoint(text);
  } catch (e) {
    if (!(e instanceof ProtocolError)) throw e;
    return { ok: false, why: endpointProblem(text) };
  }
  if (parsed.kind === 'stdio') return { ok: false, why: 'stdio: is the pipe of a server its client starts, not an address' };
  return { ok: true, value: parsed };
}

/** Why parseEndpoint() refused a URL, in the words of a usage error. */
function endpointProblem(text: string): string | undefined {
  if (text === 'unix:' || (text.startsWith('unix:') && text.includes('\0'))) return 'the path is empty or holds a NUL byte';
  const port = /^tcp:(?:.*:)?(\d+)$/.exec(text);
  if (port !== null && Number(port[1]) > 65535) return 'a port is 0 to 65535';
  return undefined;
}

function existing(kind: 'file' | 'path', text: string): Parsed {
  try {
    const st = statSync(text);
    if (kind === 'file' && !st.isFile()) return { ok: false, why: st.isDirectory() ? 'it is a directory' : 'not a regular file' };
    return { ok: true, value: text };
  } catch {
    return { ok: false, why: 'no such file or directory' };
  }
}

function outputFile(text: string): Parsed {
  if (text === '') return { ok: false };
  const dir = dirname(resolve(text));
  try {
    if (!statSync(dir).isDirectory()) return { ok: false, why: `${dir} is not a directory` };
  } catch {
    return { ok: false, why: `directory ${dir} does not exist` };
  }
  try {
    if (statSync(text).isDirectory()) return { ok: false, why: 'it is a directory' };
  } catch {
    // it does not exist yet: it will be created
  }
  return { ok: true, value: text };
}

function assignment(keys: readonly string[] | undefined, text: string): Parsed {
  const eq = text.indexOf('=');
  if (eq < 0) return { ok: false };
  const key = text.slice(0, eq);
  const value = u64(text.slice(eq + 1));
  if (value === undefined) return { ok: false, why: `${text.slice(eq + 1) || 'nothing'} is not a 64-bit number` };
  if (keys === undefined) {
    const index = u64(key);
    if (index === undefined || index > 0xffffffffn) return { ok: false, why: `${key || 'nothing'} is not a 32-bit index` };
    return { ok: true, value: { key: String(Number(index)), value } };
  }
  if (keys.includes(key)) return { ok: true, value: { key, value } };
  const guess = closestName(key, keys);
  return { ok: false, why: `no ${key}${guess === undefined ? '' : `; did you mean ${guess}?`}` };
}
