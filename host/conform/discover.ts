/**
 * Which files a run covers: each FILE as named (whatever its extension), each DIR searched
 * recursively for `*.json` files (hidden entries skipped), in the order given and, within a
 * folder, sorted by path, so runs and reports are reproducible. A file reached twice runs once.
 * A path that does not exist is kept: loading it fails, and that failure is reported like any
 * other malformed scenario.
 */
import { readdirSync, realpathSync, statSync } from 'node:fs';
import { join } from 'node:path';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function jsonFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const names = readdirSync(dir).filter((n) => !n.startsWith('.')).sort();
  for (const name of names) {
    const path = join(dir, name);
    if (isDirectory(path)) out.push(...jsonFilesUnder(path));
    else if (name.endsWith('.json')) out.push(path);
  }
  return out;
}

function identity(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}

export function discoverScenarioFiles(paths: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const path of paths) {
    for (const file of isDirectory(path) ? jsonFilesUnder(path) : [path]) {
      const id = identity(file);
      if (seen.has(id)) continue;
      seen.add(id);
      out.push(file);
    }
  }
  return out;
}
