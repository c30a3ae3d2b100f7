/**
 * The paging-permission matrix (issue 3, item 8), in the manner of kvm-unit-tests x86/access.c
 * and XTF pagetable-emulation, written from the SDM (vol. 3A §4.5–4.8) through paging-model.ts.
 *
 * Every combination of leaf U/S × R/W × XD × EFER.NXE × CR0.WP × CR4.SMEP × CR4.SMAP × RFLAGS.AC
 * × CPL 0/3 × access runs for each page size (4 KiB PTE, 2 MiB PDE, 1 GiB PDPTE leaf). The
 * accesses are read, write, fetch (2^9 × 3 = 1536 combinations) and an implicit supervisor-mode
 * read (the IDT-gate read of #UD's delivery; with EFER.NXE = 1 only: 2^8 = 256), so
 * (1536 + 256) × 3 = 5376 combinations, each run four times with different draws of the sampled
 * dimensions (fixed seed): which upper-level entry has U/S or R/W clear or XD set, a not-present
 * entry, a reserved bit (above MAXPHYADDR, PS in the PML4E, the low bits of a large leaf; XD
 * while NXE = 0 comes from the XD dimensions), a bit the walk must ignore, A/D already set in the
 * leaf, and a priming read (access.c's "twice"). The coverage of each dimension's values and of
 * every #PF error code the model can produce is asserted, so that a change of seed cannot
 * silently drop a class of cases.
 */
import test from 'ava';
import { xorshift } from '../harness/prng.js';
import { ABOVE_MAXPHYADDR_BITS, ignoredBits, runCase, runCaseThroughIdt } from './paging-judge.js';
import {
  LAYOUTS, MATRIX_ACCESSES, PAGE_SIZES, PagingRig, type Injection, type MatrixCase, type PageSize,
} from './paging-rig.js';

const SEED = 0x8a9e5;
const DRAWS_PER_COMBINATION = 4;
const BOOL = [false, true] as const;

function* product(): Generator<Pick<MatrixCase, 'size' | 'leafUs' | 'leafRw' | 'leafNx' | 'nxe' | 'wp' | 'smep' | 'smap' | 'ac' | 'cpl' | 'access'>> {
  for (const size of PAGE_SIZES) for (const leafUs of BOOL) for (const leafRw of BOOL) for (const leafNx of BOOL)
    for (const nxe of BOOL) for (const wp of BOOL) for (const smep of BOOL) for (const smap of BOOL) for (const ac of BOOL)
      for (const cpl of [0, 3] as const) for (const access of MATRIX_ACCESSES) {
        // Legality filter: an implicit access delivers #UD, whose stack the boot image maps XD,
        // which is a reserved bit while EFER.NXE = 0.
        if (access === 'implicit' && !nxe) continue;
        yield { size, leafUs, leafRw, leafNx, nxe, wp, smep, smap, ac, cpl, access };
      }
}

function drawInjection(rand: () => number, size: PageSize): Injection {
  const levels = LAYOUTS[size].indices.length;
  const pick = <T>(xs: readonly T[]): T => xs[rand() % xs.length]!;
  const r = rand() % 100;
  if (r < 56) return { kind: 'none' };
  if (r < 66) return { kind: 'not-present', level: rand() % levels };
  if (r < 76) return { kind: 'above-maxphyaddr', level: rand() % levels, bit: pick(ABOVE_MAXPHYADDR_BITS) };
  if (r < 82) return { kind: 'ps-in-pml4e' };
  if (r < 90 && size !== '4k') return { kind: 'large-page-low', bit: 13 + (rand() % (size === '2m' ? 8 : 17)) };
  const level = rand() % levels;
  return { kind: 'ignored', level, bit: pick(ignoredBits(level, level === levels - 1, size)) };
}

function generate(): MatrixCase[] {
  const rand = xorshift(SEED);
  const cases: MatrixCase[] = [];
  for (let draw = 0; draw < DRAWS_PER_COMBINATION; draw++) {
    for (const core of product()) {
      const uppers = LAYOUTS[core.size].indices.length - 1;
      const upper = () => (rand() % 2 === 0 ? null : rand() % uppers);
      const p = rand() % 10;
      cases.push({
        ...core,
        upperUs: upper(),
        upperRw: upper(),
        upperNx: upper(),
        injection: drawInjection(rand, core.size),
        preset: p < 6 ? 'none' : p < 8 ? 'a' : 'ad',
        primeRead: rand() % 4 === 0,
      });
    }
  }
  return cases;
}

