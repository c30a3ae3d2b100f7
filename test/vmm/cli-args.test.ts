import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseCommandLine, parseValue, UsageError, type CommandLine, type ParsedCommand, type ProgramSpec,
} from '../../host/cli/args.js';
import { PINBOX } from '../../host/cli/commands.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-cli-'));
const policy = join(dir, 'policy.json');
const image = join(dir, 'image.bin');
writeFileSync(policy, '{}');
writeFileSync(image, Uint8Array.of(0xf4));

const parse = (...argv: string[]): CommandLine => parseCommandLine(argv, PINBOX);

function command(...argv: string[]): ParsedCommand {
  const line = parse(...argv);
  if (line.kind !== 'command') throw new Error(`expected a command, got ${line.kind}`);
  return line.parsed;
}

function usage(t: import('ava').ExecutionContext, argv: string[], message: string | RegExp): UsageError {
  const e = t.throws(() => parse(...argv), { instanceOf: UsageError }) as UsageError;
  if (typeof message === 'string') t.is(e.message, message);
  else t.regex(e.message, message);
  t.is(e.exitCode, 2);
  return e;
}

test('run: required files, addresses in hex or decimal, a flag', (t) => {
  const run = command('run', '--policy', policy, '--image=' + image, '--entry', '0x100004', '--load', '1048576', '--json');
  t.is(run.command, 'run');
  t.is(run.string('policy'), policy);
  t.is(run.string('image'), image);
  t.is(run.address('entry'), 0x100004n);
  t.is(run.address('load'), 0x100000n);
  t.true(run.flag('json'));
  const plain = command('run', '--image', image, '--policy', policy);
  t.false(plain.flag('json'));
  t.is(plain.address('entry'), undefined);
  t.false(plain.has('load'));
  t.deepEqual(plain.operands, []);
});

test('serve: endpoints are parsed; bad ones are named with what was expected', (t) => {
  const serve = command('serve', '--listen', 'unix:/tmp/p.sock', '--control', 'tcp:127.0.0.1:7001', '--policy', policy, '--trace', join(dir, 'out.jsonl'));
  t.deepEqual(serve.endpoint('listen'), { kind: 'unix', path: '/tmp/p.sock' });
  t.deepEqual(serve.endpoint('control'), { kind: 'tcp', host: '127.0.0.1', port: 7001 });
  t.deepEqual(command('serve', '--listen', 'tcp:[::1]:80', '--policy', policy).endpoint('listen'), { kind: 'tcp', host: '::1', port: 80 });
  const e = usage(t, ['serve', '--listen', 'foo', '--policy', policy], "pinbox serve: --listen needs unix:PATH, tcp:HOST:PORT or tcp:PORT, got 'foo'");
  t.is(e.command, 'serve');
  t.is(e.hint, "Try 'pinbox serve --help'.");
  usage(t, ['serve', '--listen', 'tcp:localhost:70000', '--policy', policy], /--listen needs unix:PATH, tcp:HOST:PORT or tcp:PORT, got 'tcp:localhost:70000' \(a port is 0 to 65535\)/);
  usage(t, ['serve', '--listen', 'unix:', '--policy', policy], /the path is empty/);
  usage(t, ['serve', '--listen', 'tcp:host', '--policy', policy], /got 'tcp:host'$/);
  // PROTOCOL.md §1: tcp:PORT is 127.0.0.1:PORT, wherever an endpoint is read (issue 11 #3).
  t.deepEqual(command('serve', '--listen', 'tcp:18000', '--policy', policy).endpoint('listen'), { kind: 'tcp', host: '127.0.0.1', port: 18000 });
  t.deepEqual(command('conform', '--host', 'tcp:7001', '--token', 'T').endpoint('host'), { kind: 'tcp', host: '127.0.0.1', port: 7001 });
  usage(t, ['serve', '--listen', 'stdio:', '--policy', policy], /--listen needs .* got 'stdio:' \(stdio: is the pipe of a server its client starts, not an address\)/);
  usage(t, ['serve', '--policy', policy], 'pinbox serve: --listen is required (unix:PATH, tcp:HOST:PORT or tcp:PORT)');
  usage(t, ['serve', '--listen', 'unix:/x', '--policy', policy, '--trace', join(dir, 'no', 'x.jsonl')], /--trace needs a file to write, got '.*' \(directory .*no does not exist\)/);
  usage(t, ['serve', '--listen', 'unix:/x', '--policy', policy, '--trace', dir], /\(it is a directory\)/);
});

