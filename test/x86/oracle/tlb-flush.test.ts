/**
 * TLB behaviour that the SDM guarantees (vol. 3A §4.10), and nothing it leaves open:
 *   - §4.10.4.1: MOV to CR3 invalidates every non-global translation and all paging-structure
 *     caches; INVLPG invalidates its page's translations, global ones included, and all
 *     paging-structure caches, and for a large page the whole page; a change of CR4.PGE
 *     invalidates everything; CR4.SMEP 0→1 invalidates the current PCID's translations;
 *   - §4.10.2.2: a TLB entry caches the paging-structure rights (R/W, U/S, XD), not the outcome
 *     of CR0.WP, CR4.SMEP/SMAP and RFLAGS.AC, which apply at each access — so toggling them
 *     takes effect at once (kvm-unit-tests access.c check_toggle_cr0_wp, check_smep_andnot_wp);
 *   - §4.10.4.3 and §4.10.4.1: without a flush, a changed entry may or may not be used; a
 *     rights upgrade gives at most one spurious #PF (a #PF invalidates the address's entries);
 *     P 0→1 needs no invalidation, as not-present entries are never cached.
 * Global translations surviving MOV to CR3 is allowed, not promised: the test accepts both and
 * logs which one the core does.
 */
import test, { type ExecutionContext } from 'ava';
import { BP_VECTOR, PFERR_FETCH, PFERR_PRESENT, PFERR_USER, PFERR_WRITE, X86_CR0_WP, X86_CR4_PGE, X86_CR4_SMAP, X86_CR4_SMEP } from '../../../protocol/abi.js';
import { CODE, USER_CODE, USER_STACK_TOP } from '../harness/machine.js';
import {
  CLAC, CPUID, INVLPG_RBX, MOV_CR0_RAX, MOV_CR3_RAX, MOV_CR4_RAX, runGuest, STAC,
} from './guest-run.js';
import { ENTRY_G, ENTRY_P, ENTRY_RW, ENTRY_US, ENTRY_XD } from './paging-model.js';
import {
  buildEntries, DATA_OFFSET, LAYOUTS, linearOf, PagingRig, type MatrixCase, type PageSize,
} from './paging-rig.js';

const DATA_A = 0xaaaa_0000_0000_0001n;
const DATA_B = 0xbbbb_0000_0000_0002n;
/** Second frames, for moving a translation: 4 KiB and 2 MiB aligned, unused by anything else. */
const FRAME_B: Record<PageSize, number> = { '4k': 0x94_5000, '2m': 0x60_0000, '1g': 0 };
const OPS_AT = CODE + 0x100;
/** CPUID where IRETQ lands at CPL3, and the `int3` (the boot image's DPL3 done gate) that returns to CPL0. */
const USER_LANDING = USER_CODE + 0x100;
const USER_RETURN = USER_CODE + 0x110;

const PF = (code: number) => `#PF(0x${code.toString(16)})`;

function baseCase(over: Partial<MatrixCase> = {}): MatrixCase {
  return {
    size: '4k', leafUs: false, leafRw: true, leafNx: false, upperUs: null, upperRw: null, upperNx: null,
    injection: { kind: 'none' }, preset: 'none', primeRead: false,
    wp: true, smep: true, smap: true, nxe: true, ac: false, cpl: 0, access: 'read', ...over,
  };
}

/** One page under test on a fresh rig, with helpers to access it, change it, and run guest code. */
class Page {
  readonly rig = new PagingRig();
  readonly leafAddress: number;

  constructor(readonly c: MatrixCase, private readonly t: ExecutionContext) {
    const l = LAYOUTS[c.size];
    this.leafAddress = l.entryAddresses[l.entryAddresses.length - 1]!;
    this.rig.install(c, buildEntries(c), DATA_A);
    this.rig.enter(c, 0n);
    if (c.size !== '1g') {
      this.rig.m.memory.write64(FRAME_B[c.size] + (l.physicalPage - l.frame) + DATA_OFFSET, DATA_B);
    }
    this.rig.m.memory.writeBytes(USER_LANDING, Uint8Array.from(CPUID));
    this.rig.m.memory.writeBytes(USER_RETURN, Uint8Array.of(0xcc));
  }

  get leaf(): bigint {
    return this.rig.m.memory.read64(this.leafAddress);
  }

  /** Rewrites the leaf in memory, without any invalidation. */
  setLeaf(v: bigint): void {
    this.rig.m.memory.write64(this.leafAddress, v);
  }

  /** Points the leaf at the second frame (same rights). */
  moveToFrameB(): void {
    const l = LAYOUTS[this.c.size];
    this.setLeaf((this.leaf & ~BigInt(l.frame)) | BigInt(FRAME_B[this.c.size]));
  }