/** Every value each dimension takes, and how often. */
function coverage(cases: readonly MatrixCase[]): Map<string, number> {
  const seen = new Map<string, number>();
  const bump = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
  for (const c of cases) {
    for (const [k, v] of Object.entries(c)) if (k !== 'injection') bump(`${k}=${String(v)}`);
    const inj = c.injection;
    bump(`injection=${inj.kind}`);
    if ('level' in inj) bump(`injection=${inj.kind}@${inj.level}/${c.size}`);
    if ('bit' in inj) bump(`injection=${inj.kind}:bit${inj.bit}`);
  }
  return seen;
}

const CASES = generate();

test(`paging matrix: ${CASES.length} cases match the SDM model (#PF error code, address, A/D, data, translate)`, (t) => {
  const rig = new PagingRig();
  const failures: string[] = [];
  const codes = new Map<string, number>();
  CASES.forEach((c, serial) => {
    const { expected, problems } = runCase(rig, c, serial);
    const key = expected.fault ? `#PF(0x${expected.errorCode.toString(16)})` : `ok-${c.access}`;
    codes.set(key, (codes.get(key) ?? 0) + 1);
    if (problems.length > 0) failures.push(...problems);
  });
  t.log(`outcomes: ${[...codes].sort().map(([k, n]) => `${k}×${n}`).join(' ')}`);
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);

  // Every error code the model can produce for explicit accesses (§4.7): {P?, W?, U?} or
  // {P, RSVD, W?, U?}, the I/D bit only with fetches (never with W).
  for (const user of [0, 4]) {
    for (const base of [0x0, 0x1, 0x9]) {
      for (const kind of [0, 2, 0x10]) {
        const code = base | user | kind;
        t.true((codes.get(`#PF(0x${code.toString(16)})`) ?? 0) > 0, `error code 0x${code.toString(16)} occurs`);
      }
    }
  }
  for (const a of MATRIX_ACCESSES) t.true((codes.get(`ok-${a}`) ?? 0) > 0, `some ${a} succeeds`);
});

test('the reference interpreter (no block translation) agrees on the first draw', (t) => {
  const rig = new PagingRig(false);
  const failures: string[] = [];
  CASES.slice(0, CASES.length / DRAWS_PER_COMBINATION).forEach((c, serial) => failures.push(...runCase(rig, c, serial).problems));
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
});

test('end to end through the IDT: CR2, the pushed error code and RIP, for every 8th explicit case with EFER.NXE', (t) => {
  const rig = new PagingRig();
  const failures: string[] = [];
  const picked = CASES.filter((c, k) => c.nxe && !c.primeRead && c.access !== 'implicit' && k % 8 === 0);
  let faults = 0;
  picked.forEach((c, serial) => {
    const { expected, problems } = runCaseThroughIdt(rig, c, serial);
    if (expected.fault) faults++;
    failures.push(...problems);
  });
  t.true(faults > 300, `${faults} of ${picked.length} cases fault`);
  t.deepEqual(failures.slice(0, 20), [], `${failures.length} mismatches`);
});

test('the sample covers every value of every dimension', (t) => {
  const seen = coverage(CASES);
  const expectValues: [string, readonly unknown[]][] = [
    ['size', PAGE_SIZES], ['access', MATRIX_ACCESSES], ['cpl', [0, 3]], ['preset', ['none', 'a', 'ad']],
    ...(['leafUs', 'leafRw', 'leafNx', 'nxe', 'wp', 'smep', 'smap', 'ac', 'primeRead'] as const).map(
      (k) => [k, BOOL] as [string, readonly unknown[]],
    ),
    ...(['upperUs', 'upperRw', 'upperNx'] as const).map((k) => [k, [null, 0, 1, 2]] as [string, readonly unknown[]]),
    ['injection', ['none', 'not-present', 'above-maxphyaddr', 'ps-in-pml4e', 'large-page-low', 'ignored']],
  ];
  for (const [k, values] of expectValues) {
    for (const v of values) t.true((seen.get(`${k}=${String(v)}`) ?? 0) >= 20, `${k}=${String(v)} drawn at least 20 times`);
  }
  for (const size of PAGE_SIZES) {
    for (let level = 0; level < LAYOUTS[size].indices.length; level++) {
      for (const kind of ['not-present', 'above-maxphyaddr', 'ignored']) {
        t.true((seen.get(`injection=${kind}@${level}/${size}`) ?? 0) > 0, `${kind} at level ${level} of a ${size} walk`);
      }
    }
  }
  for (const bit of ABOVE_MAXPHYADDR_BITS) t.true((seen.get(`injection=above-maxphyaddr:bit${bit}`) ?? 0) > 0, `bit ${bit}`);
  t.is(CASES.length, (1536 + 256) * 3 * DRAWS_PER_COMBINATION);
});