test('files, addresses and choices are checked as they are read', (t) => {
  usage(t, ['run', '--policy', join(dir, 'missing.json'), '--image', image], /^pinbox run: --policy needs an existing file, got '.*missing\.json' \(no such file or directory\)$/);
  usage(t, ['run', '--policy', dir, '--image', image], /--policy needs an existing file, got '.*' \(it is a directory\)/);
  usage(t, ['run', '--policy', policy, '--image', image, '--entry', 'main'], "pinbox run: --entry needs an address such as 0x100000, got 'main'");
  usage(t, ['run', '--policy', policy, '--image', image, '--entry', '0x10000000000000000'], /got '0x10000000000000000'$/);
  usage(t, ['run', '--policy', policy, '--image', image, '--entry', '18446744073709551616'], /\(more than 64 bits\)/);
  t.is(command('run', '--policy', policy, '--image', image, '--entry', '18446744073709551615').address('entry'), 2n ** 64n - 1n);
  usage(t, ['conform', '--reporter', 'xml'], "pinbox conform: --reporter needs one of pretty, tap, json, junit, got 'xml'");
  t.is(command('conform', '--reporter', 'tap').string('reporter'), 'tap');
});

test('option mistakes: unknown (with a guess), missing values, given twice, flags with values', (t) => {
  usage(t, ['run', '--polcy', policy], 'pinbox run: unknown option --polcy; did you mean --policy?');
  usage(t, ['run', '--frobnicate'], 'pinbox run: unknown option --frobnicate');
  usage(t, ['run', '-x'], 'pinbox run: unknown option -x');
  usage(t, ['run', '--image', image, '--policy'], 'pinbox run: --policy needs an existing file');
  usage(t, ['run', '--policy', '--json', '--image', image], 'pinbox run: --policy needs an existing file');
  usage(t, ['run', '--policy', policy, '--policy', policy, '--image', image], 'pinbox run: --policy is given twice');
  usage(t, ['run', '--policy', policy, '--image', image, '--json', '--json'], 'pinbox run: --json is given twice');
  usage(t, ['run', '--policy', policy, '--image', image, '--json=yes'], "pinbox run: --json takes no value, got 'yes'");
  usage(t, ['run', '--policy', policy, '--image', image, 'extra'], "pinbox run: unexpected argument 'extra'");
  usage(t, ['demo', 'now'], "pinbox demo: unexpected argument 'now'");
});

test('conform: operands are existing paths; --token and --token-file need --host; -- ends options', (t) => {
  const c = command('conform', dir, policy, '--list');
  t.deepEqual(c.operands, [dir, policy]);
  t.true(c.flag('list'));
  usage(t, ['conform', join(dir, 'nope')], /^pinbox conform: FILES\|DIRS must be an existing file or directory, got '.*nope' \(no such file or directory\)$/);
  usage(t, ['conform', '--token', 'T'], 'pinbox conform: --token needs --host too');
  usage(t, ['conform', '--token-file', policy], 'pinbox conform: --token-file needs --host too');
  usage(t, ['conform', '--token-file', join(dir, 'none')], /--token-file needs an existing file, got '.*none' \(no such file or directory\)/);
  const remote = command('conform', '--host', 'tcp:127.0.0.1:7001', '--token', 'T');
  t.deepEqual(remote.endpoint('host'), { kind: 'tcp', host: '127.0.0.1', port: 7001 });
  t.is(remote.string('token'), 'T');
  const dashed = join(dir, '--odd');
  writeFileSync(dashed, '');
  t.deepEqual(command('conform', '--list', '--', dashed).operands, [dashed]);
  usage(t, ['conform', '--', '--help'], /FILES\|DIRS must be an existing file or directory, got '--help'/);
});

test('help: program help, help COMMAND, --help and -h on every command, even beside mistakes', (t) => {
  for (const argv of [['--help'], ['-h'], ['help']]) {
    const line = parse(...argv);
    t.is(line.kind, 'help');
    if (line.kind === 'help') {
      t.regex(line.text, /^pinbox — a test VMM/);
      for (const name of ['demo', 'serve', 'run', 'conform', 'help \\[COMMAND\\]']) t.regex(line.text, new RegExp(`\\n {2}${name} +\\S`));
      t.regex(line.text, /--version +print the version/);
    }
  }
  for (const name of ['demo', 'serve', 'run', 'conform']) {
    const texts = [parse(name, '--help'), parse(name, '-h'), parse('help', name), parse(name, '--bogus', '--help')].map((l) => (l.kind === 'help' ? l.text : ''));
    t.true(texts.every((x) => x === texts[0] && x.startsWith(`pinbox ${name} — `)), name);
    t.regex(texts[0]!, new RegExp(`Usage: pinbox ${name}`));
    t.regex(texts[0]!, /-h, --help +show this help/);
  }
  const run = (parse('run', '--help') as { text: string }).text;
  t.regex(run, /Usage: pinbox run --policy FILE --image FILE \[--load ADDR\] \[--entry ADDR\] \[--json\]/);
  t.regex(run, /--load ADDR +where a flat binary is loaded \(default 0x100000\)/);
  t.regex(run, /--policy FILE +.*\(required\)/);
  const serve = (parse('help', 'serve') as { text: string }).text;
  t.regex(serve, /Usage: pinbox serve --listen unix:PATH\|tcp:\[HOST:\]PORT \[--control unix:PATH\|tcp:\[HOST:\]PORT\] --policy FILE \[--trace FILE\]/);
  const conform = (parse('conform', '-h') as { text: string }).text;
  t.regex(conform, /Usage: pinbox conform \[--host unix:PATH\|tcp:\[HOST:\]PORT\] \[--token-file FILE\] \[--token TOKEN\] \[--reporter pretty\|tap\|json\|junit\] \[--list\] \[--backend model\|kvm\] \[--diff\] \[FILES\|DIRS\.\.\.\]/);
});

