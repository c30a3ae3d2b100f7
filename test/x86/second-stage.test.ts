/**
 * The second stage (EPT) in the core: per-frame read/write/execute with MBEC's user/supervisor
 * execute split, checked on data accesses, fetches, the walker's table reads and its A/D writes,
 * and reported as an `ept_violation` intercept. Expected qualifications are composed here from
 * the SDM's table "Exit Qualification for EPT Violations" (vol. 3C table 28-7): bits 0-2 access,
 * 3-6 the frame's R/W/X/UX, 7 GVA valid, 8 final translation (clear for a paging-structure access
 * or an A/D update), 9-11 the guest paging's U/S, R/W and XD of the page.
 */
import test from 'ava';
import { layout as L } from '../../host/vmm/boot/index.js';
import type { Intercept } from '../../host/index.js';
import { S2_EXEC, S2_READ, S2_USER_EXEC, S2_WRITE } from '../../host/index.js';
import {
  buildMachine, CODE, CR4_SMEP, PML4, PTE_A, PTE_D, PTE_P, PTE_RW, PTE_US, runAt, type Machine,
} from './harness/machine.js';

const BASE = 0x80_0000_0000;
const PDPT_T = 0x80_0000, PD_T = 0x80_1000, PT_T = 0x80_2000;
const FRAME_A = 0x90_0000;
const TABLE = PTE_P | PTE_RW | PTE_US;
const LIN = BASE;

const READ = '488b03f4'; // mov rax, [rbx]; hlt
const WRITE = '488903f4'; // mov [rbx], rax; hlt
const FETCH = 'ffd3f4'; // call rbx; hlt

// Qualification bits (SDM vol. 3C table 28-7).
const Q_READ = 1 << 0, Q_WRITE = 1 << 1, Q_INSTR = 1 << 2;
const Q_PR = 1 << 3, Q_PW = 1 << 4, Q_PX = 1 << 5, Q_PUX = 1 << 6;
const Q_GVA = 1 << 7, Q_FINAL = 1 << 8, Q_USER = 1 << 9, Q_WRITABLE = 1 << 10;

function machine(leaf = BigInt(FRAME_A) | PTE_P | PTE_RW): Machine {
  const m = buildMachine();
  m.memory.write64(PML4 + 8, BigInt(PDPT_T) | TABLE);
  m.memory.write64(PDPT_T, BigInt(PD_T) | TABLE);
  m.memory.write64(PD_T, BigInt(PT_T) | TABLE);
  m.memory.write64(PT_T, leaf);
  m.memory.write64(FRAME_A, 0x1111n);
  m.memory.writeBytes(FRAME_A + 0x800, Uint8Array.of(0xc3)); // ret
  return m;
}

function access(m: Machine, code: string, lin: number): Intercept {
  m.cpu.writeGpr(3, BigInt(lin));
  return runAt(m, code);
}

function frame(gpa: number): number {
  return gpa / 4096;
}

function violation(gpa: number, gva: number, access: 'read' | 'write' | 'fetch', qualification: number): Intercept {
  return { kind: 'ept_violation', gpa: BigInt(gpa), gva: BigInt(gva), access, qualification };
}

test('no intercept while every frame has every right', (t) => {
  const m = machine();
  t.deepEqual(access(m, READ, LIN + 8), { kind: 'hlt' });
  t.deepEqual(access(m, WRITE, LIN + 8), { kind: 'hlt' });
  t.deepEqual(access(m, FETCH, LIN + 0x800), { kind: 'hlt' });
});

test('a read of an unreadable frame: GPA, GVA, read, final translation, the page R/W in bit 10', (t) => {
  const m = machine();
  m.cpu.writeGpr(0, 0x55n);
  m.memory.secondStage.protect(frame(FRAME_A), 1, 0);
  t.deepEqual(access(m, READ, LIN + 8), violation(FRAME_A + 8, LIN + 8, 'read', Q_READ | Q_GVA | Q_FINAL | Q_WRITABLE));
  t.is(m.cpu.readGpr(0), 0x55n, 'the load did not happen');
  t.is(m.cpu.getRip(), BigInt(CODE), 'RIP stays on the instruction');
});

test('a read-only frame stays read-only with CR0.WP cleared, and is unchanged', (t) => {
  // A dirty leaf: a read fills the TLB in a way that would allow a write, but for the second stage.
  const m = machine(BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_A | PTE_D);
  const s = m.cpu.getSregs();
  m.cpu.commitCr(0, s.cr0 & ~(1n << 16n));
  m.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_EXEC);
  t.deepEqual(access(m, READ, LIN + 8), { kind: 'hlt' }, 'reads allowed');
  m.cpu.writeGpr(0, 0xbadn);
  t.deepEqual(access(m, WRITE, LIN + 8), violation(FRAME_A + 8, LIN + 8, 'write', Q_WRITE | Q_PR | Q_PX | Q_GVA | Q_FINAL | Q_WRITABLE));
  t.is(m.memory.read64(FRAME_A + 8), 0n);
});

test('fetch from a non-executable frame (no MBEC: one execute bit)', (t) => {
  const m = machine();
  m.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_WRITE | S2_USER_EXEC);
  t.deepEqual(access(m, FETCH, LIN + 0x800), violation(FRAME_A + 0x800, LIN + 0x800, 'fetch', Q_INSTR | Q_PR | Q_PW | Q_GVA | Q_FINAL | Q_WRITABLE));
  t.is(m.cpu.getRip(), BigInt(LIN + 0x800), 'the call happened; the fetch at its target did not');
});

