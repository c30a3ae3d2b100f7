/**
 * A small parser for `PROGRAM <command> [options] [operands]`, driven by declarative command
 * specs (commands.ts has pinbox's). It knows `--name value`, `--name=value`, short aliases
 * (`-h`), flags, repeatable and required options, options that need each other, operands, and
 * `--` to end options; `--help`/`-h` on every command, `PROGRAM --help`, `PROGRAM help
 * [COMMAND]` and `--version`. Values are checked and converted as they are read (endpoints,
 * addresses, existing files, output files, choices).
 *
 * Every mistake is a UsageError naming the command and the option —
 *   "pinbox serve: --listen needs unix:PATH or tcp:HOST:PORT, got 'foo'"
 * — with exit code 2 and a hint to the command's help.
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

export type ValueSpec =
  | { readonly kind: 'string' }
  | { readonly kind: 'endpoint' }
  /** A guest address: hex "0x…" or decimal, 0 to 2^64 - 1, as a bigint. */
  | { readonly kind: 'address' }
  /** An existing regular file. */
  | { readonly kind: 'file' }
  /** A file to create: its directory must exist. */
  | { readonly kind: 'output-file' }
  /** An existing file or directory. */
  | { readonly kind: 'path' }
  | { readonly kind: 'choice'; readonly choices: readonly string[] }
  /** A whole number from min to max, decimal (with optional _ or , separators) or 0x-hex. */
  | { readonly kind: 'count'; readonly min: number; readonly max: number };

export type Value = string | bigint | number | Endpoint;

export interface OptionSpec {
  /** `policy` is written --policy. */
  readonly name: string;
  /** One letter: `h` is written -h. */
  readonly short?: string;
  /** Absent: a flag. */
  readonly value?: ValueSpec;
  /** How help shows the value: FILE, ADDR, unix:PATH|tcp:HOST:PORT. */
  readonly placeholder?: string;
  readonly repeatable?: boolean;
  readonly required?: boolean;
  /** Other options that must be given along with this one. */
  readonly requires?: readonly string[];
  /** Shown in help after the description. */
  readonly defaultText?: string;
  readonly description: string;
}

export interface OperandSpec {
  readonly placeholder: string;
  readonly min: number;
  readonly max: number;
  readonly value: ValueSpec;
  readonly description: string;
}

export interface CommandSpec {
  readonly name: string;
  /** One line, for the command list. */
  readonly summary: string;
  /** Paragraphs for `--help`. */
  readonly description: string;
  readonly options: readonly OptionSpec[];
  readonly operands?: OperandSpec;
  readonly examples?: readonly string[];
}

export interface ProgramSpec {
  readonly name: string;
  readonly summary: string;
  readonly commands: readonly CommandSpec[];
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
  /** What the process should exit with. */
  readonly exitCode = 2;
  /** The command the mistake is in, if one was recognised. */
  readonly command: string | undefined;
  /** What to run for help: "pinbox serve --help". */
  readonly hint: string;

  constructor(program: string, command: string | undefined, message: string) {
    super(`${program}${command === undefined ? '' : ' ' + command}: ${message}`);
    this.command = command;
    this.hint = `Try '${program}${command === undefined ? '' : ' ' + command} --help'.`;
  }
}

/** A parsed command: its options (flags as true, repeatable ones as lists) and operands. */
export class ParsedCommand {
  constructor(
    readonly command: string,
    private readonly values: ReadonlyMap<string, readonly Value[] | true>,
    readonly operands: readonly Value[],
  ) {}

  has(option: string): boolean {
    return this.values.has(option);
  }

  flag(option: string): boolean {
    return this.values.get(option) === true;
  }

  private one(option: string): Value | undefined {
    const v = this.values.get(option);
    return v === undefined || v === true ? undefined : v[0];
  }

  string(option: string): string | undefined {
    const v = this.one(option);
    if (v !== undefined && typeof v !== 'string') throw new TypeError(`--${option} is not a string option`);
    return v;
  }

