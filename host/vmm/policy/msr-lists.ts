/**
 * The friendly MSR lists of a policy (`msrFilter.allow` / `msrFilter.deny`) compiled to KVM
 * filter ranges.
 *
 * What a list means: for an access of type T (read or write) to MSR m,
 *   - m in 0x800..0x8ff (x2APIC) is always allowed: KVM never filters those (and an entry that
 *     names them is an error, since it could not have the effect written);
 *   - else, if an allow entry covers m for T, allowed; if a deny entry does, denied (an MSR may
 *     not be both for the same T: that is an error);
 *   - else the default.
 * The compiled ranges give exactly this under kvm_msr_allowed() (docs/msr-filter.md §2.1: the
 * first range whose flags include T and that contains m decides, by its bit; none → default).
 *
 * How: per access type, the MSRs whose answer differs from the default are the exceptions. They
 * are covered by windows of at most 0x3000 MSRs (KVM_MSR_FILTER_MAX_BITMAP_SIZE), chosen
 * greedily from the lowest uncovered exception, which needs the fewest windows. A window never
 * spans 0x800..0x8ff (so the compiled filter does not depend on how KVM treats a range across
 * x2APIC MSRs) and never reaches 0xffffffff (base + nmsrs is computed in 32 bits, so no range
 * can cover MSR 0xffffffff). Read and write windows are shared as one READ|WRITE range where
 * both types have the same exceptions in them; the cheaper of sharing and not sharing is taken.
 * Ranges never overlap for one type, so their order does not matter.
 */
import {
  KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_DEFAULT_DENY, KVM_MSR_FILTER_MAX_BITMAP_SIZE,
  KVM_MSR_FILTER_MAX_RANGES, KVM_MSR_FILTER_READ, KVM_MSR_FILTER_WRITE, X2APIC_MSR_FIRST,
  X2APIC_MSR_LAST,
} from '../../../protocol/abi.js';
import type { MsrFilter, MsrFilterRange } from './compiled.js';
import type { MsrListItemText } from './document.js';
import { pointer, type IssueList } from './errors.js';
import { toU32 } from './numbers.js';
import { hex } from '../../../protocol/notation.js';

/** MSRs one range can cover: 0x600 bitmap bytes. */
export const MAX_RANGE_MSRS = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8;
/** The highest MSR a range can reach: base + nmsrs must stay below 2^32. */
const HIGHEST_COVERABLE = 0xfffffffe;

/** An inclusive run of MSRs. */
export interface MsrInterval {
  first: number;
  last: number;
}

export interface MsrListEntry extends MsrInterval {
  read: boolean;
  write: boolean;
  /** JSON Pointer of the entry, for messages. */
  path: string;
}

function describeInterval(i: MsrInterval): string {
  return i.first === i.last ? hex(i.first) : `${hex(i.first)}-${hex(i.last)}`;
}

/** One list item (already schema-checked) as an entry, or undefined after reporting why not. */
export function parseListItem(item: MsrListItemText, path: string, issues: IssueList): MsrListEntry | undefined {
  let text: number | string;
  let access = 'rw';
  if (typeof item === 'object') {
    if ((item.msr === undefined) === (item.range === undefined)) {
      issues.add(path, item.msr === undefined ? 'needs "msr" or "range"' : 'gives both "msr" and "range"; give one');
      return undefined;
    }
    text = item.msr ?? item.range!;
    access = item.access ?? 'rw';
  } else {
    text = item;
  }
  let first: number;
  let last: number;
  if (typeof text === 'string' && text.includes('-')) {
    const [a, b] = text.split('-') as [string, string];
    first = toU32(a);
    last = toU32(b);
  } else {
    first = last = toU32(text);
  }
  const entry = { first, last, read: access !== 'write', write: access !== 'read', path };
  if (first > last) {
    issues.add(path, `range ${hex(first)}-${hex(last)} runs backwards; write the lower MSR first`);
    return undefined;
  }
  if (first <= X2APIC_MSR_LAST && last >= X2APIC_MSR_FIRST) {
    issues.add(
      path,
      `${describeInterval(entry)} includes x2APIC MSRs ${hex(X2APIC_MSR_FIRST)}-${hex(X2APIC_MSR_LAST)}, ` +
        'which KVM never filters (it silently ignores filters for them: kvm_msr_allowed(), api.rst 4.97)',
    );
    return undefined;
  }
  return entry;
}

function intersects(a: MsrInterval, b: MsrInterval): boolean {
  return a.first <= b.last && b.first <= a.last;
}

/** Sorted, with overlapping and adjacent intervals merged. */
export function mergeIntervals(intervals: readonly MsrInterval[]): MsrInterval[] {
  const sorted = [...intervals].sort((a, b) => a.first - b.first);
  const out: MsrInterval[] = [];
  for (const i of sorted) {
    const top = out[out.length - 1];
    if (top !== undefined && i.first <= top.last + 1) top.last = Math.max(top.last, i.last);
    else out.push({ first: i.first, last: i.last });
  }
  return out;
}

/** The last MSR a window starting at `start` may reach. */
function windowLimit(start: number): number {
  const side = start < X2APIC_MSR_FIRST ? X2APIC_MSR_FIRST - 1 : HIGHEST_COVERABLE;
  return Math.min(start + MAX_RANGE_MSRS - 1, side);
}

/**
 * The fewest windows (each at most MAX_RANGE_MSRS long, none across x2APIC) that cover sorted,
 * disjoint intervals: greedy from the lowest uncovered MSR, each window trimmed to the last
 * MSR it actually needs.
 */
