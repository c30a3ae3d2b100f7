/**
 * A small parser for `PROGRAM <command> [options] [arguments]`, driven by declarative command
 * specs (commands.ts has pinbox's). It knows `--name value`, `--name=value`, short aliases
 * (`-h`), flags, repeatable and required options, options that need each other, fixed
 * arguments of their own kinds, trailing operands, and `--` to end options; commands with
 * sub-commands (`pinbox ctl OP …`, whose options are shared by every OP); `--help`/`-h` on every
 * command, `PROGRAM --help`, `PROGRAM help [COMMAND [SUBCOMMAND]]` and `--version`. Values are
 * checked and converted as they are read (values.ts).
 *
 * Every mistake is a UsageError naming the command and the option —
 *   "pinbox serve: --listen needs unix:PATH, tcp:HOST:PORT or tcp:PORT, got 'foo'"
 * — with exit code 2 and a hint to the command's help.
 */
import { closestName } from '../vmm/policy/spelling.js';
import { formatCommandHelp, formatProgramHelp } from './help.js';
import { expectedValue, parseValue, type Assignment, type Endpoint, type Value, type ValueSpec } from './values.js';

export { expectedValue, parseValue, type Assignment, type Endpoint, type Value, type ValueSpec } from './values.js';
export { formatCommandHelp, formatProgramHelp } from './help.js';

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

/** A positional argument of its own kind, read as `parsed.string(name)`, `parsed.count(name)`… */
export interface ArgumentSpec {
  readonly name: string;
  readonly placeholder: string;
  readonly value: ValueSpec;
  /** Only the last arguments may be optional. */
  readonly optional?: boolean;
  readonly description: string;
}

/** Trailing positional values, all of one kind. */
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
  /** Fixed positional arguments, before any operands. */
  readonly arguments?: readonly ArgumentSpec[];
  readonly operands?: OperandSpec;
  /** Sub-commands: the first word that is not an option names one; `options` are shared by all. */
  readonly subcommands?: { readonly placeholder: string; readonly title: string; readonly commands: readonly CommandSpec[] };
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
  /** The command the mistake is in, if one was recognised ("serve", "ctl resetVm"). */
  readonly command: string | undefined;
  /** What to run for help: "pinbox serve --help". */
  readonly hint: string;

  constructor(program: string, command: string | undefined, message: string) {
    super(`${program}${command === undefined ? '' : ' ' + command}: ${message}`);
    this.command = command;
    this.hint = `Try '${program}${command === undefined ? '' : ' ' + command} --help'.`;
  }
}

/** A parsed command: its options (flags as true, repeatable ones as lists), arguments and operands. */
export class ParsedCommand {
  constructor(
    readonly command: string,
    private readonly values: ReadonlyMap<string, readonly Value[] | true>,
    readonly operands: readonly Value[],
    /** The sub-command (`resetVm` of `pinbox ctl resetVm`), if the command has them. */
    readonly subcommand?: string,
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

  /** An option's or argument's value. */
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
    if (v !== undefined && (typeof v !== 'object' || !('kind' in v))) throw new TypeError(`--${option} is not an endpoint option`);
    return v;
  }

  /** Every value of a repeatable option, in order. */
  all(option: string): readonly Value[] {
    const v = this.values.get(option);
    return v === undefined || v === true ? [] : v;
  }

  /** The operands, as KEY=VALUE assignments. */
  assignments(): readonly Assignment[] {
    return this.operands as readonly Assignment[];
  }
}

export type CommandLine =
  | { readonly kind: 'command'; readonly parsed: ParsedCommand }
  | { readonly kind: 'help'; readonly text: string }
  | { readonly kind: 'version' };

function findCommand(commands: readonly CommandSpec[], name: string): CommandSpec | undefined {
  return commands.find((c) => c.name === name);
}

function unknownCommand(program: string, command: string | undefined, what: string, commands: readonly CommandSpec[], name: string): UsageError {
  const names = commands.map((c) => c.name);
  const guess = closestName(name, names);
  return new UsageError(program, command, `unknown ${what} '${name}'${guess ? `; did you mean '${guess}'?` : ''} (${what}s: ${names.join(', ')})`);
}

/** A sub-command's spec with its parent's shared options, named "ctl resetVm". */
function subcommandSpec(parent: CommandSpec, sub: CommandSpec): CommandSpec {
  return { ...sub, name: `${parent.name} ${sub.name}`, options: [...parent.options, ...sub.options] };
}