  address(option: string): bigint | undefined {
    const v = this.one(option);
    if (v !== undefined && typeof v !== 'bigint') throw new TypeError(`--${option} is not an address option`);
    return v;
  }

  count(option: string): number | undefined {
    const v = this.one(option);
    if (v !== undefined && typeof v !== 'number') throw new TypeError(`--${option} is not a count option`);
    return v;
  }

  endpoint(option: string): Endpoint | undefined {
    const v = this.one(option);
    if (v !== undefined && (typeof v !== 'object')) throw new TypeError(`--${option} is not an endpoint option`);
    return v;
  }

  /** Every value of a repeatable option, in order. */
  all(option: string): readonly Value[] {
    const v = this.values.get(option);
    return v === undefined || v === true ? [] : v;
  }
}

export type CommandLine =
  | { readonly kind: 'command'; readonly parsed: ParsedCommand }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version' };

const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', description: 'show this help' };

/** What a value of this kind looks like, for messages: "unix:PATH or tcp:HOST:PORT". */
export function expectedValue(spec: ValueSpec): string {
  switch (spec.kind) {
    case 'string':
      return 'a value';
    case 'choice':
      return `one of ${spec.choices.join(', ')}`;
    case 'count':
      return `a whole number from ${spec.min} to ${spec.max}`;
    case 'endpoint':
      return 'unix:PATH, tcp:HOST:PORT or tcp:PORT';
    case 'address':
      return 'an address such as 0x100000';
    case 'file':
      return 'an existing file';
    case 'path':
      return 'an existing file or directory';
    case 'output-file':
      return 'a file to write';
  }
}

/** Checks and converts a value; on failure, `why` adds to expectedValue() when it can say more. */
export function parseValue(spec: ValueSpec, text: string): { ok: true; value: Value } | { ok: false; why?: string } {
  switch (spec.kind) {
    case 'string':
      return text === '' ? { ok: false } : { ok: true, value: text };
    case 'choice':
      return spec.choices.includes(text) ? { ok: true, value: text } : { ok: false };
    case 'count': {
      if (!/^(0x[0-9a-fA-F]+|[0-9][0-9_,]*)$/.test(text)) return { ok: false };
      const value = Number(text.replace(/[_,]/g, ''));
      if (!Number.isSafeInteger(value)) return { ok: false, why: 'too large' };
      if (value < spec.min || value > spec.max) return { ok: false, why: value < spec.min ? `below ${spec.min}` : `above ${spec.max}` };
      return { ok: true, value };
    }
    case 'endpoint': {
      let endpoint: ProtocolEndpoint;
      try {
        endpoint = parseEndpoint(text);
      } catch (e) {
        if (!(e instanceof ProtocolError)) throw e;
        return { ok: false, why: endpointProblem(text) };
      }
      if (endpoint.kind === 'stdio') return { ok: false, why: 'stdio: is the pipe of a server its client starts, not an address' };
      return { ok: true, value: endpoint };
    }
    case 'address': {
      if (!/^(0x[0-9a-fA-F]{1,16}|[0-9]{1,20})$/.test(text)) return { ok: false };
      const value = BigInt(text);
      return value >= 1n << 64n ? { ok: false, why: 'more than 64 bits' } : { ok: true, value };
    }
    case 'file':
    case 'path': {
      try {
        const st = statSync(text);
        if (spec.kind === 'file' && !st.isFile()) return { ok: false, why: st.isDirectory() ? 'it is a directory' : 'not a regular file' };
        return { ok: true, value: text };
      } catch {
        return { ok: false, why: 'no such file or directory' };
      }
    }
    case 'output-file': {
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
  }
}

/** Why parseEndpoint() refused a URL, in the words of a usage error. */
function endpointProblem(text: string): string | undefined {
  if (text === 'unix:' || text.startsWith('unix:') && text.includes('\0')) return 'the path is empty or holds a NUL byte';
  const port = /^tcp:(?:.*:)?(\d+)$/.exec(text);
  if (port !== null && Number(port[1]) > 65535) return 'a port is 0 to 65535';
  return undefined;
}

function usageLine(program: string, c: CommandSpec): string {
  const parts = [`${program} ${c.name}`];
  for (const o of c.options) {
    const word = `--${o.name}${o.value ? ' ' + (o.placeholder ?? 'VALUE') : ''}`;
    parts.push(o.required ? word : `[${word}]`);
  }
  if (c.operands !== undefined) {
    const p = c.operands.placeholder + (c.operands.max > 1 ? '...' : '');
    parts.push(c.operands.min > 0 ? p : `[${p}]`);
  }
  return parts.join(' ');
}

/** Help lines are wrapped to this many columns. */
const HELP_WIDTH = 100;

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  return [...lines, line];
}

