/**
 * The kernel names of a scenario that failed its schema — capabilities, exit reasons, MSR and
 * Heki exit reasons, filter flags, errno names — checked anyway, so that one pass reports every
 * problem of the file (errors.ts) instead of the names only once the schema is satisfied. The
 * document is not known to be well formed here: each name is looked at only where it has the
 * shape of one.
 */
import type { HekiProfileName } from '../../protocol/abi.js';
import { Errno } from '../../protocol/abi.js';
import { closestName } from '../vmm/policy/spelling.js';
import { isErrnoName } from './abi-names.js';
import { IssueCollector, type ScenarioIssue } from './errors.js';
import type { IntegerText } from './integers.js';
import {
  resolveCapability, resolveExitReason, resolveFilterFlags, resolveHekiReason, resolveMemoryAttributes, resolveMemoryExitFlags,
  resolveMsrExitReason, resolveRangeFlags, type NameContext,
} from './resolve-names.js';

type Json = Readonly<Record<string, unknown>>;

function object(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function integerText(v: unknown): v is IntegerText {
  return typeof v === 'number' || typeof v === 'string';
}

function flagsText(v: unknown): v is IntegerText | IntegerText[] {
  return integerText(v) || (Array.isArray(v) && v.every(integerText));
}

/** An errno name's problem, if it has one (shared with parse-expect.ts). */
export function errnoProblem(text: string): string | undefined {
  if (isErrnoName(text)) return undefined;
  const guess = closestName(text, Object.keys(Errno));
  return `unknown errno "${text}"${guess !== undefined ? `; did you mean "${guess}"?` : ''}`;
}

function checkHost(host: Json, path: string, cx: NameContext): void {
  for (const op of ['enableCap', 'checkExtension'] as const) {
    const cap = object(host[op])?.cap;
    if (integerText(cap)) resolveCapability(cap, `${path}/${op}/cap`, cx);
  }
  const attributes = object(host.setMemoryAttributes)?.attributes;
  if (flagsText(attributes)) resolveMemoryAttributes(attributes, `${path}/setMemoryAttributes/attributes`, cx);
  const filter = object(host.setMsrFilter);
  if (filter === undefined) return;
  if (flagsText(filter.flags)) resolveFilterFlags(filter.flags, `${path}/setMsrFilter/flags`, cx);
  if (!Array.isArray(filter.ranges)) return;
  filter.ranges.forEach((r, i) => {
    const flags = object(r)?.flags;
    if (flagsText(flags)) resolveRangeFlags(flags, `${path}/setMsrFilter/ranges/${i}/flags`, cx);
  });
}

function checkExpect(expect: Json, path: string, cx: NameContext): void {
  if (typeof expect.errno === 'string') {
    const problem = errnoProblem(expect.errno);
    if (problem !== undefined) cx.issues.add(`${path}/errno`, problem);
  }
  if (!Array.isArray(expect.exits)) return;
  expect.exits.forEach((e, i) => {
    const exit = object(e);
    if (exit === undefined) return;
    const at = `${path}/exits/${i}`;
    if (integerText(exit.reason)) resolveExitReason(exit.reason, `${at}/reason`, cx);
    const msrReason = object(exit.msr)?.reason;
    if (integerText(msrReason)) resolveMsrExitReason(msrReason, `${at}/msr/reason`, cx);
    const hekiReason = object(exit.heki)?.reason;
    if (integerText(hekiReason)) resolveHekiReason(hekiReason, `${at}/heki/reason`, cx);
    const memoryFlags = object(exit.memory)?.flags;
    if (flagsText(memoryFlags)) resolveMemoryExitFlags(memoryFlags, `${at}/memory/flags`, cx);
  });
}

function checkStep(value: unknown, path: string, cx: NameContext): void {
  const step = object(value);
  if (step === undefined) return;
  const host = object(step.host);
  if (host !== undefined) checkHost(host, `${path}/host`, cx);
  const expect = object(step.expect);
  if (expect !== undefined) checkExpect(expect, `${path}/expect`, cx);
  const during = object(step.vmm)?.duringExit;
  if (Array.isArray(during)) during.forEach((s, i) => checkStep(s, `${path}/vmm/duringExit/${i}`, cx));
}

/** Every unknown kernel name in a scenario document, whatever else is wrong with it. */
export function nameIssues(value: unknown): ScenarioIssue[] {
  const doc = object(value);
  const steps = doc?.steps;
  if (!Array.isArray(steps)) return [];
  const profile: HekiProfileName = object(doc!.vm)?.profile === 'v3' ? 'v3' : 'v2';
  const cx: NameContext = { profile, issues: new IssueCollector() };
  steps.forEach((s, i) => checkStep(s, `/steps/${i}`, cx));
  return cx.issues.issues;
}