test('--version, and mistakes before any command', (t) => {
  t.deepEqual(parse('--version'), { kind: 'version' });
  t.deepEqual(parse('run', '--version'), { kind: 'version' });
  usage(t, [], 'pinbox: no command given');
  usage(t, ['serv'], "pinbox: unknown command 'serv'; did you mean 'serve'? (commands: demo, serve, run, conform, events, ctl, trace, probe, audit)");
  usage(t, ['launch'], "pinbox: unknown command 'launch' (commands: demo, serve, run, conform, events, ctl, trace, probe, audit)");
  usage(t, ['--policy', policy], 'pinbox: expected a command before --policy');
  usage(t, ['help', 'nope'], /^pinbox: unknown command 'nope'/);
  usage(t, ['help', 'run', 'serve'], 'pinbox help: takes one command name, got 2');
  const e = usage(t, ['serv'], /unknown command/);
  t.is(e.command, undefined);
  t.is(e.hint, "Try 'pinbox --help'.");
});

test('value parsers on their own', (t) => {
  t.deepEqual(parseValue({ kind: 'endpoint' }, 'tcp:0.0.0.0:0'), { ok: true, value: { kind: 'tcp', host: '0.0.0.0', port: 0 } });
  t.deepEqual(parseValue({ kind: 'endpoint' }, 'unix:relative/sock'), { ok: true, value: { kind: 'unix', path: 'relative/sock' } });
  t.false(parseValue({ kind: 'endpoint' }, 'http://x:1').ok);
  t.false(parseValue({ kind: 'endpoint' }, 'tcp:a:b:1').ok);
  t.deepEqual(parseValue({ kind: 'address' }, '0xFFFF'), { ok: true, value: 0xffffn });
  t.false(parseValue({ kind: 'address' }, '-1').ok);
  t.false(parseValue({ kind: 'address' }, '0x').ok);
  t.false(parseValue({ kind: 'string' }, '').ok);
});

test('repeatable options collect their values in order; short aliases work', (t) => {
  const tool: ProgramSpec = {
    name: 'tool',
    summary: 'a test program',
    commands: [
      {
        name: 'go',
        summary: 'go',
        description: 'Goes.',
        options: [
          { name: 'at', short: 'a', value: { kind: 'address' }, placeholder: 'ADDR', repeatable: true, description: 'an address' },
          { name: 'verbose', short: 'v', repeatable: true, description: 'more output' },
        ],
        operands: { placeholder: 'NAME', min: 1, max: 2, value: { kind: 'string' }, description: 'names' },
      },
    ],
  };
  const line = parseCommandLine(['go', '--at', '0x10', '-a', '32', '--at=0x30', '-v', 'x', '-v'], tool);
  t.is(line.kind, 'command');
  if (line.kind !== 'command') return;
  t.deepEqual(line.parsed.all('at'), [0x10n, 32n, 0x30n]);
  t.is(line.parsed.address('at'), 0x10n, 'the first, for callers that want one');
  t.true(line.parsed.flag('verbose'));
  t.deepEqual(line.parsed.operands, ['x']);
  t.throws(() => line.parsed.string('at'), { instanceOf: TypeError }, 'asking for the wrong type is a bug in the caller');
  t.throws(() => parseCommandLine(['go'], tool), { instanceOf: UsageError, message: 'tool go: needs at least 1 NAME' });
  t.throws(() => parseCommandLine(['go', 'a', 'b', 'c'], tool), { instanceOf: UsageError, message: 'tool go: takes at most 2 NAME, got 3' });
  const help = parseCommandLine(['go', '-h'], tool);
  t.regex(help.kind === 'help' ? help.text : '', /-a, --at ADDR +an address \(may be repeated\)/);
});
