/**
 * `pinbox audit POLICY` (docs/transitions.md): the report per mechanism, the paths by which a
 * protected item changes unseen, JSON, and the exit codes (1 when anything changes unseen, as
 * the host's KVM_SET_SREGS always makes it; 2 for a bad policy).
 */
import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinbox } from './cli-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-audit-'));

test('pinbox audit: a table per mechanism the policy brings into play, and what changes unseen; exit 1', async (t) => {
  const policy = join(dir, 'filter.json');
  writeFileSync(policy, JSON.stringify({ crFilter: { cr4: ['smep'] } }));
  const r = await pinbox(['audit', policy]);
  t.is(r.code, 1);
  t.regex(r.out, /^Heki \(v2\): protects CR0\.WP, CR4\.UMIP, CR4\.FSGSBASE, CR4\.SMEP, CR4\.SMAP$/m);
  t.regex(r.out, /^CR filter: protects CR4\.SMEP$/m);
  t.regex(r.out, /^ {2}guest MOV to CR +asks *$/m);
  t.regex(r.out, /^ {2}- host KVM_SET_SREGS: CR4\.SMEP$/m);
  t.notRegex(r.out, /Andersen/, 'no andersen option: no Andersen section');
});

test('pinbox audit --json: one object, each mechanism\'s items and rows of outcomes', async (t) => {
  const policy = join(dir, 'andersen.json');
  writeFileSync(policy, JSON.stringify({ andersen: true }));
  const r = await pinbox(['audit', policy, '--json']);
  const report = JSON.parse(r.out) as { mechanisms: { mechanism: string; rows: { path: string; outcomes: Record<string, string> }[] }[] };
  t.deepEqual(report.mechanisms.map((m) => m.mechanism), ['heki', 'andersen']);
  const init = report.mechanisms[1]!.rows.find((row) => row.path === 'init')!;
  t.is(init.outcomes['CR0.WP'], 'dropped', 'kvm_vcpu_reset() clears Andersen\'s pins at INIT');
});

test('pinbox audit of a bad policy: its problems on stderr, exit 2; no operand: usage, exit 2', async (t) => {
  const policy = join(dir, 'bad.json');
  writeFileSync(policy, JSON.stringify({ crFilter: {} }));
  const r = await pinbox(['audit', policy]);
  t.is(r.code, 2);
  t.regex(r.err, /\/crFilter: filters nothing/);
  t.is((await pinbox(['audit'])).code, 2);
});
