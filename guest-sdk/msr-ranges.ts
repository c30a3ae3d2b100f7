/**
 * MSR index sets as callers write them (single indices, `[first, last]` pairs,
 * `{ first, last }` objects), made canonical, and per-MSR classes summarised back as ranges.
 */
import { InvalidArgumentError } from './errors.js';
import { u32Argument } from './arguments.js';
import { hex } from '../protocol/notation.js';

/** An MSR index, an inclusive `[first, last]` pair, or an inclusive `{ first, last }` range. */
export type MsrRangeInput = number | readonly [number, number] | { readonly first: number; readonly last: number };

/** An inclusive range of MSR indices. */
export interface MsrSpan {
  first: number;
  last: number;
}

function span(op: string, where: string, r: unknown): MsrSpan {
  if (typeof r === 'number') {
    const index = u32Argument(op, where, r);
    return { first: index, last: index };
  }
  let first: unknown;
  let last: unknown;
  let at: [string, string];
  if (Array.isArray(r) && r.length === 2) {
    [first, last] = r;
    at = [`${where}[0]`, `${where}[1]`];
  } else if (r !== null && typeof r === 'object' && !Array.isArray(r) && 'first' in r && 'last' in r) {
    ({ first, last } = r as { first: unknown; last: unknown });
    at = [`${where}.first`, `${where}.last`];
  } else {
    throw new InvalidArgumentError(op, where, 'must be an MSR index, a [first, last] pair or a { first, last } range');
  }
  const s = { first: u32Argument(op, at[0], first), last: u32Argument(op, at[1], last) };
  if (s.first > s.last) throw new InvalidArgumentError(op, where, `is empty: first ${hex(s.first)} is above last ${hex(s.last)}`);
  return s;
}

/**
 * The indices the ranges cover, as sorted, disjoint, non-adjacent spans (overlaps and repeats
 * count once). More than `max` MSRs in all is refused before anything is built.
 */
export function normaliseMsrRanges(op: string, ranges: unknown, max: number): MsrSpan[] {
  if (!Array.isArray(ranges)) throw new InvalidArgumentError(op, 'ranges', 'must be an array of MSR indices or ranges');
  const spans = ranges.map((r, i) => span(op, `ranges[${i}]`, r)).sort((a, b) => a.first - b.first);
  const merged: MsrSpan[] = [];
  let total = 0;
  for (const s of spans) {
    const previous = merged[merged.length - 1];
    if (previous && s.first <= previous.last + 1) {
      if (s.last > previous.last) {
        total += s.last - previous.last;
        previous.last = s.last;
      }
    } else {
      merged.push({ ...s });
      total += s.last - s.first + 1;
    }
  }
  if (total > max) throw new InvalidArgumentError(op, 'ranges', `cover ${total} MSRs; at most ${max} are probed per call`);
  return merged;
}

/** Consecutive MSRs of one class. */
export interface ClassRange<C extends string> extends MsrSpan {
  count: number;
  class: C;
}

/**
 * Runs of consecutive indices (each one above the last) that share a class. `entries` is
 * sorted by index, as probes come back.
 */
export function summariseClasses<C extends string>(entries: readonly { index: number; class: C }[]): ClassRange<C>[] {
  const out: ClassRange<C>[] = [];
  for (const e of entries) {
    const run = out[out.length - 1];
    if (run && run.class === e.class && run.last + 1 === e.index) {
      run.last = e.index;
      run.count++;
    } else {
      out.push({ first: e.index, last: e.index, count: 1, class: e.class });
    }
  }
  return out;
}
