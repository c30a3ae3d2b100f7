/**
 * Reads the imports of the repository's TypeScript files: every `import … from`, `export … from`,
 * side-effect `import '…'` and `import('…')` (type queries included, since a type is a dependency
 * too), with the names each one takes, and follows a name through re-exports (`export * from`,
 * `export { a as b } from`) to the file that defines it — so that an import through a barrel
 * counts as an import of the file the name comes from.
 *
 * It reads source text, not a compiler's AST (TypeScript 7 has no stable JavaScript API): comments
 * are blanked first, then import statements are matched. layers.test.ts checks this reading
 * against esbuild's, which sees every import that survives compilation.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';

export interface ImportRef {
  /** The specifier as written: './x.js', 'node:fs', 'ava'. */
  readonly specifier: string;
  /** The repository file it names (relative path, .ts for .js), or undefined for a package. */
  readonly target: string | undefined;
  /** The names taken ('default' for a default import); undefined for `* as`, `export *` and side effects. */
  readonly names: readonly string[] | undefined;
  readonly line: number;
  /** An `import('…')` expression, which loads the module only when it runs. */
  readonly dynamic: boolean;
}

/** Every .ts file below `dirs` (relative paths, '/'-separated), skipping node_modules. */
export function typeScriptFiles(dirs: readonly string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules') continue;
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.ts')) out.push(path.split('\\').join('/'));
    }
  };
  for (const dir of dirs) walk(dir);
  return out.sort();
}

/**
 * The source with comments replaced by spaces (newlines kept, so line numbers stay). Strings and
 * template literals are kept as they are; a `/` after an operator or an opening bracket starts a
 * regular expression, which is skipped whole.
 */
export function blankComments(source: string): string {
  const out = source.split('');
  let i = 0;
  let lastSignificant = '';
  const blank = (from: number, to: number): void => {
    for (let k = from; k < to; k++) if (out[k] !== '\n') out[k] = ' ';
  };
  while (i < source.length) {
    const c = source[i]!;
    const next = source[i + 1];
    if (c === '/' && next === '/') {
      const end = source.indexOf('\n', i);
      const stop = end === -1 ? source.length : end;
      blank(i, stop);
      i = stop;
    } else if (c === '/' && next === '*') {
      const end = source.indexOf('*/', i + 2);
      const stop = end === -1 ? source.length : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c === '"' || c === "'" || c === '`') {
      let k = i + 1;
      while (k < source.length && source[k] !== c) k += source[k] === '\\' ? 2 : 1;
      i = k + 1;
      lastSignificant = c;
    } else if (c === '/' && (lastSignificant === '' || '(,=:[!&|?{};+-*%<>~^'.includes(lastSignificant))) {
      let k = i + 1;
      let inClass = false;
      while (k < source.length && source[k] !== '\n') {
        const r = source[k]!;
        if (r === '\\') k++;
        else if (r === '[') inClass = true;
        else if (r === ']') inClass = false;
        else if (r === '/' && !inClass) break;
        k++;
      }
      i = k + 1;
      lastSignificant = '/';
    } else {
      if (!/\s/.test(c)) lastSignificant = c;
      i++;
    }
  }
  return out.join('');
}

/** What an import clause takes: names, or undefined for a namespace. */
function clauseNames(clause: string): string[] | undefined {
  if (/\*\s+as\s/.test(clause) || clause.trim() === '*') return undefined;
  const names: string[] = [];
  const braces = /\{([^}]*)\}/.exec(clause);
  if (braces !== null) {
    for (const part of braces[1]!.split(',')) {
      const name = part.replace(/^\s*type\s+/, '').trim().split(/\s+as\s+/)[0]!.trim();
      if (name !== '') names.push(name);
    }
  }
  const outside = clause.replace(/\{[^}]*\}/, '').replace(/^\s*type\s+/, '').replace(/,/g, ' ').trim();
  if (outside !== '') names.push('default');
  return names;
}