  /** At the current CPL: 'read 0x…', 'written', 'fetched', '#PF(0x…)', or the unexpected intercept. */
  access(access: 'read' | 'write' | 'fetch'): string {
    const cpl = this.rig.m.cpu.cpl as 0 | 3;
    const r = this.rig.access({ ...this.c, cpl }, access, 0x77n);
    const i = r.intercept;
    if (i.kind === 'exception' && i.vector === 14 && i.address === BigInt(linearOf(this.c, access))) return PF(i.errorCode ?? -1);
    if (i.kind !== 'cpuid') return JSON.stringify(i, (_k, v) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v));
    return access === 'read' ? `read 0x${r.rax.toString(16)}` : access === 'write' ? 'written' : 'fetched';
  }

  /** Runs `code` at CPL0 with RBX = the address under test and RAX = `rax`; it must end in CPUID. */
  guest(code: readonly number[], rax = 0n): void {
    const cpu = this.rig.m.cpu;
    const s = cpu.getSregs();
    if (s.cs.dpl !== 0) throw new Error('guest() runs CPL0 code');
    cpu.writeGpr(3, BigInt(linearOf(this.c, 'read')));
    cpu.writeGpr(0, rax);
    const i = runGuest(cpu, this.rig.m.memory, OPS_AT, [...code, ...CPUID]);
    this.t.is(i.kind, 'cpuid', `guest code ran to its CPUID (got ${i.kind})`);
  }

  /**
   * Runs `body` at CPL3, entered by IRETQ and left through `int3` — not KVM_SET_SREGS, which
   * would flush the TLB these tests look into.
   */
  asUser(body: () => void): void {
    const cpu = this.rig.m.cpu;
    cpu.writeGpr(0, BigInt(USER_STACK_TOP));
    cpu.writeGpr(1, BigInt(USER_LANDING));
    // push 0x2b (user SS); push rax (RSP); pushfq; push 0x33 (user CS); push rcx (RIP); iretq
    const i = runGuest(cpu, this.rig.m.memory, OPS_AT, [0x6a, 0x2b, 0x50, 0x9c, 0x6a, 0x33, 0x51, 0x48, 0xcf]);
    this.t.true(i.kind === 'cpuid' && cpu.cpl === 3, 'IRETQ entered CPL3');
    body();
    cpu.setRip(BigInt(USER_RETURN));
    // The rig intercepts every exception vector; the done gate's #BP must reach the guest's IDT.
    const bitmap = cpu.exceptionBitmap;
    cpu.exceptionBitmap = (bitmap & ~(1 << BP_VECTOR)) >>> 0;
    const back = cpu.run(16);
    cpu.exceptionBitmap = bitmap;
    this.t.true(back.kind === 'hlt' && cpu.cpl === 0, `int3 returned to CPL0 (got ${back.kind})`);
  }

  movCr0(set: bigint, clear: bigint): void {
    this.guest(MOV_CR0_RAX, (this.rig.m.cpu.readCr(0) | set) & ~clear);
  }

  movCr3(): void {
    this.guest(MOV_CR3_RAX, this.rig.m.cpu.readCr(3));
  }

  movCr4(set: bigint, clear: bigint): void {
    this.guest(MOV_CR4_RAX, (this.rig.m.cpu.readCr(4) | set) & ~clear);
  }
}

const readA = `read 0x${DATA_A.toString(16)}`;
const readB = `read 0x${DATA_B.toString(16)}`;
const SUP_WRITE_RO = PF(PFERR_PRESENT | PFERR_WRITE);

test('MOV to CR3 drops non-global translations: a revoked write right and a moved frame are seen after it', (t) => {
  const p = new Page(baseCase(), t);
  t.is(p.access('write'), 'written', 'primes a writable translation');
  p.setLeaf(p.leaf & ~ENTRY_RW);
  p.movCr3();
  t.is(p.access('write'), SUP_WRITE_RO);

  const q = new Page(baseCase(), t);
  t.is(q.access('read'), readA);
  q.moveToFrameB();
  q.movCr3();
  t.is(q.access('read'), readB);
});

test('INVLPG drops its page\'s translation, global or not, and the paging-structure caches', (t) => {
  for (const global of [false, true]) {
    const p = new Page(baseCase(), t);
    if (global) p.setLeaf(p.leaf | ENTRY_G), p.movCr3();
    t.is(p.access('read'), readA);
    p.moveToFrameB();
    p.guest(INVLPG_RBX);
    t.is(p.access('read'), readB, global ? 'global' : 'not global');
    p.setLeaf(p.leaf & ~ENTRY_RW);
    p.guest(INVLPG_RBX);
    t.is(p.access('write'), SUP_WRITE_RO, 'a revoked write right');
  }
  // The PDE now points at another page table, whose PTE maps frame B (§4.10.4.1: INVLPG
  // invalidates all paging-structure-cache entries, whatever their address).
  const p = new Page(baseCase(), t);
  t.is(p.access('read'), readA);
  const l = LAYOUTS['4k'];
  const otherPt = 0x80_3000;
  p.rig.m.memory.write64(otherPt + 8 * l.indices[3]!, BigInt(FRAME_B['4k']) | ENTRY_P | ENTRY_RW);
  p.rig.m.memory.write64(l.entryAddresses[2]!, BigInt(otherPt) | ENTRY_P | ENTRY_RW | ENTRY_US);
  p.guest(INVLPG_RBX);
  t.is(p.access('read'), readB, 'the new page table is walked');
});

