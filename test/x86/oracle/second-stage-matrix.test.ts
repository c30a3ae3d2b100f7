/**
 * The paging-permission matrix's second-stage dimension (issue 15, item 7): the same rig and
 * first-stage model as paging-matrix.test.ts, with EPT rights drawn for the page under test and
 * for the region's paging-structure frames, and MBEC on or off; every case is judged against the
 * independent model of second-stage-model.ts — the violation's GPA, GVA, access and
 * qualification, or the first stage's own outcome when the second stage allows the access — plus
 * RIP, the data, and the A/D flags (untouched by a violation).
 *
 * Dimensions: page size × access (read, write, fetch) × CPL × leaf U/S × leaf R/W × leaf XD ×
 * CR4.SMEP × MBEC (3 × 3 × 2^6 = 576 combinations), each drawn 4 times (fixed seed) for the
 * page's rights (all 16 of R/W/X/UX), a table frame's rights (none restricted, or one level's),
 * the leaf's A/D preset, a not-present entry now and then, and a priming read.
 */
import test from 'ava';
import { S2_ALL, S2_EXEC, S2_READ, S2_USER_EXEC, S2_WRITE } from '../../../host/index.js';
import { PF_VECTOR } from '../../../protocol/abi.js';
import { xorshift } from '../harness/prng.js';
import { entriesAfter, entryMatches, type AccessSetting } from './paging-model.js';
import {
  buildEntries, CODE_OFFSET, DATA_OFFSET, describeCase, LAYOUTS, linearOf, PagingRig, PAGE_SIZES, type MatrixCase,
} from './paging-rig.js';
import { ALL_RIGHTS, expectedOutcome, type Outcome, type Rights } from './second-stage-model.js';

const SEED = 0x5e2a9;
const DRAWS = 4;
const BOOL = [false, true] as const;
const ACCESSES = ['read', 'write', 'fetch'] as const;

interface S2Case {
  c: MatrixCase;
  mbec: boolean;
  page: Rights;
  /** The restricted table level (≥ 1: the region's own frames; the PML4 is the boot image's), or null. */
  tableLevel: number | null;
  table: Rights;
}

function rightsOf(n: number): Rights {
  return { r: (n & 1) !== 0, w: (n & 2) !== 0, x: (n & 4) !== 0, ux: (n & 8) !== 0 };
}

function permsOf(r: Rights): number {
  return (r.r ? S2_READ : 0) | (r.w ? S2_WRITE : 0) | (r.x ? S2_EXEC : 0) | (r.ux ? S2_USER_EXEC : 0);
}

