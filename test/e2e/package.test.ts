/**
 * pinbox as a user installs it (issue 11 #1 and #8): `npm pack`, then `npm install` of the
 * tarball into an empty folder — from the local npm cache where it can, the registry otherwise —
 * and there: `pinbox conform` finds and passes the suite that ships with the package, `pinbox
 * demo` runs, the documentation is in the package and cites nothing outside it, and the entry
 * points load.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** npm, as the running npm (npm test) or the one on PATH. */
function npm(args: string[], cwd: string): Promise<{ stdout: string; stderr: string }> {
  const npmCli = process.env.npm_execpath;
  return npmCli !== undefined && npmCli.endsWith('.js')
    ? run(process.execPath, [npmCli, ...args], { cwd, maxBuffer: 1 << 24 })
    : run('npm', args, { cwd, maxBuffer: 1 << 24 });
}

let dir: string;
let app: string;
let bin: string;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pbx-package-'));
  await npm(['pack', '--pack-destination', dir, '--silent'], process.cwd());
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  if (tarball === undefined) throw new Error(`npm pack wrote no tarball in ${dir}`);
  app = join(dir, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  // The dependencies come from the npm cache when it has them (npm ci filled it); the optional
  // native decoder of msgpackr is left out, as msgpackr works without it.
  await npm(['install', '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', '--omit=optional', join(dir, tarball)], app);
  bin = join(app, 'node_modules', '.bin', 'pinbox');
});

test.after.always(() => {
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('pinbox conform, from the folder it is installed in, finds the shipped suite and every scenario passes', async (t) => {
  t.timeout(120_000);
  const { stdout } = await run(bin, ['conform', '--reporter', 'json'], { cwd: app, maxBuffer: 1 << 24 });
  const reports = stdout.trim().split('\n').map((l) => JSON.parse(l) as { file: string; passed: boolean });
  t.true(reports.length >= 30, `${reports.length} scenarios`);
  t.deepEqual(reports.filter((r) => !r.passed).map((r) => r.file), []);
  t.true(reports.every((r) => r.file.startsWith(join('node_modules', 'pinbox', 'test', 'conformance') + '/')), reports[0]!.file);
});

test('pinbox demo runs from the package', async (t) => {
  t.timeout(60_000);
  const { stdout } = await run(bin, ['demo'], { cwd: app, maxBuffer: 1 << 24 });
  t.regex(stdout.replace(/\s+/g, ' '), /2 of 2 attempts to clear a pinned bit were refused with #GP\(0\)/);
});

test('the documentation ships, and cites only what the package and the sources hold', (t) => {
  const pkg = join(app, 'node_modules', 'pinbox');
  for (const page of ['architecture', 'msr-filter', 'heki', 'x86-model', 'boot', 'events']) t.true(existsSync(join(pkg, 'docs', `${page}.md`)), page);
  t.true(existsSync(join(pkg, 'protocol', 'PROTOCOL.md')));
  const texts = ['README.md', 'protocol/PROTOCOL.md', ...readdirSync(join(pkg, 'docs')).map((f) => `docs/${f}`)];
  const outside = new RegExp(['\\bspec/[a-z0-9-]+\\.md', '\\.\\./shared', 'ARCHITECTURE' + '\\.md'].join('|'));
  for (const f of texts) t.false(outside.test(readFileSync(join(pkg, f), 'utf8')), f);
  // Every docs/ page the README links to is in the package.
  for (const m of readFileSync(join(pkg, 'README.md'), 'utf8').matchAll(/\]\((docs\/[a-z0-9-]+\.md)/g)) t.true(existsSync(join(pkg, m[1]!)), m[1]!);
});

test('the entry points load from the package, with their type declarations', async (t) => {
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', [
    "const c = await import('pinbox/control');",
    "const g = await import('pinbox/guest-sdk');",
    "const p = await import('pinbox/protocol');",
    "const h = await import('pinbox/host');",
    'console.log(typeof c.ControlClient, typeof g.connect, typeof p.encodeEventLine, typeof h.Vmm);',
  ].join(' ')], { cwd: app });
  t.is(stdout.trim(), 'function function function function');
  for (const entry of ['control', 'guest-sdk', 'protocol', 'host']) {
    t.true(existsSync(join(app, 'node_modules', 'pinbox', 'dist', 'types', entry, 'index.d.ts')), entry);
  }
});
