/** The tables of docs/transitions.md, as the audit tests compare them with the audit. */
import { readFileSync } from 'node:fs';

/**
 * The first table whose header starts `| header |` after the first line containing `after`:
 * row label → column → cell text.
 */
export function transitionsTable(header: string, after = ''): Map<string, Map<string, string>> {
  const lines = readFileSync('docs/transitions.md', 'utf8').split('\n');
  const from = lines.findIndex((l) => l.includes(after));
  const head = lines.findIndex((l, i) => i >= from && l.startsWith(`| ${header} |`));
  const columns = lines[head]!.split('|').slice(2, -1).map((c) => c.trim());
  const rows = new Map<string, Map<string, string>>();
  for (const line of lines.slice(head + 2)) {
    if (!line.startsWith('|')) break;
    const cells = line.split('|').slice(1, -1).map((c) => c.trim());
    rows.set(cells[0]!, new Map(columns.map((c, i) => [c, cells[i + 1]!])));
  }
  return rows;
}
