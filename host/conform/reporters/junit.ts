/**
 * JUnit XML, as CI systems read it (the de-facto schema of Ant's JUnit task, as Jenkins and
 * GitLab take it): one <testsuite>, a <testcase> per scenario (classname: its file), a
 * <failure> for mismatches, an <error> when the file is malformed or the target failed, a
 * <skipped message="unsupported on this host: …"> for a scenario the host cannot run. A run on
 * real KVM names the host in the suite's <properties>.
 * Written whole at the end.
 */
import type { BackendHost } from '../../kvm/api/backend.js';
import { outcomeOf, summarise, type ScenarioResult } from '../results.js';
import { oneLine, realHost, type ReportOutput, type Reporter } from './reporter.js';
import { escapeXml, escapeXmlAttribute } from './xml-text.js';

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function isError(r: ScenarioResult): boolean {
  return r.failures.some((f) => f.kind !== 'mismatch');
}

function testcase(r: ScenarioResult): string {
  const open = `    <testcase name="${escapeXmlAttribute(r.name)}" classname="${escapeXmlAttribute(r.file)}" file="${escapeXmlAttribute(r.file)}" time="${seconds(r.durationMs)}"`;
  if (r.passed) return `${open}/>`;
  if (r.unsupported !== undefined) {
    return `${open}>\n      <skipped message="${escapeXmlAttribute(`unsupported on this host: ${oneLine(r.unsupported)}`)}"/>\n    </testcase>`;
  }
  const element = isError(r) ? 'error' : 'failure';
  const type = isError(r) ? r.failures.find((f) => f.kind !== 'mismatch')!.kind : 'mismatch';
  const details = r.failures
    .map((f) => {
      const values = f.expected !== undefined || f.actual !== undefined ? `\n  expected: ${JSON.stringify(f.expected ?? null)}\n  actual: ${JSON.stringify(f.actual ?? null)}` : '';
      return `${f.path === '' ? '(file)' : f.path}: ${oneLine(f.message)}${values}`;
    })
    .join('\n');
  const message = oneLine(r.failures[0]?.message ?? 'failed');
  return `${open}>\n      <${element} message="${escapeXmlAttribute(message)}" type="${type}">${escapeXml(details)}</${element}>\n    </testcase>`;
}

export function junitXml(results: readonly ScenarioResult[], suiteName = 'pinbox conform', host?: BackendHost): string {
  const { total, unsupported } = summarise(results);
  const failed = results.filter((r) => outcomeOf(r) === 'failed');
  const errors = failed.filter(isError).length;
  const failures = failed.length - errors;
  const time = seconds(results.reduce((sum, r) => sum + r.durationMs, 0));
  const counts = `tests="${total}" failures="${failures}" errors="${errors}" time="${time}"`;
  const name = escapeXmlAttribute(suiteName);
  const on = realHost(host);
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${name}" ${counts}>`,
    `  <testsuite name="${name}" ${counts} skipped="${unsupported}">`,
    ...(on === undefined ? [] : ['    <properties>', `      <property name="host" value="${escapeXmlAttribute(on)}"/>`, '    </properties>']),
    ...results.map(testcase),
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

export function junitReporter(out: ReportOutput): Reporter {
  let host: BackendHost | undefined;
  return {
    start: (_total, h) => {
      host = h;
    },
    finish: (results) => out.write(junitXml(results, undefined, host)),
  };
}