/** `argv` without node and the script: `['serve', '--listen', 'unix:/tmp/s']`. */
export function parseCommandLine(argv: readonly string[], p: ProgramSpec): CommandLine {
  const [first, ...rest] = argv;
  if (first === undefined) throw new UsageError(p.name, undefined, 'no command given');
  if (first === '--help' || first === '-h') return { kind: 'help', text: formatProgramHelp(p) };
  if (first === '--version') return { kind: 'version' };
  if (first === 'help') return helpFor(p, rest);
  if (first.startsWith('-')) throw new UsageError(p.name, undefined, `expected a command before ${first}`);
  const c = findCommand(p.commands, first);
  if (c === undefined) throw unknownCommand(p.name, undefined, 'command', p.commands, first);
  if (c.subcommands !== undefined) return parseWithSubcommand(p.name, c, rest);
  return parseCommand(p.name, c, rest);
}

/** `help`, `help COMMAND`, `help COMMAND SUBCOMMAND`. */
function helpFor(p: ProgramSpec, names: readonly string[]): CommandLine {
  if (names.length === 0) return { kind: 'help', text: formatProgramHelp(p) };
  const c = findCommand(p.commands, names[0]!);
  if (c === undefined) throw unknownCommand(p.name, undefined, 'command', p.commands, names[0]!);
  const max = c.subcommands === undefined ? 1 : 2;
  if (names.length > max) throw new UsageError(p.name, 'help', `takes ${max === 1 ? 'one command name' : 'a command and one of its sub-commands'}, got ${names.length}`);
  if (names.length === 1) return { kind: 'help', text: formatCommandHelp(p.name, c) };
  const sub = findCommand(c.subcommands!.commands, names[1]!);
  if (sub === undefined) throw unknownCommand(p.name, c.name, c.subcommands!.placeholder.toLowerCase(), c.subcommands!.commands, names[1]!);
  return { kind: 'help', text: formatCommandHelp(p.name, subcommandSpec(c, sub)) };
}

/** `pinbox ctl [shared options] OP [options] [arguments]`: the first word that is no option or option value is OP. */
function parseWithSubcommand(program: string, c: CommandSpec, args: readonly string[]): CommandLine {
  const subs = c.subcommands!;
  const shared = new Map(c.options.map((o) => [`--${o.name}`, o]));
  let at = -1;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') break;
    if (arg === '--help' || arg === '-h') return { kind: 'help', text: formatCommandHelp(program, c) };
    if (!arg.startsWith('-')) {
      at = i;
      break;
    }
    if (!arg.includes('=') && shared.get(arg)?.value !== undefined) i++;
  }
  const what = subs.placeholder.toLowerCase();
  if (at < 0) {
    throw new UsageError(program, c.name, `no ${subs.placeholder} given (${what}s: ${subs.commands.map((s) => s.name).join(', ')})`);
  }
  const sub = findCommand(subs.commands, args[at]!);
  if (sub === undefined) throw unknownCommand(program, c.name, what, subs.commands, args[at]!);
  return parseCommand(program, subcommandSpec(c, sub), [...args.slice(0, at), ...args.slice(at + 1)], { command: c.name, subcommand: sub.name });
}

function parseCommand(program: string, c: CommandSpec, args: readonly string[], names?: { command: string; subcommand: string }): CommandLine {
  const fail = (message: string): never => {
    throw new UsageError(program, c.name, message);
  };
  const endOfOptions = args.indexOf('--');
  const optionPart = endOfOptions < 0 ? args : args.slice(0, endOfOptions);
  if (optionPart.includes('--help') || optionPart.includes('-h')) return { kind: 'help', text: formatCommandHelp(program, c) };
  if (optionPart.includes('--version')) return { kind: 'version' };

  const values = new Map<string, Value[] | true>();
  const positional: string[] = [];
  const byName = new Map(c.options.map((o) => [o.name, o]));
  const byShort = new Map(c.options.filter((o) => o.short).map((o) => [o.short!, o]));

  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (i === endOfOptions) {
      positional.push(...args.slice(i + 1));
      break;
    }
    if (!arg.startsWith('-') || arg === '-') {
      positional.push(arg);
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

  const operandTexts = readArguments(c, positional, values, fail);
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
  return { kind: 'command', parsed: new ParsedCommand(names?.command ?? c.name, values, operands, names?.subcommand) };
}

/** The fixed arguments, into `values` under their names; returns what is left for the operands. */
function readArguments(c: CommandSpec, positional: readonly string[], values: Map<string, Value[] | true>, fail: (m: string) => never): string[] {
  const specs = c.arguments ?? [];
  specs.forEach((a, i) => {
    const text = positional[i];
    if (text === undefined) {
      if (!a.optional) fail(`needs ${a.placeholder} (${expectedValue(a.value)})`);
      return;
    }
    const parsed = parseValue(a.value, text);
    if (!parsed.ok) fail(`${a.placeholder} must be ${expectedValue(a.value)}, got '${text}'${parsed.why ? ` (${parsed.why})` : ''}`);
    values.set(a.name, [(parsed as { value: Value }).value]);
  });
  return positional.slice(specs.length);
}