function generate(): S2Case[] {
  const rand = xorshift(SEED);
  const out: S2Case[] = [];
  for (let d = 0; d < DRAWS; d++) {
    for (const size of PAGE_SIZES) for (const access of ACCESSES) for (const cpl of [0, 3] as const)
      for (const leafUs of BOOL) for (const leafRw of BOOL) for (const leafNx of BOOL) for (const smep of BOOL) for (const mbec of BOOL) {
        const levels = LAYOUTS[size].indices.length;
        const p = rand() % 10;
        const c: MatrixCase = {
          size, access, cpl, leafUs, leafRw, leafNx, smep, nxe: true, wp: true, smap: false, ac: false,
          upperUs: null, upperRw: null, upperNx: null,
          injection: rand() % 8 === 0 ? { kind: 'not-present', level: rand() % levels } : { kind: 'none' },
          preset: p < 5 ? 'none' : p < 7 ? 'a' : 'ad',
          primeRead: rand() % 4 === 0,
        };
        const restrictTable = rand() % 3 === 0;
        out.push({
          c, mbec, page: rightsOf(rand() % 16),
          tableLevel: restrictTable ? 1 + (rand() % (levels - 1)) : null,
          table: rightsOf(rand() % 16),
        });
      }
  }
  return out;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function settingOf(c: MatrixCase, access: 'read' | 'write' | 'fetch', entries: readonly bigint[]): AccessSetting {
  return { entries, wp: c.wp, smep: c.smep, smap: c.smap, nxe: c.nxe, ac: c.ac, cpl: c.cpl, access };
}

function outcomeOf(k: S2Case, access: 'read' | 'write' | 'fetch', entries: readonly bigint[]): Outcome {
  const l = LAYOUTS[k.c.size];
  return expectedOutcome(settingOf(k.c, access, entries), {
    mbec: k.mbec,
    tableRights: l.entryAddresses.map((_, level) => (level === k.tableLevel ? k.table : ALL_RIGHTS)),
    entryAddresses: l.entryAddresses,
    pageRights: k.page,
    physicalAddress: l.physicalPage + (access === 'fetch' ? CODE_OFFSET : DATA_OFFSET),
  });
}

/** Installs the case: tables, data, controls, then the second stage (which flushes the TLB). */
function install(rig: PagingRig, k: S2Case, serial: number): { entries: bigint[]; data: bigint } {
  const s2 = rig.m.memory.secondStage;
  const l = LAYOUTS[k.c.size];
  const frames = [...l.entryAddresses.slice(1), l.physicalPage].map((a) => Math.floor(a / 4096));
  for (const f of frames) s2.protect(f, 1, S2_ALL);
  const entries = buildEntries(k.c);
  const data = rig.install(k.c, entries, 0x5a00_0000_0000_0000n | BigInt(serial));
  rig.enter(k.c, 0xc2c2_0000_0000n);
  s2.setMbec(k.mbec);
  if (k.tableLevel !== null) s2.protect(Math.floor(l.entryAddresses[k.tableLevel]! / 4096), 1, permsOf(k.table));
  s2.protect(Math.floor(l.physicalPage / 4096), 1, permsOf(k.page));
  return { entries, data };
}

function judge(
  rig: PagingRig, k: S2Case, access: 'read' | 'write' | 'fetch', before: bigint[], data: bigint, value: bigint, problems: string[],
): Outcome {
  const c = k.c;
  const want = outcomeOf(k, access, before);
  const lin = linearOf(c, access);
  const r = rig.access(c, access, value);
  const i = r.intercept;
  const tag = `${access}:`;
  const stub = BigInt(rig.stubAddress(c.cpl, access));
  let fault = true;
  if (want.kind === 'violation') {
    const expected = {
      kind: 'ept_violation', gpa: BigInt(want.gpa), gva: BigInt(lin),
      access: (want.qualification & 2) !== 0 ? 'write' : (want.qualification & 4) !== 0 ? 'fetch' : 'read',
      qualification: want.qualification,
    };
    const got = JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? hex(v) : v));
    if (got !== JSON.stringify(expected, (_k, v) => (typeof v === 'bigint' ? hex(v) : v))) {
      problems.push(`${tag} expected ${JSON.stringify(expected, (_k, v) => (typeof v === 'bigint' ? hex(v) : v))}, got ${got}`);
    }
  } else if (want.expected.fault) {
    if (i.kind !== 'exception' || i.vector !== PF_VECTOR || i.errorCode !== want.expected.errorCode || i.address !== BigInt(lin)) {
      problems.push(`${tag} expected #PF(${hex(want.expected.errorCode)}), got ${JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? hex(v) : v))}`);
    }
  } else {
    fault = false;
    if (i.kind !== 'cpuid') problems.push(`${tag} expected success, got ${JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? hex(v) : v))}`);
    if (access === 'read' && r.rax !== data) problems.push(`${tag} read ${hex(r.rax)}, expected ${hex(data)}`);
  }
  const rip = access === 'fetch' ? BigInt(lin) : fault ? stub : stub + 3n;
  if (r.rip !== rip) problems.push(`${tag} RIP ${hex(r.rip)}, expected ${hex(rip)}`);
  const stored = rig.readData(c);
  const wantStored = access === 'write' && !fault ? value : data;
  if (stored !== wantStored) problems.push(`${tag} memory holds ${hex(stored)}, expected ${hex(wantStored)}`);
  const after = rig.readEntries(c);
  if (want.kind === 'violation') {
    if (after.some((v, n) => v !== before[n])) problems.push(`${tag} a violation changed an entry`);
  } else {
    const w = entriesAfter(settingOf(c, access, before), want.expected);
    after.forEach((v, n) => {
      if (!entryMatches(v, w[n]!)) problems.push(`${tag} entry ${n} is ${hex(v)}, expected ${hex(w[n]!.value)}`);
    });
  }
  return want;
}

function describe(k: S2Case): string {
  const r = (x: Rights) => `${x.r ? 'R' : '-'}${x.w ? 'W' : '-'}${x.x ? 'X' : '-'}${x.ux ? 'U' : '-'}`;
  return `${describeCase(k.c)} MBEC=${+k.mbec} page=${r(k.page)}${k.tableLevel === null ? '' : ` table@${k.tableLevel}=${r(k.table)}`}`;
}

const CASES = generate();

test(`second-stage matrix: ${CASES.length} cases match the model (violation GPA, GVA, qualification; #PF; A/D; data)`, (t) => {
  const rig = new PagingRig();
  const failures: string[] = [];
  const seen = new Map<string, number>();
  const bump = (key: string) => seen.set(key, (seen.get(key) ?? 0) + 1);
  CASES.forEach((k, serial) => {
    const problems: string[] = [];
    const { entries, data } = install(rig, k, serial);
    let before = entries;
    if (k.c.primeRead) {
      judge(rig, k, 'read', before, data, 0n, problems);
      before = rig.readEntries(k.c);
    }
    const o = judge(rig, k, k.c.access as 'read' | 'write' | 'fetch', before, data, 0xa500_0000_0000_0000n | BigInt(serial), problems);
    if (o.kind === 'violation') bump(`violation:${o.final ? 'final' : 'table'}:${o.qualification & 7}${o.final && k.c.access === 'fetch' && k.mbec ? `:mbec-${(o.qualification & 0x200) !== 0 ? 'user' : 'supervisor'}` : ''}`);
    else bump(o.expected.fault ? 'first-stage-fault' : `ok-${k.c.access}`);
    failures.push(...problems.map((p) => `${describe(k)} — ${p}`));
  });
  // Reset what the last case left, for whoever uses the rig's memory next.
  rig.m.memory.secondStage.setMbec(false);
  t.log([...seen].sort().map(([key, n]) => `${key}×${n}`).join(' '));
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
  for (const key of [
    'violation:table:1', 'violation:table:2', 'violation:final:1', 'violation:final:2', 'violation:final:4',
    'violation:final:4:mbec-user', 'violation:final:4:mbec-supervisor', 'first-stage-fault', 'ok-read', 'ok-write', 'ok-fetch',
  ]) t.true((seen.get(key) ?? 0) > 0, `${key} occurs`);
});