test('MBEC: a supervisor page needs X, a user page UX — by the page, not by CPL', (t) => {
  // A supervisor page: X governs, UX does not.
  const m = machine();
  m.memory.secondStage.setMbec(true);
  m.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_WRITE | S2_USER_EXEC);
  t.deepEqual(access(m, FETCH, LIN + 0x800), violation(FRAME_A + 0x800, LIN + 0x800, 'fetch',
    Q_INSTR | Q_PR | Q_PW | Q_PUX | Q_GVA | Q_FINAL | Q_WRITABLE));

  // A user page fetched at CPL0 with SMEP off: UX (EPT bit 10) governs, X does not.
  const u = machine(BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_US);
  u.cpu.commitCr(4, u.cpu.getSregs().cr4 & ~CR4_SMEP);
  u.memory.secondStage.setMbec(true);
  u.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_EXEC);
  t.deepEqual(access(u, FETCH, LIN + 0x800), violation(FRAME_A + 0x800, LIN + 0x800, 'fetch',
    Q_INSTR | Q_PR | Q_PX | Q_GVA | Q_FINAL | Q_USER | Q_WRITABLE), 'clearing UX stops a CPL0 jump into a user page');
  u.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_USER_EXEC);
  t.deepEqual(access(u, FETCH, LIN + 0x800), { kind: 'hlt' }, 'clearing only kernel execute does not (the ret2usr subtlety)');

  // Without MBEC, UX is ignored and X governs the user page too.
  const n = machine(BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_US);
  n.cpu.commitCr(4, n.cpu.getSregs().cr4 & ~CR4_SMEP);
  n.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_EXEC);
  t.deepEqual(access(n, FETCH, LIN + 0x800), { kind: 'hlt' });
  n.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_USER_EXEC);
  t.is((access(n, FETCH, LIN + 0x800) as { kind: string }).kind, 'ept_violation');
});

test('the walker reads each paging-structure entry under the second stage (bit 8 clear)', (t) => {
  const m = machine();
  m.memory.secondStage.protect(frame(PT_T), 1, S2_WRITE | S2_EXEC);
  t.deepEqual(access(m, READ, LIN + 8), violation(PT_T, LIN + 8, 'read', Q_READ | Q_PW | Q_PX | Q_GVA));
  t.is(m.memory.read64(PD_T) & PTE_A, 0n, 'no accessed bit was set on the way');
});

test('accessed/dirty updates are writes to the table page: a locked page table refuses them', (t) => {
  const m = machine();
  m.memory.secondStage.protect(frame(PT_T), 1, S2_READ);
  t.deepEqual(access(m, READ, LIN + 8), violation(PT_T, LIN + 8, 'write', Q_WRITE | Q_PR | Q_GVA));
  t.is(m.memory.read64(PT_T) & PTE_A, 0n, 'the PTE is unchanged');
  // With A and D already set the walker writes nothing, and the read-only table serves.
  m.memory.secondStage.protect(frame(PT_T), 1, S2_READ | S2_WRITE | S2_EXEC | S2_USER_EXEC);
  m.memory.write64(PT_T, BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_A | PTE_D);
  m.memory.secondStage.protect(frame(PT_T), 1, S2_READ);
  m.cpu.commitCr(3, m.cpu.readCr(3));
  t.deepEqual(access(m, READ, LIN + 8), { kind: 'hlt' });
  t.deepEqual(access(m, WRITE, LIN + 8), { kind: 'hlt' }, 'a write through an already dirty leaf updates nothing');
});

test('a protection installed after the TLB cached the page is seen (translated code included)', (t) => {
  const m = machine();
  m.cpu.writeGpr(0, 0x77n);
  const before = m.cpu.translatedRuns;
  t.deepEqual(access(m, WRITE, LIN + 8), { kind: 'hlt' });
  t.deepEqual(access(m, WRITE, LIN + 8), { kind: 'hlt' });
  t.true(m.cpu.translatedRuns > before, 'the store ran as translated code');
  m.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_EXEC | S2_USER_EXEC);
  m.cpu.writeGpr(0, 0x88n);
  t.is((access(m, WRITE, LIN + 8) as { kind: string }).kind, 'ept_violation');
  t.is(m.memory.read64(FRAME_A + 8), 0x77n);
  m.memory.secondStage.protect(frame(FRAME_A), 1, S2_READ | S2_WRITE | S2_EXEC | S2_USER_EXEC);
  t.deepEqual(access(m, WRITE, LIN + 8), { kind: 'hlt' }, 'lifted again');
  t.is(m.memory.read64(FRAME_A + 8), 0x88n);
});

test('a stack the second stage refuses stops exception delivery, handing the event back', (t) => {
  const m = buildMachine();
  // Every gate of the boot IDT is on IST1: the exception stack, just below the fault record.
  const top = L.exceptionStackTop(0);
  const first = top - (top % 16) - 8;
  m.memory.secondStage.protect(Math.floor(first / 4096), 1, S2_READ);
  const ic = runAt(m, '0f0b'); // ud2
  if (ic.kind !== 'ept_violation') return t.fail(`expected ept_violation, got ${ic.kind}`);
  t.is(ic.access, 'write');
  t.is(ic.qualification & (Q_READ | Q_WRITE | Q_INSTR | Q_GVA | Q_FINAL | Q_PR | Q_PW), Q_WRITE | Q_GVA | Q_FINAL | Q_PR);
  t.is(ic.gva, BigInt(first), 'the first push (SS), below the 16-aligned IST top');
  t.is(ic.gpa, BigInt(first));
  t.deepEqual(ic.vectoring, { vector: 6, errorCode: undefined, address: 0n });
  t.is(m.cpu.getRip(), BigInt(CODE), 'nothing was delivered');
});