test('INVLPG of any address in a 2 MiB or 1 GiB page invalidates the whole page\'s translation', (t) => {
  for (const size of ['2m', '1g'] as const) {
    const p = new Page(baseCase({ size }), t);
    t.is(p.access('read'), readA);
    if (size === '2m') {
      p.moveToFrameB();
    } else {
      p.setLeaf(p.leaf & ~ENTRY_RW); // no second 1 GiB frame in memory: revoke the write right instead
    }
    // invlpg [rbx + 0x1000*k]: another 4 KiB page of the same large page.
    const cpu = p.rig.m.cpu;
    const other = BigInt(linearOf(p.c, 'read')) + 0x3_7000n;
    cpu.writeGpr(3, other);
    t.is(runGuest(cpu, p.rig.m.memory, OPS_AT, [...INVLPG_RBX, ...CPUID]).kind, 'cpuid');
    t.is(p.access(size === '2m' ? 'read' : 'write'), size === '2m' ? readB : SUP_WRITE_RO, size);
  }
});

test('CR0.WP toggles take effect at once on a cached translation (access.c check_toggle_cr0_wp)', (t) => {
  const p = new Page(baseCase({ leafRw: false }), t);
  t.is(p.access('read'), readA, 'a cached read-only translation');
  t.is(p.access('write'), SUP_WRITE_RO, 'WP=1: supervisor write to a read-only page faults');
  p.movCr0(0n, X86_CR0_WP);
  t.is(p.access('write'), 'written', 'WP=0: it succeeds');
  t.is(p.access('read'), 'read 0x77');
  p.movCr0(X86_CR0_WP, 0n);
  t.is(p.access('write'), SUP_WRITE_RO, 'WP=1 again: it faults, whatever the write under WP=0 cached');
  p.movCr0(0n, X86_CR0_WP);
  t.is(p.access('write'), 'written');
});

test('SMEP without WP: a WP=0 write to a read-only user page leaves it a user page (access.c check_smep_andnot_wp)', (t) => {
  const p = new Page(baseCase({ leafUs: true, leafRw: false, wp: false, smap: false }), t);
  t.is(p.access('write'), 'written');
  t.is(p.access('fetch'), PF(PFERR_PRESENT | PFERR_FETCH), 'CPL0 fetch from the user page: SMEP');
  p.asUser(() => {
    t.is(p.access('read'), 'read 0x77', 'still readable from CPL3');
    t.is(p.access('write'), PF(PFERR_PRESENT | PFERR_WRITE | PFERR_USER), 'and still read-only for CPL3');
  });
});

test('CR4.SMEP: set, a cached user translation cannot be fetched at CPL0; cleared, it can', (t) => {
  const p = new Page(baseCase({ leafUs: true, smep: false }), t);
  t.is(p.access('fetch'), 'fetched', 'primes the instruction TLB');
  p.movCr4(X86_CR4_SMEP, 0n);
  t.is(p.access('fetch'), PF(PFERR_PRESENT | PFERR_FETCH));
  p.asUser(() => t.is(p.access('fetch'), 'fetched', 'CPL3 fetches are not affected'));
  p.movCr4(0n, X86_CR4_SMEP);
  t.is(p.access('fetch'), 'fetched');
});

test('CR4.SMAP and RFLAGS.AC (STAC/CLAC) take effect at once on a cached user translation', (t) => {
  const p = new Page(baseCase({ leafUs: true, smap: false }), t);
  t.is(p.access('read'), readA, 'primes the data TLB');
  p.movCr4(X86_CR4_SMAP, 0n);
  t.is(p.access('read'), PF(PFERR_PRESENT));
  t.is(p.access('write'), PF(PFERR_PRESENT | PFERR_WRITE));
  p.guest(STAC);
  t.is(p.access('write'), 'written', 'AC=1');
  p.guest(CLAC);
  t.is(p.access('read'), PF(PFERR_PRESENT), 'AC=0 again, after a successful AC=1 access');
  p.movCr4(0n, X86_CR4_SMAP);
  t.is(p.access('read'), 'read 0x77');
});

