/**
 * Runs one matrix case on the rig and compares everything observable with the reference model:
 * the intercept (no fault, or #PF with the exact error code and address), RIP, the data read or
 * written (and nothing written on a fault), CR2 left alone by an intercepted #PF, the A/D bits of
 * every entry, and `translate()` — which must agree with the access and touch nothing.
 */
import { MAXPHYADDR } from '../../../host/index.js';
import { PF_VECTOR } from '../../../protocol/abi.js';
import {
  entriesAfter, entryMatches, expectedFault, LEVEL_NAMES, type AccessSetting, type Expected,
} from './paging-model.js';
import {
  buildEntries, CODE_OFFSET, DATA_OFFSET, describeCase, LAYOUTS, linearOf, modelAccess, UD_HANDLER,
  type MatrixAccess, type MatrixCase, type PagingRig,
} from './paging-rig.js';

const CR2_SENTINEL = 0xc2c2_0000_0000n;
const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function settingOf(c: MatrixCase, access: MatrixAccess, entries: readonly bigint[]): AccessSetting {
  return {
    entries, wp: c.wp, smep: c.smep, smap: c.smap, nxe: c.nxe, ac: c.ac, cpl: c.cpl,
    access: modelAccess(access), implicit: access === 'implicit',
  };
}

/** What one run of the case shows. */
export interface CaseOutcome {
  expected: Expected;
  problems: string[];
}

function describeIntercept(i: object): string {
  return JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? hex(v) : v));
}

/**
 * Where RIP must be after the access: on a fault, at the faulting instruction (the fetch target
 * for a fetch, which faults after the JMP retired; the UD2 whose delivery read the gate for an
 * implicit access); on success, at the CPUID after the access, at the fetch target's CPUID, or
 * at the #UD handler.
 */
function expectedRip(rig: PagingRig, c: MatrixCase, access: MatrixAccess, fault: boolean): bigint {
  const stub = BigInt(rig.stubAddress(c.cpl, access));
  if (access === 'fetch') return BigInt(linearOf(c, access));
  if (fault) return stub;
  return access === 'implicit' ? BigInt(UD_HANDLER) : stub + 3n;
}

/** Checks one access against `expected`, given the entries and data as they were before it. */
function judgeAccess(
  rig: PagingRig, c: MatrixCase, access: MatrixAccess, before: readonly bigint[], data: bigint, value: bigint,
  expected: Expected, problems: string[],
): void {
  const lin = BigInt(linearOf(c, access));
  const r = rig.access(c, access, value);
  const i = r.intercept;
  const tag = `${access}:`;
  if (expected.fault) {
    const want = { kind: 'exception', vector: PF_VECTOR, errorCode: expected.errorCode, address: lin };
    if (i.kind !== 'exception' || i.vector !== PF_VECTOR || i.errorCode !== expected.errorCode || i.address !== lin) {
      problems.push(`${tag} expected ${describeIntercept(want)} (${expected.kind} at ${LEVEL_NAMES[expected.at]}), got ${describeIntercept(i)}`);
    }
  } else {
    const kind = access === 'implicit' ? 'hlt' : 'cpuid';
    if (i.kind !== kind) problems.push(`${tag} expected the access to succeed (${kind} intercept), got ${describeIntercept(i)}`);
    if (access === 'read' && r.rax !== data) problems.push(`${tag} read ${hex(r.rax)}, expected ${hex(data)}`);
  }
  const rip = expectedRip(rig, c, access, expected.fault);
  if (r.rip !== rip) problems.push(`${tag} RIP ${hex(r.rip)}, expected ${hex(rip)}`);
  const stored = rig.readData(c);
  const wantStored = access === 'write' && !expected.fault ? value : data;
  if (stored !== wantStored) problems.push(`${tag} memory holds ${hex(stored)}, expected ${hex(wantStored)}`);
  if (rig.m.cpu.readCr(2) !== CR2_SENTINEL) problems.push(`${tag} CR2 changed by an intercepted #PF`);
  judgeEntries(rig, c, access, before, expected, problems);
}

function judgeEntries(
  rig: PagingRig, c: MatrixCase, access: MatrixAccess, before: readonly bigint[], expected: Expected, problems: string[],
): void {
  const afterWant = entriesAfter(settingOf(c, access, before), expected);
  rig.readEntries(c).forEach((v, level) => {
    const w = afterWant[level]!;
    if (!entryMatches(v, w)) {
      problems.push(`${access}: ${LEVEL_NAMES[level]} is ${hex(v)}, expected ${hex(w.value)}${w.mayAddA ? ' (A optional)' : ''}`);
    }
  });
}

