#!/usr/bin/env node
// Builds pinbox with esbuild:
//   dist/        the `pinbox` command (dist/cli.js, with its shebang) and the library entry
//                points pinbox/protocol, pinbox/host, pinbox/guest-sdk, pinbox/control (ESM,
//                code-split so they share one copy of the protocol classes), plus type
//                declarations (tsc).
//   build/test/  every test/**/*.test.ts compiled for ava (ava cannot load TypeScript through a
//                loader under worker threads on Node 20), and test/**/fixtures/*.ts, programs
//                that tests run as child processes.
//   build/bench/ every test/bench/*.bench.ts.
//   dist/examples/ (with --dist) and build/examples/ (with --tests): the runnable examples,
//                examples/*.ts, each with its policy bundled in.
// Usage: node build.mjs [--dist] [--tests] [--types]   (no flag: everything)
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = new Set(process.argv.slice(2));
const all = args.size === 0;

const common = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  sourcemap: 'linked',
  logLevel: 'warning',
};

function walk(dir, accept) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...walk(path, accept));
    else if (accept(path)) out.push(path);
  }
  return out;
}

/** The runnable examples: examples/*.ts (their shared parts and policies are bundled in). */
function examples() {
  return readdirSync('examples').filter((f) => f.endsWith('.ts')).map((f) => join('examples', f));
}

if (all || args.has('--dist')) {
  rmSync('dist', { recursive: true, force: true });
  await build({
    ...common,
    entryPoints: {
      cli: 'host/cli.ts',
      protocol: 'protocol/index.ts',
      host: 'host/index.ts',
      'guest-sdk': 'guest-sdk/index.ts',
      control: 'control/index.ts',
    },
    outdir: 'dist',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
  });
  await build({ ...common, entryPoints: examples(), outdir: 'dist/examples' });
}

if (all || args.has('--types')) {
  execFileSync(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.build.json'], {
    stdio: 'inherit',
  });
}

if (all || args.has('--tests')) {
  rmSync('build', { recursive: true, force: true });
  const tests = walk('test', (p) => p.endsWith('.test.ts') || /[\/]fixtures[\/][^\/]+\.ts$/.test(p));
  const benches = walk('test/bench', (p) => p.endsWith('.bench.ts') || p.endsWith('main.ts'));
  await build({ ...common, entryPoints: tests, outdir: 'build/test', outbase: 'test' });
  await build({ ...common, entryPoints: benches, outdir: 'build/bench', outbase: 'test/bench' });
  await build({ ...common, entryPoints: examples(), outdir: 'build/examples' });
}
