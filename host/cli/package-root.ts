/**
 * Where the pinbox package this code runs from lies: the repository in development, or
 * node_modules/pinbox once installed, wherever the command is run from. Files that ship with the
 * package (the conformance suite) are found from here, never from the working directory.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The nearest folder at or above `from` whose package.json is pinbox's. */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest)) {
      try {
        if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'pinbox') return dir;
      } catch {
        // not a package.json we can read: keep looking further up
      }
    }
    if (dirname(dir) === dir) throw new Error(`pinbox's package.json is not in ${from} or any folder above it`);
  }
}

/** `path` as a user in `cwd` would write it: relative when it lies below cwd, else absolute. */
export function shownPath(path: string, cwd: string = process.cwd()): string {
  const r = relative(cwd, path);
  return r === '' || r.startsWith('..') || isAbsolute(r) ? path : r;
}