/** translate() takes the same decision for an explicit access, and sets no A/D bit. */
function judgeTranslate(rig: PagingRig, c: MatrixCase, entries: readonly bigint[], expected: Expected, problems: string[]): void {
  if (c.access === 'implicit') return; // translate() models explicit accesses only
  const tr = rig.m.cpu.translate(BigInt(linearOf(c)), c.access, c.cpl);
  const gpa = LAYOUTS[c.size].physicalPage + (c.access === 'fetch' ? CODE_OFFSET : DATA_OFFSET);
  const want = expected.fault ? { vector: PF_VECTOR, errorCode: expected.errorCode } : { gpa };
  if (JSON.stringify(tr) !== JSON.stringify(want)) {
    problems.push(`translate: expected ${JSON.stringify(want)}, got ${JSON.stringify(tr)}`);
  }
  if (rig.readEntries(c).some((v, k) => v !== entries[k])) problems.push('translate: changed an entry');
}

/** Writes the case's tables and data, enters its state, and returns what the model expects. */
function prepare(rig: PagingRig, c: MatrixCase, serial: number): { entries: bigint[]; data: bigint; expected: Expected } {
  const entries = buildEntries(c);
  const data = rig.install(c, entries, 0x5a00_0000_0000_0000n | BigInt(serial));
  rig.enter(c, CR2_SENTINEL);
  return { entries, data, expected: expectedFault(settingOf(c, c.access, entries)) };
}

/** Runs the case (its optional priming read, then the access) and lists every mismatch. */
export function runCase(rig: PagingRig, c: MatrixCase, serial: number): CaseOutcome {
  const problems: string[] = [];
  const { entries, data, expected } = prepare(rig, c, serial);
  judgeTranslate(rig, c, entries, expected, problems);
  let before = entries;
  if (c.primeRead) {
    judgeAccess(rig, c, 'read', before, data, 0n, expectedFault(settingOf(c, 'read', before)), problems);
    before = rig.readEntries(c);
  }
  judgeAccess(rig, c, c.access, before, data, 0xa500_0000_0000_0000n | BigInt(serial), expected, problems);
  return { expected, problems: problems.map((p) => `${describeCase(c)} — ${p}`) };
}

/**
 * The same case end to end: no exception bitmap, so a #PF goes through the boot image's IDT
 * (interrupt gate on IST1, the recording stub) and halts in the stub. Checks CR2 = the linear
 * address (SDM §4.7: "the processor loads CR2 with the linear address that generated the
 * exception"), the error code and RIP the CPU pushed (as the stub recorded them), and the A/D
 * bits. Only for explicit accesses with EFER.NXE = 1: the boot image maps its stacks XD.
 */
export function runCaseThroughIdt(rig: PagingRig, c: MatrixCase, serial: number): CaseOutcome {
  const problems: string[] = [];
  const { entries, expected } = prepare(rig, c, serial);
  const lin = BigInt(linearOf(c));
  const record = rig.faultRecord();
  rig.throughIdt = true;
  try {
    const r = rig.access(c, c.access, 0n);
    if (expected.fault) {
      const now = rig.faultRecord();
      const halt = BigInt(rig.m.boot.text.faultHalt);
      if (r.intercept.kind !== 'hlt' || r.rip !== halt) {
        problems.push(`expected to halt in the recording stub, got ${describeIntercept(r.intercept)} at ${hex(r.rip)}`);
      }
      if (now.count !== record.count + 1n) problems.push(`${now.count - record.count} exceptions recorded, expected 1`);
      if (now.vector !== BigInt(PF_VECTOR)) problems.push(`vector ${now.vector} delivered, expected 14`);
      if (now.errorCode !== BigInt(expected.errorCode)) {
        problems.push(`error code ${hex(now.errorCode)} pushed, expected ${hex(expected.errorCode)}`);
      }
      const rip = expectedRip(rig, c, c.access, true);
      if (now.rip !== rip) problems.push(`RIP ${hex(now.rip)} pushed, expected ${hex(rip)}`);
      if (rig.m.cpu.readCr(2) !== lin) problems.push(`CR2 ${hex(rig.m.cpu.readCr(2))}, expected ${hex(lin)}`);
    } else if (r.intercept.kind !== 'cpuid') {
      problems.push(`expected the access to succeed, got ${describeIntercept(r.intercept)}`);
    }
  } finally {
    rig.throughIdt = false;
  }
  judgeEntries(rig, c, c.access, entries, expected, problems);
  return { expected, problems: problems.map((p) => `${describeCase(c)} (through the IDT) — ${p}`) };
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