/** Two columns; long right-hand texts wrap under themselves. */
function table(rows: readonly (readonly [string, string])[]): string {
  const width = Math.min(34, Math.max(...rows.map(([left]) => left.length)));
  const indent = ' '.repeat(2 + width + 2);
  return rows
    .map(([left, right]) => {
      const [first, ...more] = wrap(right, Math.max(30, HELP_WIDTH - indent.length));
      const head = left.length > width ? `  ${left}\n${indent}${first}` : `  ${left.padEnd(width)}  ${first}`;
      return [head, ...more.map((l) => indent + l)].join('\n');
    })
    .join('\n');
}

export function formatCommandHelp(program: string, c: CommandSpec): string {
  const rows: [string, string][] = [...c.options, HELP_OPTION].map((o) => {
    const left = `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.value ? ' ' + (o.placeholder ?? 'VALUE') : ''}`;
    const notes = [o.required ? 'required' : '', o.defaultText ? `default ${o.defaultText}` : '', o.repeatable ? 'may be repeated' : '']
      .filter(Boolean)
      .join('; ');
    return [left, notes === '' ? o.description : `${o.description} (${notes})`];
  });
  const operands = c.operands === undefined ? '' : `\nArguments:\n${table([[c.operands.placeholder, c.operands.description]])}\n`;
  const examples = c.examples === undefined ? '' : `\nExamples:\n${c.examples.map((e) => `  ${e}`).join('\n')}\n`;
  return `${program} ${c.name} — ${c.summary}\n\nUsage: ${usageLine(program, c)}\n\n${c.description}\n${operands}\nOptions:\n${table(rows)}\n${examples}`;
}

export function formatProgramHelp(p: ProgramSpec): string {
  const commands = table([...p.commands.map((c) => [c.name, c.summary] as [string, string]), ['help [COMMAND]', 'show the help of a command']]);
  const options = table([['-h, --help', 'show this help'], ['--version', 'print the version']]);
  return `${p.name} — ${p.summary}\n\nUsage: ${p.name} <command> [options]\n\nCommands:\n${commands}\n\nOptions:\n${options}\n\nRun '${p.name} <command> --help' for a command's options.\n`;
}

function findCommand(p: ProgramSpec, name: string): CommandSpec | undefined {
  return p.commands.find((c) => c.name === name);
}

function unknownCommand(p: ProgramSpec, name: string): UsageError {
  const names = p.commands.map((c) => c.name);
  const guess = closestName(name, names);
  return new UsageError(p.name, undefined, `unknown command '${name}'${guess ? `; did you mean '${guess}'?` : ''} (commands: ${names.join(', ')})`);
}

/** `argv` without node and the script: `['serve', '--listen', 'unix:/tmp/s']`. */
export function parseCommandLine(argv: readonly string[], p: ProgramSpec): CommandLine {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError(p.name, undefined, 'no command given');
  if (first === '--help' || first === '-h') return { kind: 'help', text: formatProgramHelp(p) };
  if (first === '--version') return { kind: 'version' };
  if (first === 'help') {
    if (rest.length === 0) return { kind: 'help', text: formatProgramHelp(p) };
    if (rest.length > 1) throw new UsageError(p.name, 'help', `takes one command name, got ${rest.length}`);
    const c = findCommand(p, rest[0]!);
    if (c === undefined) throw unknownCommand(p, rest[0]!);
    return { kind: 'help', text: formatCommandHelp(p.name, c) };
  }
  if (first.startsWith('-')) throw new UsageError(p.name, undefined, `expected a command before ${first}`);
  const c = findCommand(p, first);
  if (c === undefined) throw unknownCommand(p, first);
  return parseCommand(p.name, c, rest);
}

