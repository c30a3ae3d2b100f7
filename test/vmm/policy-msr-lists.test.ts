/**
 * The friendly allow/deny lists must mean, once compiled to KVM ranges, exactly what they say.
 * Two independent evaluators, written here from the specs and not from the compiler:
 *   - kvmMsrAllowed: docs/msr-filter.md §2.1, the kernel's kvm_msr_allowed();
 *   - listAllows: the list semantics the policy schema documents.
 * For random lists, every sampled MSR and access type must get the same answer from both.
 */
import test from 'ava';
import { parsePolicy, PolicyError, type MsrFilter } from '../../host/vmm/policy/index.js';

const READ = 1; // KVM_MSR_FILTER_READ
const WRITE = 2; // KVM_MSR_FILTER_WRITE

/** docs/msr-filter.md §2.1, step by step. */
function kvmMsrAllowed(filter: MsrFilter | undefined, index: number, type: number): boolean {
  if (index >= 0x800 && index <= 0x8ff) return true; // x2APIC MSRs are never filtered
  if (filter === undefined) return true;
  let allowed = (filter.flags & 1) === 0; // default_allow = !(flags & KVM_MSR_FILTER_DEFAULT_DENY)
  for (const r of filter.ranges) {
    if (r.nmsrs === 0) continue; // empty slots take no position
    const start = r.base;
    const end = (r.base + r.nmsrs) >>> 0; // u32 wraparound
    if (index >= start && index < end && (r.flags & type) !== 0) {
      const bit = index - start;
      allowed = ((r.bitmap[bit >> 3] ?? 0) >> (bit & 7)) & 1 ? true : false;
      break;
    }
  }
  return allowed;
}

/** KVM_X86_SET_MSR_FILTER would accept it (docs/msr-filter.md §2.2, §2.3). */
function kvmAccepts(filter: MsrFilter): string | undefined {
  if ((filter.flags & ~1) !== 0) return 'filter flags';
  if (filter.ranges.length > 16) return 'more than 16 ranges';
  const nonEmpty = filter.ranges.filter((r) => r.nmsrs !== 0);
  if ((filter.flags & 1) !== 0 && nonEmpty.length === 0) return 'DEFAULT_DENY with no range';
  for (const r of nonEmpty) {
    if ((r.flags & ~3) !== 0 || r.flags === 0) return `range flags ${r.flags}`;
    if (Math.ceil(r.nmsrs / 64) * 8 > 0x600) return `nmsrs ${r.nmsrs}`;
    if (r.bitmap.length < Math.ceil(r.nmsrs / 64) * 8) return 'short bitmap';
  }
  return undefined;
}

interface Entry {
  first: number;
  last: number;
  read: boolean;
  write: boolean;
}

function covers(e: Entry, index: number, type: number): boolean {
  return index >= e.first && index <= e.last && (type === READ ? e.read : e.write);
}

/** The documented meaning of the lists. */
function listAllows(defaultAllow: boolean, allow: Entry[], deny: Entry[], index: number, type: number): boolean {
  if (index >= 0x800 && index <= 0x8ff) return true;
  if (allow.some((e) => covers(e, index, type))) return true;
  if (deny.some((e) => covers(e, index, type))) return false;
  return defaultAllow;
}

/** mulberry32: small, seedable, good enough to spread test cases. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

const CENTRES = [0, 0x10, 0x7c0, 0x940, 0x1000, 0x3ff0, 0xc0000080, 0x4b564d00, 0x40000000, 0xffffef00, 0xffffffe0];

function randomEntry(rnd: () => number): Entry {
  const int = (n: number) => Math.floor(rnd() * n);
  const centre = rnd() < 0.85 ? CENTRES[int(CENTRES.length)]! : int(2 ** 32);
  const length = rnd() < 0.1 ? 1 + int(0x5000) : rnd() < 0.5 ? 1 : 1 + int(0x30);
  let first = Math.min(Math.max(0, centre + int(0x80) - 0x40), 0xffffffff);
  let last = Math.min(first + length - 1, 0xffffffff);
  if (first <= 0x8ff && last >= 0x800) {
    // keep clear of the x2APIC MSRs, which lists may not name (tested separately)
    if (first < 0x800) last = 0x7ff;
    else first = 0x900;
    last = Math.max(first, last);
  }
  const access = int(3);
  return { first, last, read: access !== 1, write: access !== 0 };
}

const hex = (n: number) => '0x' + n.toString(16);

/** Writes an entry in one of the forms a policy accepts. */
function asItem(e: Entry, rnd: () => number): unknown {
  const access = e.read && e.write ? 'rw' : e.read ? 'read' : 'write';
  const text = e.first === e.last ? hex(e.first) : `${hex(e.first)}-${hex(e.last)}`;
  if (access === 'rw' && rnd() < 0.5) return e.first === e.last && rnd() < 0.5 ? e.first : text;
  if (e.first === e.last) return { msr: rnd() < 0.5 ? e.first : hex(e.first), ...(access !== 'rw' || rnd() < 0.5 ? { access } : {}) };
  return { range: text, access };
}

