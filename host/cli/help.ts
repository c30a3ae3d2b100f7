/**
 * The help texts of args.ts's command specs: `pinbox --help`, `pinbox COMMAND --help`, and for a
 * command with sub-commands (`pinbox ctl`) the list of them and each one's own help.
 */
import type { CommandSpec, OptionSpec, ProgramSpec } from './args.js';

/** Help lines are wrapped to this many columns. */
const HELP_WIDTH = 100;

export const HELP_OPTION: OptionSpec = { name: 'help', short: 'h', description: 'show this help' };

function usageLine(program: string, c: CommandSpec): string {
  const parts = [`${program} ${c.name}`];
  if (c.subcommands !== undefined) parts.push(c.subcommands.placeholder, '[options]', '[arguments]');
  for (const o of c.subcommands === undefined ? c.options : []) {
    const word = `--${o.name}${o.value ? ' ' + (o.placeholder ?? 'VALUE') : ''}`;
    parts.push(o.required ? word : `[${word}]`);
  }
  for (const a of c.arguments ?? []) parts.push(a.optional ? `[${a.placeholder}]` : a.placeholder);
  if (c.operands !== undefined) {
    const p = c.operands.placeholder + (c.operands.max > 1 ? '...' : '');
    parts.push(c.operands.min > 0 ? p : `[${p}]`);
  }
  return parts.join(' ');
}

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
export function table(rows: readonly (readonly [string, string])[]): string {
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

function optionRows(options: readonly OptionSpec[]): [string, string][] {
  return options.map((o) => {
    const left = `${o.short ? `-${o.short}, ` : ''}--${o.name}${o.value ? ' ' + (o.placeholder ?? 'VALUE') : ''}`;
    const notes = [o.required ? 'required' : '', o.defaultText ? `default ${o.defaultText}` : '', o.repeatable ? 'may be repeated' : '']
      .filter(Boolean)
      .join('; ');
    return [left, notes === '' ? o.description : `${o.description} (${notes})`];
  });
}

export function formatCommandHelp(program: string, c: CommandSpec): string {
  const argumentRows: [string, string][] = [
    ...(c.arguments ?? []).map((a): [string, string] => [a.placeholder, a.optional ? `${a.description} (optional)` : a.description]),
    ...(c.operands === undefined ? [] : [[c.operands.placeholder, c.operands.description] as [string, string]]),
  ];
  const args = argumentRows.length === 0 ? '' : `\nArguments:\n${table(argumentRows)}\n`;
  const subs = c.subcommands === undefined ? '' : `\n${c.subcommands.title}:\n${table(c.subcommands.commands.map((s) => [s.name, s.summary]))}\n`;
  const optionsTitle = c.subcommands === undefined ? 'Options' : `Options (every ${c.subcommands.placeholder})`;
  const examples = c.examples === undefined ? '' : `\nExamples:\n${c.examples.map((e) => `  ${e}`).join('\n')}\n`;
  const more = c.subcommands === undefined ? '' : `\nRun '${program} ${c.name} ${c.subcommands.placeholder} --help' for the arguments of one.\n`;
  return `${program} ${c.name} — ${c.summary}\n\nUsage: ${usageLine(program, c)}\n\n${c.description}\n${subs}${args}\n${optionsTitle}:\n${table(optionRows([...c.options, HELP_OPTION]))}\n${examples}${more}`;
}

export function formatProgramHelp(p: ProgramSpec): string {
  const commands = table([...p.commands.map((c) => [c.name, c.summary] as [string, string]), ['help [COMMAND]', 'show the help of a command']]);
  const options = table([['-h, --help', 'show this help'], ['--version', 'print the version']]);
  return `${p.name} — ${p.summary}\n\nUsage: ${p.name} <command> [options]\n\nCommands:\n${commands}\n\nOptions:\n${options}\n\nRun '${p.name} <command> --help' for a command's options.\n`;
}
