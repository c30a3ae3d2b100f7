/**
 * A policy's `msrFilter` to struct kvm_msr_filter. The raw `ranges` form is checked against
 * what KVM would accept (kvm_add_msr_filter(), docs/msr-filter.md §2.3) and against mistakes
 * KVM would accept silently (a range that wraps past 0xffffffff matches nothing, §2.1); the
 * friendly lists go through msr-lists.ts. Either way the result is KVM's exact form.
 */
import {
  KVM_MSR_FILTER_DEFAULT_ALLOW, KVM_MSR_FILTER_DEFAULT_DENY, KVM_MSR_FILTER_READ,
  KVM_MSR_FILTER_WRITE,
} from '../../../protocol/abi.js';
import type { MsrFilter, MsrFilterRange } from './compiled.js';
import type { MsrFilterText, RawRangeText } from './document.js';
import { pointer, type IssueList } from './errors.js';
import { compileMsrLists, MAX_RANGE_MSRS, parseList } from './msr-lists.js';
import { parseHexBytes, toU32 } from './numbers.js';
import { hex } from '../../../protocol/notation.js';

/**
 * KVM refuses DEFAULT_DENY with no non-empty range (EINVAL, §2.2), yet "deny everything" is a
 * natural policy. It is compiled to one range that denies MSR 0 for both access types, which
 * the default denies anyway: the meaning is unchanged and KVM takes it (Hyperlight installs the
 * same, docs/msr-filter.md §5).
 */
function denyEverythingRange(): MsrFilterRange {
  return { flags: KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE, base: 0, nmsrs: 1, bitmap: new Uint8Array(8) };
}

function compileRawRange(text: RawRangeText, path: string, issues: IssueList): MsrFilterRange | undefined {
  const base = toU32(text.base);
  const nmsrs = toU32(text.nmsrs);
  const given = parseHexBytes(text.bitmap);
  const copied = Math.ceil(nmsrs / 64) * 8; // BITS_TO_LONGS(nmsrs) * sizeof(long)
  const needed = Math.ceil(nmsrs / 8);
  let ok = true;
  if (base + nmsrs > 0xffffffff) {
    issues.add(
      path + '/nmsrs',
      `${hex(base)} + ${hex(nmsrs)} runs past 0xffffffff: KVM computes the end in 32 bits, so this range would match nothing`,
    );
    ok = false;
  }
  if (nmsrs > MAX_RANGE_MSRS) ok = false; // the schema reported it
  if (given.length < needed || given.length > copied) {
    issues.add(
      path + '/bitmap',
      `has ${given.length} byte${given.length === 1 ? '' : 's'}; ${hex(nmsrs)} MSRs need ` +
        (needed === copied ? `${needed}` : `${needed} to ${copied}`) + ' (KVM copies ceil(nmsrs / 64) * 8 bytes)',
    );
    ok = false;
  }
  if (!ok) return undefined;
  const bitmap = new Uint8Array(copied);
  bitmap.set(given);
  const flags = (text.access.includes('read') ? KVM_MSR_FILTER_READ : 0) | (text.access.includes('write') ? KVM_MSR_FILTER_WRITE : 0);
  return { flags, base, nmsrs, bitmap };
}

export function compileMsrFilter(text: MsrFilterText, path: string, issues: IssueList): MsrFilter | undefined {
  const defaultAllow = text.default === 'allow';
  const usesLists = text.allow !== undefined || text.deny !== undefined;
  if (text.ranges !== undefined && usesLists) {
    issues.add(path, 'gives both "ranges" and "allow"/"deny" lists; use one form (their order of precedence would be unclear)');
    return undefined;
  }
  let filter: MsrFilter | undefined;
  if (usesLists) {
    const allow = parseList(text.allow, path + '/allow', issues);
    const deny = parseList(text.deny, path + '/deny', issues);
    filter = compileMsrLists(defaultAllow, allow, deny, path, issues);
  } else {
    const ranges = (text.ranges ?? []).map((r, i) => compileRawRange(r, path + pointer('ranges', i), issues));
    if (ranges.some((r) => r === undefined)) return undefined;
    filter = {
      flags: defaultAllow ? KVM_MSR_FILTER_DEFAULT_ALLOW : KVM_MSR_FILTER_DEFAULT_DENY,
      ranges: ranges as MsrFilterRange[],
    };
  }
  if (filter !== undefined && !defaultAllow && filter.ranges.length === 0) filter.ranges.push(denyEverythingRange());
  return filter;
}