function sampleIndices(entries: Entry[], filter: MsrFilter, rnd: () => number): number[] {
  const out = new Set<number>([0, 1, 0x7fe, 0x7ff, 0x800, 0x8ff, 0x900, 0x901, 0xfffffffe, 0xffffffff]);
  const near = (n: number) => {
    for (let d = -3; d <= 3; d++) if (n + d >= 0 && n + d <= 0xffffffff) out.add(n + d);
  };
  for (const e of entries) {
    near(e.first);
    near(e.last);
    if (e.last - e.first < 64) for (let m = e.first; m <= e.last; m++) out.add(m);
    else for (let k = 0; k < 16; k++) out.add(e.first + Math.floor(rnd() * (e.last - e.first + 1)));
  }
  for (const r of filter.ranges) {
    near(r.base);
    near(r.base + r.nmsrs - 1);
  }
  for (let k = 0; k < 32; k++) out.add(Math.floor(rnd() * 2 ** 32));
  return [...out];
}

function overlapExists(allow: Entry[], deny: Entry[]): boolean {
  return deny.some((d) => allow.some((a) => a.first <= d.last && d.first <= a.last && ((a.read && d.read) || (a.write && d.write))));
}

test('compiled allow/deny lists evaluate like the lists under kvm_msr_allowed()', (t) => {
  const seed = 0x5eed1234;
  const rnd = prng(seed);
  let compiled = 0;
  let contradictions = 0;
  let checks = 0;
  for (let round = 0; round < 400; round++) {
    const defaultAllow = rnd() < 0.5;
    const allow = Array.from({ length: Math.floor(rnd() * 5) }, () => randomEntry(rnd));
    const deny = Array.from({ length: Math.floor(rnd() * 5) }, () => randomEntry(rnd));
    const msrFilter = {
      default: defaultAllow ? 'allow' : 'deny',
      ...(allow.length > 0 || rnd() < 0.5 ? { allow: allow.map((e) => asItem(e, rnd)) } : {}),
      ...(deny.length > 0 || rnd() < 0.5 ? { deny: deny.map((e) => asItem(e, rnd)) } : {}),
    };
    const context = `seed ${hex(seed)} round ${round}: ${JSON.stringify(msrFilter)}`;
    let filter: MsrFilter;
    try {
      filter = parsePolicy({ msrFilter }).msrFilter!;
    } catch (e) {
      if (!(e instanceof PolicyError)) throw e;
      const exceptions = defaultAllow ? deny : allow;
      const justified = overlapExists(allow, deny) || exceptions.some((x) => x.last === 0xffffffff);
      if (!justified) t.fail(`${context}\nrejected without an overlap or an MSR 0xffffffff exception: ${e.message}`);
      contradictions++;
      continue;
    }
    compiled++;
    const invalid = kvmAccepts(filter);
    if (invalid !== undefined) t.fail(`${context}\nKVM would refuse the compiled filter: ${invalid}`);
    for (const r of filter.ranges) {
      if (r.base + r.nmsrs > 0xffffffff) t.fail(`${context}\nrange ${hex(r.base)}+${hex(r.nmsrs)} wraps`);
    }
    for (const index of sampleIndices([...allow, ...deny], filter, rnd)) {
      for (const type of [READ, WRITE]) {
        checks++;
        const expected = listAllows(defaultAllow, allow, deny, index, type);
        if (kvmMsrAllowed(filter, index, type) !== expected) {
          t.fail(`${context}\nMSR ${hex(index)} ${type === READ ? 'read' : 'write'}: lists say ${expected ? 'allow' : 'deny'}, KVM would not`);
          return;
        }
      }
    }
  }
  t.log(`${compiled} lists compiled, ${contradictions} rightly rejected, ${checks} MSR/access checks`);
  t.true(compiled > 250, 'most random lists are expressible');
  t.true(contradictions > 5, 'the generator also produces contradictions');
});

test('examples: the obvious encodings', (t) => {
  const compile = (msrFilter: object) => parsePolicy({ msrFilter }).msrFilter!;
  // Five MSRs denied for both access types: one READ|WRITE range of 5 bits, all 0.
  t.deepEqual(compile({ default: 'allow', deny: ['0xc0000080-0xc0000084'] }), {
    flags: 0,
    ranges: [{ flags: READ | WRITE, base: 0xc0000080, nmsrs: 5, bitmap: new Uint8Array(8) }],
  });
  // One MSR readable under default deny: a READ range whose bit allows; writes stay denied.
  t.deepEqual(compile({ default: 'deny', allow: [{ msr: '0x10', access: 'read' }] }), {
    flags: 1,
    ranges: [{ flags: READ, base: 0x10, nmsrs: 1, bitmap: Uint8Array.of(1, 0, 0, 0, 0, 0, 0, 0) }],
  });
});

test('long lists split into ranges of at most 0x3000 MSRs, never across the x2APIC MSRs', (t) => {
  const f = parsePolicy({ msrFilter: { default: 'allow', deny: ['0x10000-0x13000', '0x7ff', '0x900'] } }).msrFilter!;
  t.is(kvmAccepts(f), undefined);
  for (const r of f.ranges) {
    t.true(r.nmsrs <= 0x3000);
    t.false(r.base <= 0x8ff && r.base + r.nmsrs - 1 >= 0x800, `range ${hex(r.base)}+${hex(r.nmsrs)} spans x2APIC MSRs`);
  }
  // 0x3001 MSRs need two ranges; 0x7ff and 0x900 lie on either side of 0x800-0x8ff: four in all.
  t.is(f.ranges.length, 4);
  for (const m of [0x10000, 0x12fff, 0x13000, 0x7ff, 0x900]) t.false(kvmMsrAllowed(f, m, READ));
  for (const m of [0xffff, 0x13001, 0x7fe, 0x901, 0x850]) t.true(kvmMsrAllowed(f, m, WRITE));
});
