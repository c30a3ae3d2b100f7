/**
 * The project's own documentation is what the repository cites (issue 11 #8): no file refers to
 * research notes outside the repository, every `docs/NAME.md §N` reference names a page and a
 * section that exist, and docs/ and the conformance suite ship with the package.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';

/** Every text file git tracks or would track (the working tree, so a new file counts too). */
const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8' })
  .split('\n')
  .filter((f) => f !== '' && existsSync(f) && /\.(ts|mjs|js|json|md|c|h|S|sh|txt)$/.test(f));

test('nothing cites the research notes outside the repository', (t) => {
  // Built from parts, so that this file does not cite them itself.
  const outside = new RegExp(['\\bspec/[a-z0-9-]+\\.md', '\\.\\./shared', 'ARCHITECTURE' + '\\.md', '\\bspec §'].join('|'));
  const hits = files.flatMap((f) =>
    readFileSync(f, 'utf8').split('\n').flatMap((line, i) => (outside.test(line) ? [`${f}:${i + 1}: ${line.trim()}`] : [])),
  );
  t.true(files.length > 300);
  t.deepEqual(hits, []);
});

/** `## 7. Title` and `### 2.3 Title` headings, and numbered list items inside each `##` section. */
function sections(page: string): Set<string> {
  const out = new Set<string>();
  let top: string | undefined;
  for (const line of readFileSync(page, 'utf8').split('\n')) {
    const h2 = /^## (\d+)\./.exec(line);
    if (h2 !== null) out.add((top = h2[1]!));
    const h3 = /^### (\d+\.\d+)/.exec(line);
    if (h3 !== null) out.add(h3[1]!);
    const item = /^(\d+)\. /.exec(line);
    if (item !== null && top !== undefined) out.add(`${top}.${item[1]}`);
  }
  return out;
}

test('every docs/NAME.md §N reference names a page and a section that exist', (t) => {
  const pages = new Map<string, Set<string>>();
  const broken: string[] = [];
  let checked = 0;
  for (const f of files) {
    const text = readFileSync(f, 'utf8');
    for (const m of text.matchAll(/docs\/([a-z0-9-]+\.md)((?:,? ?§\d+(?:\.\d+)?(?:[–-]\d+(?:\.\d+)?)?)*)/g)) {
      const page = `docs/${m[1]}`;
      if (!existsSync(page)) {
        broken.push(`${f}: ${page} does not exist`);
        continue;
      }
      if (!pages.has(page)) pages.set(page, sections(page));
      for (const ref of m[2]!.matchAll(/§(\d+(?:\.\d+)?)(?:[–-](\d+(?:\.\d+)?))?/g)) {
        for (const section of [ref[1]!, ref[2]].filter((s): s is string => s !== undefined)) {
          checked++;
          if (!pages.get(page)!.has(section)) broken.push(`${f}: ${page} has no §${section}`);
        }
      }
    }
  }
  t.true(checked > 100, `${checked} section references checked`);
  t.deepEqual(broken, []);
});

test('docs/ and the conformance suite ship with the package', (t) => {
  const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { files: string[] };
  for (const path of ['docs', 'test/conformance', 'protocol/PROTOCOL.md']) t.true(pkg.files.includes(path), path);
});
