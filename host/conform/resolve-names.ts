/**
 * Kernel names or numbers to numbers, for the fields the schema lets take either: a number
 * passes as it is; a name must be in its table (with a "did you mean" when it is close to one).
 */
import type { HekiProfileName } from '../../protocol/abi.js';
import { closestName } from '../vmm/policy/spelling.js';
import {
  capabilityNames, exitReasonNames, FILTER_FLAGS, HEKI_EXIT_REASONS, MEMORY_ATTRIBUTES, MEMORY_EXIT_FLAGS, MSR_EXIT_REASONS,
  NAME_PREFIXES, RANGE_FLAGS,
} from './abi-names.js';
import type { IssueCollector } from './errors.js';
import { toBigInt, toNumber, type IntegerText } from './integers.js';

export interface NameContext {
  readonly profile: HekiProfileName;
  readonly issues: IssueCollector;
}

function isNumberText(text: IntegerText): boolean {
  return typeof text === 'number' || text.startsWith('0x');
}

function resolve(
  text: IntegerText,
  table: Readonly<Record<string, number>>,
  what: string,
  prefix: string | undefined,
  path: string,
  cx: NameContext,
): number | undefined {
  if (isNumberText(text)) return toNumber(text);
  const name = text as string;
  const short = prefix !== undefined && name.startsWith(prefix) ? name.slice(prefix.length) : name;
  if (Object.hasOwn(table, short)) return table[short];
  const guess = closestName(short, Object.keys(table));
  const hint = guess !== undefined ? `; did you mean "${prefix !== undefined && short !== name ? prefix + guess : guess}"?` : '';
  cx.issues.add(path, `unknown ${what} "${name}"${hint}`);
  return undefined;
}

export function resolveCapability(text: IntegerText, path: string, cx: NameContext): number | undefined {
  return resolve(text, capabilityNames(cx.profile), 'capability', undefined, path, cx);
}

export function resolveExitReason(text: IntegerText, path: string, cx: NameContext): number | undefined {
  return resolve(text, exitReasonNames(cx.profile), 'exit reason', undefined, path, cx);
}

export function resolveMsrExitReason(text: IntegerText, path: string, cx: NameContext): number | undefined {
  return resolve(text, MSR_EXIT_REASONS, 'MSR exit reason', NAME_PREFIXES.msrExitReason, path, cx);
}

export function resolveHekiReason(text: IntegerText, path: string, cx: NameContext): number | undefined {
  return resolve(text, HEKI_EXIT_REASONS, 'Heki exit reason', NAME_PREFIXES.hekiReason, path, cx);
}

/** Flags as one value or a list whose members are ORed. Numbers pass as they are: scenarios
 * test that KVM refuses unknown bits. */
function resolveFlags(
  text: IntegerText | readonly IntegerText[],
  table: Readonly<Record<string, number>>,
  what: string,
  path: string,
  cx: NameContext,
): number | undefined {
  const items = Array.isArray(text) ? text : [text as IntegerText];
  let flags = 0;
  let ok = true;
  items.forEach((item, i) => {
    const v = resolve(item, table, what, NAME_PREFIXES.filterFlag, Array.isArray(text) ? `${path}/${i}` : path, cx);
    if (v === undefined) ok = false;
    else flags = (flags | v) >>> 0;
  });
  return ok ? flags : undefined;
}

export function resolveFilterFlags(text: IntegerText | readonly IntegerText[], path: string, cx: NameContext): number | undefined {
  return resolveFlags(text, FILTER_FLAGS, 'filter flag', path, cx);
}

export function resolveRangeFlags(text: IntegerText | readonly IntegerText[], path: string, cx: NameContext): number | undefined {
  return resolveFlags(text, RANGE_FLAGS, 'range flag', path, cx);
}

/**
 * 64-bit flags as one value or a list whose members are ORed: each a number (passed as it is —
 * scenarios test that KVM refuses bits outside its mask) or a name of `table`, with or without
 * one of `prefixes`.
 */
function resolveBits64(
  text: IntegerText | readonly IntegerText[],
  table: Readonly<Record<string, bigint>>,
  what: string,
  prefixes: readonly string[],
  path: string,
  cx: NameContext,
): bigint | undefined {
  const items = Array.isArray(text) ? text : [text as IntegerText];
  let bits = 0n;
  let ok = true;
  items.forEach((item, i) => {
    const at = Array.isArray(text) ? `${path}/${i}` : path;
    if (isNumberText(item)) {
      bits |= toBigInt(item);
      return;
    }
    const name = item as string;
    const prefix = prefixes.find((p) => name.startsWith(p));
    const short = prefix === undefined ? name : name.slice(prefix.length);
    if (Object.hasOwn(table, short)) {
      bits |= table[short]!;
      return;
    }
    const guess = closestName(short, Object.keys(table));
    cx.issues.add(at, `unknown ${what} "${name}"${guess !== undefined ? `; did you mean "${guess}"?` : ''}`);
    ok = false;
  });
  return ok ? bits : undefined;
}

export function resolveMemoryAttributes(text: IntegerText | readonly IntegerText[], path: string, cx: NameContext): bigint | undefined {
  return resolveBits64(text, MEMORY_ATTRIBUTES, 'memory attribute', NAME_PREFIXES.memoryAttribute, path, cx);
}

export function resolveMemoryExitFlags(text: IntegerText | readonly IntegerText[], path: string, cx: NameContext): bigint | undefined {
  return resolveBits64(text, MEMORY_EXIT_FLAGS, 'memory-fault flag', NAME_PREFIXES.memoryExitFlag, path, cx);
}
