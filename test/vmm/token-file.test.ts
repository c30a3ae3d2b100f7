/**
 * The control token file and what serve leaves on disk (issue 9 finding 5, issue 11 item 4): the
 * token file is made new — never through a planted symlink, never a file someone else made — and
 * removed at a clean stop; a socket in a missing folder, or one path for both endpoints, is named
 * as what it is; a clean stop, or a start that fails, leaves nothing of serve's behind.
 */
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy, startServer, Vmm } from '../../host/vmm/index.js';
import { ControlToken, TokenFileError } from '../../host/vmm/server/control-token.js';
import { pinbox } from './cli-support.js';

const fresh = (): string => mkdtempSync(join(tmpdir(), 'pinbox-tok-'));

test('the token file is made new, mode 0600, and removed only while it is still the file made', (t) => {
  const dir = fresh();
  const path = join(dir, 'c.token');
  const token = new ControlToken('secret');
  const file = token.writeFile(path);
  t.is(readFileSync(path, 'utf8'), 'secret\n');
  t.is(statSync(path).mode & 0o777, 0o600);
  file.remove();
  t.false(existsSync(path));
  // Someone replaced it meanwhile: theirs stays.
  const again = token.writeFile(path);
  rmSync(path);
  writeFileSync(path, 'theirs');
  again.remove();
  t.is(readFileSync(path, 'utf8'), 'theirs');
});

test('a file someone made beforehand, or a planted symlink, is refused: the token goes nowhere', (t) => {
  const dir = fresh();
  const token = new ControlToken('secret');
  const theirs = join(dir, 'theirs.token');
  writeFileSync(theirs, 'untouched', { mode: 0o666 });
  const e = t.throws(() => token.writeFile(theirs), { instanceOf: TokenFileError });
  t.regex(e!.message, /the token file .*theirs\.token exists already; pinbox serve makes its token file new and does not reuse one it did not make/);
  t.is(readFileSync(theirs, 'utf8'), 'untouched');
  const victim = join(dir, 'victim');
  writeFileSync(victim, 'precious');
  symlinkSync(victim, join(dir, 'link.token'));
  t.throws(() => token.writeFile(join(dir, 'link.token')), { instanceOf: TokenFileError });
  t.is(readFileSync(victim, 'utf8'), 'precious');
  symlinkSync(join(dir, 'nowhere'), join(dir, 'dangling.token'));
  t.throws(() => token.writeFile(join(dir, 'dangling.token')), { instanceOf: TokenFileError });
  t.false(existsSync(join(dir, 'nowhere')), 'a dangling link is not followed to make its target');
});

test('startServer refuses a token file that exists before it makes any socket, and a clean close leaves nothing', async (t) => {
  const dir = fresh();
  const vmm = new Vmm({ policy: parsePolicy({}) });
  writeFileSync(join(dir, 'c.sock.token'), 'stale');
  await t.throwsAsync(startServer({ vmm, listen: `unix:${join(dir, 'g.sock')}`, control: `unix:${join(dir, 'c.sock')}` }), { instanceOf: TokenFileError });
  t.deepEqual(readdirSync(dir), ['c.sock.token'], 'no socket was made');
  rmSync(join(dir, 'c.sock.token'));
  const server = await startServer({ vmm, listen: `unix:${join(dir, 'g.sock')}`, control: `unix:${join(dir, 'c.sock')}` });
  t.deepEqual(readdirSync(dir).sort(), ['c.sock', 'c.sock.token', 'g.sock']);
  await server.close();
  t.deepEqual(readdirSync(dir), [], 'sockets and token file gone');
  const named = await startServer({ vmm, listen: `unix:${join(dir, 'g.sock')}`, control: 'tcp:127.0.0.1:0', tokenFile: join(dir, 'mine.token') });
  t.true(existsSync(join(dir, 'mine.token')));
  await named.close();
  t.deepEqual(readdirSync(dir), []);
  const elsewhere = await startServer({ vmm, listen: `unix:${join(dir, 'g.sock')}`, control: 'tcp:127.0.0.1:0' });
  const privateDir = join(elsewhere.tokenFile!, '..');
  t.is(statSync(privateDir).mode & 0o777, 0o700);
  await elsewhere.close();
  t.false(existsSync(privateDir));
  vmm.close();
});

test('serve: a socket in a missing folder is named as such; nothing is left behind', async (t) => {
  const dir = fresh();
  writeFileSync(join(dir, 'policy.json'), '{}');
  const r = await pinbox(['serve', '--listen', `unix:${join(dir, 'no', 'such', 'g.sock')}`, '--policy', join(dir, 'policy.json')]);
  t.is(r.code, 1);
  t.true(r.err.includes(`cannot listen: unix:${join(dir, 'no', 'such', 'g.sock')}: the folder ${join(dir, 'no', 'such')} does not exist`), r.err);
  t.notRegex(r.err, /EACCES/);
  const c = await pinbox(['serve', '--listen', `unix:${join(dir, 'g.sock')}`, '--control', `unix:${join(dir, 'gone', 'c.sock')}`, '--policy', join(dir, 'policy.json'), '--trace', join(dir, 't.jsonl')]);
  t.is(c.code, 1);
  t.regex(c.err, /the folder .*gone does not exist/);
  t.deepEqual(readdirSync(dir), ['policy.json'], 'no socket, token file or trace left');
});

test('serve: one path for --listen and --control is a usage error (exit 2) that makes nothing', async (t) => {
  const dir = fresh();
  writeFileSync(join(dir, 'policy.json'), '{}');
  const sock = join(dir, 'same.sock');
  const r = await pinbox(['serve', '--listen', `unix:${sock}`, '--control', `unix:${dir}/./same.sock`, '--policy', join(dir, 'policy.json'), '--trace', join(dir, 't.jsonl')]);
  t.is(r.code, 2);
  t.regex(r.err, /--listen and --control are both unix:.*same\.sock; guests and control clients need an endpoint each/);
  t.deepEqual(readdirSync(dir), ['policy.json']);
});

test('serve: a token file that exists stops it (exit 1) with what to do; a clean stop removes what it made', async (t) => {
  const dir = fresh();
  writeFileSync(join(dir, 'policy.json'), '{}');
  mkdirSync(join(dir, 'run'));
  writeFileSync(join(dir, 'run', 'c.sock.token'), 'left by a killed server');
  const args = ['serve', '--listen', `unix:${join(dir, 'run', 'g.sock')}`, '--control', `unix:${join(dir, 'run', 'c.sock')}`, '--policy', join(dir, 'policy.json')];
  const r = await pinbox(args);
  t.is(r.code, 1);
  t.regex(r.err, /c\.sock\.token exists already.*remove it, or name another with --token-file/);
  t.deepEqual(readdirSync(join(dir, 'run')), ['c.sock.token']);
  rmSync(join(dir, 'run', 'c.sock.token'));
  let stop!: () => void;
  const running = pinbox(args, () => new Promise<void>((resolve) => (stop = resolve)));
  for (let i = 0; !existsSync(join(dir, 'run', 'c.sock')); i++) {
    if (i > 200) throw new Error('serve did not come up');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  t.deepEqual(readdirSync(join(dir, 'run')).sort(), ['c.sock', 'c.sock.token', 'g.sock']);
  stop();
  t.is((await running).code, 0);
  t.deepEqual(readdirSync(join(dir, 'run')), []);
});
