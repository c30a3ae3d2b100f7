/** README.md stays in step with what it documents: the policy fields and the commands. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { POLICY_SCHEMA } from '../../host/vmm/index.js';
import { PINBOX } from '../../host/cli/commands.js';

const readme = readFileSync('README.md', 'utf8');

function section(title: string): string {
  const start = readme.indexOf(`## ${title}\n`);
  if (start < 0) throw new Error(`README.md has no section "${title}"`);
  const end = readme.indexOf('\n## ', start + 4);
  return readme.slice(start, end < 0 ? undefined : end);
}

test('"Policy files" lists every field of the policy schema', (t) => {
  const table = section('Policy files');
  const schema = POLICY_SCHEMA as { properties: Record<string, { properties?: Record<string, unknown> }> };
  for (const [name, spec] of Object.entries(schema.properties)) {
    if (name === '$schema') continue;
    if (name === 'heki') {
      for (const sub of Object.keys(spec.properties!)) t.true(table.includes(`\`heki.${sub}\``), `heki.${sub}`);
    } else {
      t.true(table.includes(`\`${name}\``), name);
    }
  }
});

test('"The pinbox command" covers every command but conform (the runner documents its own), and "Limits" every serve limit', (t) => {
  const commands = section('The pinbox command');
  for (const c of PINBOX.commands) if (c.name !== 'conform') t.true(commands.includes(`pinbox ${c.name}`), c.name);
  const limits = section('Limits');
  const serve = PINBOX.commands.find((c) => c.name === 'serve')!;
  const bounds = serve.options.filter((o) => o.value?.kind === 'count').map((o) => `--${o.name}`);
  t.true(bounds.length >= 15);
  for (const o of bounds) t.true(limits.includes(`\`${o} `), o);
  t.false(/BENCH_[A-Z0-9_]+/.test(section('Benchmarks')), 'the benchmark figures are filled in');
});