export function coverIntervals(intervals: readonly MsrInterval[]): MsrInterval[] {
  const windows: MsrInterval[] = [];
  let current: MsrInterval | undefined;
  for (const interval of intervals) {
    let next = interval.first;
    while (next <= interval.last) {
      if (current === undefined || next > windowLimit(current.first)) {
        current = { first: next, last: next };
        windows.push(current);
      }
      current.last = Math.min(interval.last, windowLimit(current.first));
      next = current.last + 1;
    }
  }
  return windows;
}

function clip(intervals: readonly MsrInterval[], window: MsrInterval): MsrInterval[] {
  const out: MsrInterval[] = [];
  for (const i of intervals) {
    if (intersects(i, window)) out.push({ first: Math.max(i.first, window.first), last: Math.min(i.last, window.last) });
  }
  return out;
}

function sameIntervals(a: readonly MsrInterval[], b: readonly MsrInterval[]): boolean {
  return a.length === b.length && a.every((x, k) => x.first === b[k]!.first && x.last === b[k]!.last);
}

/** A range over `window` whose bits give the default except on `exceptions`. */
function rangeOver(window: MsrInterval, flags: number, exceptions: readonly MsrInterval[], defaultAllow: boolean): MsrFilterRange {
  const nmsrs = window.last - window.first + 1;
  const bitmap = new Uint8Array(Math.ceil(nmsrs / 64) * 8);
  const setBit = (i: number, on: boolean): void => {
    if (on) bitmap[i >> 3]! |= 1 << (i & 7);
    else bitmap[i >> 3]! &= ~(1 << (i & 7));
  };
  for (let i = 0; i < nmsrs; i++) setBit(i, defaultAllow);
  for (const e of clip(exceptions, window)) {
    for (let m = e.first; m <= e.last; m++) setBit(m - window.first, !defaultAllow);
  }
  return { flags, base: window.first, nmsrs, bitmap };
}

/** Ranges with READ and WRITE windows chosen apart. */
function separateRanges(reads: MsrInterval[], writes: MsrInterval[], defaultAllow: boolean): MsrFilterRange[] {
  return [
    ...coverIntervals(reads).map((w) => rangeOver(w, KVM_MSR_FILTER_READ, reads, defaultAllow)),
    ...coverIntervals(writes).map((w) => rangeOver(w, KVM_MSR_FILTER_WRITE, writes, defaultAllow)),
  ];
}

/** Ranges over windows of the union, one READ|WRITE range where both types agree inside it. */
function sharedRanges(reads: MsrInterval[], writes: MsrInterval[], defaultAllow: boolean): MsrFilterRange[] {
  const out: MsrFilterRange[] = [];
  for (const window of coverIntervals(mergeIntervals([...reads, ...writes]))) {
    const r = clip(reads, window);
    const w = clip(writes, window);
    if (sameIntervals(r, w)) {
      out.push(rangeOver(window, KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, r, defaultAllow));
    } else {
      out.push(...separateRanges(r, w, defaultAllow));
    }
  }
  return out;
}

/**
 * The filter for a default and the parsed allow/deny entries, or undefined after reporting
 * what makes the lists inexpressible or contradictory.
 */
export function compileMsrLists(
  defaultAllow: boolean,
  allow: readonly MsrListEntry[],
  deny: readonly MsrListEntry[],
  filterPath: string,
  issues: IssueList,
): MsrFilter | undefined {
  const before = issues.issues.length;
  for (const d of deny) {
    for (const a of allow) {
      const types = [d.read && a.read ? 'reads' : '', d.write && a.write ? 'writes' : ''].filter(Boolean);
      if (types.length > 0 && intersects(a, d)) {
        const shared = { first: Math.max(a.first, d.first), last: Math.min(a.last, d.last) };
        issues.add(d.path, `denies ${describeInterval(shared)} for ${types.join(' and ')}, which ${a.path} allows`);
      }
    }
  }
  // The exceptions: entries of the list that says the opposite of the default.
  const exceptions = defaultAllow ? deny : allow;
  for (const e of exceptions) {
    if (e.last === 0xffffffff) {
      issues.add(
        e.path,
        `MSR 0xffffffff cannot be ${defaultAllow ? 'denied' : 'allowed'} against the default: ` +
          'KVM computes base + nmsrs in 32 bits, so no range can cover it',
      );
    }
  }
  if (issues.issues.length > before) return undefined;

  const reads = mergeIntervals(exceptions.filter((e) => e.read));
  const writes = mergeIntervals(exceptions.filter((e) => e.write));
  const shared = sharedRanges(reads, writes, defaultAllow);
  const separate = separateRanges(reads, writes, defaultAllow);
  const ranges = shared.length <= separate.length ? shared : separate;
  if (ranges.length > KVM_MSR_FILTER_MAX_RANGES) {
    issues.add(
      filterPath,
      `the allow/deny lists need ${ranges.length} KVM ranges, more than the ${KVM_MSR_FILTER_MAX_RANGES} KVM takes ` +
        `(KVM_MSR_FILTER_MAX_RANGES); one range covers at most ${hex(MAX_RANGE_MSRS)} consecutive MSRs and none ` +
        `can span the x2APIC MSRs, so group the ${defaultAllow ? 'denied' : 'allowed'} MSRs more closely`,
    );
    return undefined;
  }
  return { flags: defaultAllow ? KVM_MSR_FILTER_DEFAULT_ALLOW : KVM_MSR_FILTER_DEFAULT_DENY, ranges };
}

/** Entries of one list, parsed; the bad ones are reported and left out. */
export function parseList(items: readonly MsrListItemText[] | undefined, listPath: string, issues: IssueList): MsrListEntry[] {
  const out: MsrListEntry[] = [];
  (items ?? []).forEach((item, i) => {
    const entry = parseListItem(item, listPath + pointer(i), issues);
    if (entry !== undefined) out.push(entry);
  });
  return out;
}