function parseCommand(program: string, c: CommandSpec, args: readonly string[]): CommandLine {
  const fail = (message: string): never => {
    throw new UsageError(program, c.name, message);
  };
  const endOfOptions = args.indexOf('--');
  const optionPart = endOfOptions < 0 ? args : args.slice(0, endOfOptions);
  if (optionPart.includes('--help') || optionPart.includes('-h')) return { kind: 'help', text: formatCommandHelp(program, c) };
  if (optionPart.includes('--version')) return { kind: 'version' };

  const values = new Map<string, Value[] | true>();
  const operandTexts: string[] = [];
  const byName = new Map(c.options.map((o) => [o.name, o]));
  const byShort = new Map(c.options.filter((o) => o.short).map((o) => [o.short!, o]));

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (i === endOfOptions) {
      operandTexts.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      operandTexts.push(arg);
      continue;
    }
    let spec: OptionSpec | undefined;
    let inline: string | undefined;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      spec = byName.get(name);
      if (spec === undefined) {
        const guess = closestName(name, c.options.map((o) => o.name));
        fail(`unknown option --${name}${guess ? `; did you mean --${guess}?` : ''}`);
      }
    } else {
      spec = byShort.get(arg.slice(1));
      if (spec === undefined) fail(`unknown option ${arg}`);
    }
    const option = spec!;
    const shown = `--${option.name}`;
    if (option.value === undefined) {
      if (inline !== undefined) fail(`${shown} takes no value, got '${inline}'`);
      if (values.has(option.name) && !option.repeatable) fail(`${shown} is given twice`);
      values.set(option.name, true);
      continue;
    }
    let text = inline;
    if (text === undefined) {
      const next = args[i + 1];
      if (next === undefined || (next.startsWith('-') && next !== '-') || i + 1 === endOfOptions) {
        fail(`${shown} needs ${expectedValue(option.value)}`);
      }
      text = next!;
      i++;
    }
    const parsed = parseValue(option.value, text!);
    if (!parsed.ok) fail(`${shown} needs ${expectedValue(option.value)}, got '${text}'${parsed.why ? ` (${parsed.why})` : ''}`);
    const list = values.get(option.name);
    if (list !== undefined && !option.repeatable) fail(`${shown} is given twice`);
    values.set(option.name, [...(Array.isArray(list) ? list : []), (parsed as { value: Value }).value]);
  }

  for (const o of c.options) {
    if (o.required && !values.has(o.name)) fail(`--${o.name} is required (${o.value ? expectedValue(o.value) : 'a flag'})`);
    if (values.has(o.name)) {
      for (const other of o.requires ?? []) {
        if (!values.has(other)) fail(`--${o.name} needs --${other} too`);
      }
    }
  }

  const operands: Value[] = [];
  const spec = c.operands;
  if (spec === undefined) {
    if (operandTexts.length > 0) fail(`unexpected argument '${operandTexts[0]}'`);
  } else {
    if (operandTexts.length < spec.min) fail(`needs at least ${spec.min} ${spec.placeholder}`);
    if (operandTexts.length > spec.max) fail(`takes at most ${spec.max} ${spec.placeholder}, got ${operandTexts.length}`);
    for (const text of operandTexts) {
      const parsed = parseValue(spec.value, text);
      if (!parsed.ok) fail(`${spec.placeholder} must be ${expectedValue(spec.value)}, got '${text}'${parsed.why ? ` (${parsed.why})` : ''}`);
      operands.push((parsed as { value: Value }).value);
    }
  }
  return { kind: 'command', parsed: new ParsedCommand(c.name, values, operands) };
}
