/**
 * Runs one matrix case on the rig and compares everything observable with the reference model:
 * the intercept (no fault, or #PF with the exact error code and address), RIP, the data read or
 * written (and nothing written on a fault), CR2 left alone by an intercepted #PF, the A/D bits of
 * every entry, and `translate()` — which must agree with the access and touch nothing.
 */
import { MAXPHYADDR } from '../../../host/index.js';
import { PF_VECTOR } from '../../../protocol/abi.js';
import {
  entriesAfter, entryMatches, expectedFault, LEVEL_NAMES, type Access, type AccessSetting, type Expected,
} from './paging-model.js';
import {
  buildEntries, CODE_OFFSET, DATA_OFFSET, describeCase, LAYOUTS, linearOf, type MatrixCase, type PagingRig,
} from './paging-rig.js';

const CR2_SENTINEL = 0xc2c2_0000_0000n;
const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function settingOf(c: MatrixCase, access: Access, entries: readonly bigint[]): AccessSetting {
  return { entries, wp: c.wp, smep: c.smep, smap: c.smap, nxe: c.nxe, ac: c.ac, cpl: c.cpl, access };
}

/** What one run of the case shows. */
export interface CaseOutcome {
  expected: Expected;
  problems: string[];
}

function describeIntercept(i: object): string {
  return JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? hex(v) : v));
}

/** Checks one access against `expected`, given the entries and data as they were before it. */
function judgeAccess(
  rig: PagingRig, c: MatrixCase, access: Access, before: readonly bigint[], data: bigint, value: bigint,
  expected: Expected, problems: string[],
): void {
  const lin = BigInt(linearOf({ ...c, access }));
  const stub = BigInt(rig.stubAddress(c.cpl, access));
  const r = rig.access(c, access, value);
  const i = r.intercept;
  const tag = `${access}:`;
  if (expected.fault) {
    const want = { kind: 'exception', vector: PF_VECTOR, errorCode: expected.errorCode, address: lin };
    if (i.kind !== 'exception' || i.vector !== PF_VECTOR || i.errorCode !== expected.errorCode || i.address !== lin) {
      problems.push(`${tag} expected ${describeIntercept(want)} (${expected.kind} at ${LEVEL_NAMES[expected.at]}), got ${describeIntercept(i)}`);
    }
    // A fetch faults at the target after the JMP retired; a data access on its own instruction.
    const rip = access === 'fetch' ? lin : stub;
    if (r.rip !== rip) problems.push(`${tag} RIP ${hex(r.rip)} after the fault, expected ${hex(rip)}`);
  } else {
    if (i.kind !== 'cpuid') problems.push(`${tag} expected the access to succeed (CPUID intercept), got ${describeIntercept(i)}`);
    const rip = access === 'fetch' ? lin : stub + 3n;
    if (r.rip !== rip) problems.push(`${tag} RIP ${hex(r.rip)}, expected ${hex(rip)}`);
    if (access === 'read' && r.rax !== data) problems.push(`${tag} read ${hex(r.rax)}, expected ${hex(data)}`);
  }
  const stored = rig.readData(c);
  const wantStored = access === 'write' && !expected.fault ? value : data;
  if (stored !== wantStored) problems.push(`${tag} memory holds ${hex(stored)}, expected ${hex(wantStored)}`);
  if (rig.m.cpu.readCr(2) !== CR2_SENTINEL) problems.push(`${tag} CR2 changed by an intercepted #PF`);
  const afterWant = entriesAfter(settingOf(c, access, before), expected);
  const after = rig.readEntries(c);
  after.forEach((v, level) => {
    const w = afterWant[level]!;
    if (!entryMatches(v, w)) {
      problems.push(`${tag} ${LEVEL_NAMES[level]} is ${hex(v)}, expected ${hex(w.value)}${w.mayAddA ? ' (A optional)' : ''}`);
    }
  });
}

/** Runs the case (its optional priming read, then the access) and lists every mismatch. */
export function runCase(rig: PagingRig, c: MatrixCase, serial: number): CaseOutcome {
  const problems: string[] = [];
  const entries = buildEntries(c);
  const data = 0x5a00_0000_0000_0000n | BigInt(serial);
  const value = 0xa500_0000_0000_0000n | BigInt(serial);
  rig.install(c, entries, data);
  rig.enter(c, CR2_SENTINEL);
  const expected = expectedFault(settingOf(c, c.access, entries));

  // translate(): the same decision, nothing set (kvm_mmu_gva_to_gpa semantics).
  const lin = linearOf(c);
  const tr = rig.m.cpu.translate(BigInt(lin), c.access, c.cpl);
  const page = LAYOUTS[c.size].physicalPage + (c.access === 'fetch' ? CODE_OFFSET : DATA_OFFSET);
  const trWant = expected.fault ? { vector: PF_VECTOR, errorCode: expected.errorCode } : { gpa: page };
  if (JSON.stringify(tr) !== JSON.stringify(trWant)) {
    problems.push(`translate: expected ${JSON.stringify(trWant)}, got ${JSON.stringify(tr)}`);
  }
  if (rig.readEntries(c).some((v, k) => v !== entries[k])) problems.push('translate: changed an entry');

  let before = entries;
  if (c.primeRead) {
    judgeAccess(rig, c, 'read', before, data, 0n, expectedFault(settingOf(c, 'read', before)), problems);
    before = rig.readEntries(c);
  }
  judgeAccess(rig, c, c.access, before, data, value, expected, problems);
  return { expected, problems: problems.map((p) => `${describeCase(c)} — ${p}`) };
}

/** Bits a walk must ignore, per level kind (SDM tables 4-15..4-20, with CR4.PKE = 0). */
export function ignoredBits(level: number, leaf: boolean, size: '4k' | '2m' | '1g'): number[] {
  if (leaf) return [8 /* G */, 9, 10, 11, 52, 55, 58, 59, 62, size === '4k' ? 7 : 12 /* PAT */];
  // Bit 6 is ignored in every non-leaf entry; bit 8 too, except in a PML4E, where Intel ignores
  // it and AMD reserves it (XTF's observation 1), so it is left out there.
  return level === 0 ? [6, 9, 10, 11, 52, 58, 62] : [6, 8, 9, 10, 11, 52, 58, 62];
}

/** Bits 51:MAXPHYADDR, each a reserved-bit injection. */
export const ABOVE_MAXPHYADDR_BITS = Array.from({ length: 52 - MAXPHYADDR }, (_, k) => MAXPHYADDR + k);