test('CR4.PGE: a global translation may outlive MOV to CR3 but not a change of PGE; G without PGE is not global', (t) => {
  const p = new Page(baseCase(), t);
  p.setLeaf(p.leaf | ENTRY_G);
  p.movCr3();
  t.is(p.access('read'), readA);
  p.moveToFrameB();
  p.movCr3();
  const afterCr3 = p.access('read');
  t.true(afterCr3 === readA || afterCr3 === readB, `old or new frame after MOV to CR3 (got ${afterCr3})`);
  t.log(`a global translation ${afterCr3 === readA ? 'survived' : 'did not survive'} MOV to CR3`);
  p.movCr4(0n, X86_CR4_PGE);
  t.is(p.access('read'), readB, 'clearing CR4.PGE flushed it');

  // PGE = 0: G is ignored, so MOV to CR3 must drop the translation.
  p.setLeaf(p.leaf & ~BigInt(FRAME_B['4k']) | BigInt(LAYOUTS['4k'].frame));
  p.movCr3();
  t.is(p.access('read'), readA);
  p.moveToFrameB();
  p.movCr3();
  t.is(p.access('read'), readB, 'G without CR4.PGE');

  // PGE 0 → 1 flushes too.
  p.setLeaf(p.leaf & ~BigInt(FRAME_B['4k']) | BigInt(LAYOUTS['4k'].frame));
  p.movCr3();
  t.is(p.access('read'), readA);
  p.moveToFrameB();
  p.movCr4(X86_CR4_PGE, 0n);
  t.is(p.access('read'), readB, 'setting CR4.PGE flushed it');
});

test('without a flush: a changed frame may or may not be used; a rights upgrade faults at most once; P 0→1 needs nothing', (t) => {
  const p = new Page(baseCase(), t);
  t.is(p.access('read'), readA);
  p.moveToFrameB();
  const stale = p.access('read');
  t.true(stale === readA || stale === readB, `old or new frame (got ${stale})`);
  t.log(`without a flush the ${stale === readA ? 'old' : 'new'} frame was used`);

  // R/W 0 → 1 (§4.10.4.3): at most one spurious #PF, after which the write goes through.
  const w = new Page(baseCase({ leafRw: false }), t);
  t.is(w.access('read'), readA);
  w.setLeaf(w.leaf | ENTRY_RW);
  const first = w.access('write');
  t.true(first === 'written' || first === SUP_WRITE_RO, `write after R/W 0→1 (got ${first})`);
  if (first !== 'written') t.is(w.access('write'), 'written', 'the #PF invalidated the stale entry');

  // XD 1 → 0: the same for a fetch.
  const x = new Page(baseCase({ leafNx: true }), t);
  t.is(x.access('fetch'), PF(PFERR_PRESENT | PFERR_FETCH));
  x.setLeaf(x.leaf & ~ENTRY_XD);
  t.is(x.access('fetch'), 'fetched', 'the earlier #PF left no entry behind');
  x.setLeaf(x.leaf | ENTRY_XD);
  x.guest(INVLPG_RBX);
  t.is(x.access('fetch'), PF(PFERR_PRESENT | PFERR_FETCH));

  // U/S 0 → 1 with SMEP = 0: a CPL3 read after at most one spurious fault.
  const u = new Page(baseCase({ smep: false }), t);
  t.is(u.access('read'), readA, 'cached as a supervisor page');
  u.setLeaf(u.leaf | ENTRY_US);
  u.asUser(() => {
    const user = u.access('read');
    t.true(user === readA || user === PF(PFERR_PRESENT | PFERR_USER), `CPL3 read after U/S 0→1 (got ${user})`);
    if (user !== readA) t.is(u.access('read'), readA);
  });

  // P 0 → 1: no TLB entry is ever made from a not-present entry.
  const n = new Page(baseCase(), t);
  n.setLeaf(n.leaf & ~ENTRY_P);
  n.movCr3();
  t.is(n.access('read'), PF(0));
  n.setLeaf(n.leaf | ENTRY_P);
  t.is(n.access('read'), readA);
});

test('INVLPG: a non-canonical operand makes it a NOP; at CPL3 it is #GP(0) (SDM vol. 2A INVLPG)', (t) => {
  const p = new Page(baseCase(), t);
  const cpu = p.rig.m.cpu;
  cpu.writeGpr(3, 0x8000_0000_0000_0000n);
  t.is(runGuest(cpu, p.rig.m.memory, OPS_AT, [...INVLPG_RBX, ...CPUID]).kind, 'cpuid', 'no fault');
  p.asUser(() => {
    cpu.setRip(BigInt(USER_CODE + 0x120));
    p.rig.m.memory.writeBytes(USER_CODE + 0x120, Uint8Array.from([...INVLPG_RBX, ...CPUID]));
    t.deepEqual(cpu.run(8), { kind: 'exception', vector: 13, errorCode: 0 });
  });
});