/** The repository file a relative specifier names, or undefined for a package or a missing file. */
export function resolveSpecifier(from: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const path = normalize(join(dirname(from), specifier)).split('\\').join('/');
  const candidates = path.endsWith('.js') ? [path.slice(0, -3) + '.ts', path] : [path];
  return candidates.find((p) => existsSync(p) && statSync(p).isFile());
}

const STATIC = /(?:^|;)[ \t]*(import|export)\s+((?:type\s+)?[\w$\s{},*]*?)\s*from\s*(['"])([^'"\n]+)\3/gm;
const SIDE_EFFECT = /(?:^|;)[ \t]*import\s*(['"])([^'"\n]+)\1/gm;
const DYNAMIC = /\bimport\s*\(\s*(['"])([^'"\n]+)\1\s*\)/g;

/** The imports of one file. */
export function importsOf(file: string): ImportRef[] {
  const code = codeOf(file);
  const lineAt = (index: number): number => code.slice(0, index).split('\n').length;
  const refs: ImportRef[] = [];
  const add = (specifier: string, names: string[] | undefined, index: number, dynamic = false): void => {
    refs.push({ specifier, target: resolveSpecifier(file, specifier), names, line: lineAt(index), dynamic });
  };
  for (const m of code.matchAll(STATIC)) add(m[4]!, clauseNames(m[2]!), m.index!);
  for (const m of code.matchAll(SIDE_EFFECT)) add(m[2]!, undefined, m.index!);
  for (const m of code.matchAll(DYNAMIC)) add(m[2]!, undefined, m.index!, true);
  return refs;
}

const DECLARATION = (name: string): RegExp =>
  new RegExp(`(?:^|;)\\s*export\\s+(?:declare\\s+)?(?:default\\s+)?(?:abstract\\s+)?(?:async\\s+)?(?:const|let|var|function\\*?|class|interface|type|enum)\\s+${name.replace(/\$/g, '\\$')}\\b`, 'm');

const blanked = new Map<string, string>();

/** A file's source with its comments blanked, read once. */
function codeOf(file: string): string {
  let code = blanked.get(file);
  if (code === undefined) {
    code = blankComments(readFileSync(file, 'utf8'));
    blanked.set(file, code);
  }
  return code;
}

function defines(file: string, name: string): boolean {
  const code = codeOf(file);
  return DECLARATION(name).test(code) || localExport(code, name);
}

/** `export { a, b as name }` without `from`: a local binding exported under `name`. */
function localExport(code: string, name: string): boolean {
  for (const m of code.matchAll(/(?:^|;)\s*export\s+(?:type\s+)?\{([^}]*)\}(?!\s*from)/gm)) {
    for (const part of m[1]!.split(',')) {
      const [original, alias] = part.replace(/^\s*type\s+/, '').trim().split(/\s+as\s+/).map((s) => s.trim());
      if ((alias ?? original) === name) return true;
    }
  }
  return false;
}

/**
 * The file that defines `name` as `file` exports it: `file` itself when it declares it (or
 * cannot be followed), else the file a re-export leads to.
 */
export function definingFile(file: string, name: string, seen = new Set<string>()): string {
  if (seen.has(file)) return file;
  seen.add(file);
  const code = codeOf(file);
  if (DECLARATION(name).test(code) || localExport(code, name)) return file;
  for (const m of code.matchAll(STATIC)) {
    if (m[1] !== 'export') continue;
    const target = resolveSpecifier(file, m[4]!);
    if (target === undefined || !target.endsWith('.ts')) continue;
    const braces = /\{([^}]*)\}/.exec(m[2]!);
    if (braces === null) {
      // export * from: follow it if the name is there.
      const found = definingFile(target, name, seen);
      if (found !== target || defines(target, name)) return found;
      continue;
    }
    for (const part of braces[1]!.split(',')) {
      const [original, alias] = part.replace(/^\s*type\s+/, '').trim().split(/\s+as\s+/).map((s) => s.trim());
      if ((alias ?? original) === name && original !== undefined) return definingFile(target, original, seen);
    }
  }
  return file;
}

/** `path` relative to the repository root, '/'-separated. */
export function repoPath(path: string): string {
  return relative(process.cwd(), path).split('\\').join('/');
}
