/**
 * Focused MMU tests (the full permission matrix is written separately against the public API):
 * 4 KiB / 2 MiB / 1 GiB walks, accessed and dirty bits, not-present and reserved-bit faults,
 * U/S, R/W with CR0.WP, NX, SMEP, SMAP with RFLAGS.AC, the I/D error-code bit, TLB flush rules,
 * translate(), and unbacked physical addresses. Expected error codes: SDM vol. 3A §4.7.
 */
import test from 'ava';
import type { Intercept } from '../../host/index.js';
import {
  buildMachine, CODE, CR0_WP, CR4_PGE, CR4_SMAP, CR4_SMEP, EFER_LMA, EFER_LME, EFER_SCE, PML4, PTE_A, PTE_D, PTE_G, PTE_P,
  PTE_PS, PTE_RW, PTE_US, PTE_XD, runAt, USER_CODE, EFER_NXE, type Machine,
} from './harness/machine.js';

/** The test region: PML4 slot 1 (linear 0x80_0000_0000), with tables built here. */
const BASE = 0x80_0000_0000;
const PDPT_T = 0x80_0000, PD_T = 0x80_1000, PT_T = 0x80_2000;
/** Physical frames the test pages map to. */
const FRAME_A = 0x90_0000, FRAME_B = 0x91_0000;
const LIN_4K = BASE; // PDPT[0] → PD[0] → PT[0]
const LIN_2M = BASE + 0x20_0000; // PDPT[0] → PD[1], 2 MiB page
const LIN_1G = BASE + 0x4000_0000; // PDPT[1], 1 GiB page
const TABLE = PTE_P | PTE_RW | PTE_US;

const READ = '488b03f4'; // mov rax, [rbx]; hlt
const WRITE = '488903f4'; // mov [rbx], rax; hlt
const FETCH = 'ffd3f4'; // call rbx; hlt

interface RegionOptions {
  leaf4k?: bigint;
  pde?: bigint;
  pdpte?: bigint;
  pml4e?: bigint;
}

function region(m: Machine, o: RegionOptions = {}): void {
  m.memory.write64(PML4 + 8, o.pml4e ?? BigInt(PDPT_T) | TABLE);
  m.memory.write64(PDPT_T, o.pdpte ?? BigInt(PD_T) | TABLE);
  m.memory.write64(PDPT_T + 8, 0n | PTE_P | PTE_RW | PTE_PS); // 1 GiB page at physical 0
  m.memory.write64(PD_T, o.pde ?? BigInt(PT_T) | TABLE);
  m.memory.write64(PD_T + 8, 0n | PTE_P | PTE_RW | PTE_PS); // 2 MiB page at physical 0
  m.memory.write64(PT_T, o.leaf4k ?? BigInt(FRAME_A) | PTE_P | PTE_RW);
  m.memory.write64(FRAME_A, 0x1111n);
  m.memory.write64(FRAME_B, 0x2222n);
  m.memory.writeBytes(FRAME_A + 0x800, Uint8Array.of(0xc3)); // ret, for fetches
}

function access(m: Machine, code: string, lin: number, user = false): Intercept {
  m.cpu.writeGpr(3, BigInt(lin));
  return runAt(m, user ? code.replace(/f4$/, '0fa2') : code, 100, user ? USER_CODE : CODE);
}

function pf(errorCode: number, lin: number): Intercept {
  return { kind: 'exception', vector: 14, errorCode, address: BigInt(lin) };
}

function machine(opts: Parameters<typeof buildMachine>[0] = {}): Machine {
  const m = buildMachine(opts);
  m.cpu.exceptionBitmap = 1 << 14;
  region(m);
  return m;
}

test('4 KiB, 2 MiB and 1 GiB pages translate', (t) => {
  const m = machine();
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x1111n);
  m.memory.write64(0x12_3458, 0xabcdn);
  t.deepEqual(access(m, READ, LIN_2M + 0x12_3458), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0xabcdn);
  t.deepEqual(access(m, READ, LIN_1G + 0x12_3458), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0xabcdn);
  t.deepEqual(m.cpu.translate(BigInt(LIN_1G + 0x3ff0_0000), 'read'), { gpa: 0x3ff0_0000 });
});

test('accessed bits on every level and dirty on the leaf, set as hardware does', (t) => {
  const m = machine();
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  for (const [name, addr] of [['PML4E', PML4 + 8], ['PDPTE', PDPT_T], ['PDE', PD_T], ['PTE', PT_T]] as const) {
    t.is(m.memory.read64(addr) & PTE_A, PTE_A, `${name}.A after a read`);
    t.is(m.memory.read64(addr) & PTE_D, 0n, `${name}.D clear after a read`);
  }
  t.deepEqual(access(m, WRITE, LIN_4K), { kind: 'hlt' });
  t.is(m.memory.read64(PT_T) & PTE_D, PTE_D, 'the leaf is dirty after a write through the read-filled TLB entry');
  t.is(m.memory.read64(PD_T) & PTE_D, 0n, 'non-leaf entries never get D');
  t.deepEqual(access(m, WRITE, LIN_2M), { kind: 'hlt' });
  t.is(m.memory.read64(PD_T + 8) & (PTE_A | PTE_D), PTE_A | PTE_D, 'a 2 MiB leaf gets A and D');
});

test('a faulting access sets no accessed bits', (t) => {
  const m = machine();
  region(m, { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_US }); // read-only
  t.deepEqual(access(m, WRITE, LIN_4K), pf(0x3, LIN_4K));
  for (const addr of [PML4 + 8, PDPT_T, PD_T, PT_T]) t.is(m.memory.read64(addr) & PTE_A, 0n);
  t.is(m.cpu.readCr(2), 0n, 'CR2 is written at delivery, not for an intercepted #PF');
});

test('not-present entries at every level fault with P=0 and the access bits', (t) => {
  const cases: [string, RegionOptions][] = [
    ['PML4E', { pml4e: 0n }], ['PDPTE', { pdpte: 0n }], ['PDE', { pde: 0n }], ['PTE', { leaf4k: BigInt(FRAME_A) }],
  ];
  for (const [name, o] of cases) {
    const m = machine();
    region(m, o);
    t.deepEqual(access(m, READ, LIN_4K + 8), pf(0x0, LIN_4K + 8), `${name}, read`);
    t.deepEqual(access(m, WRITE, LIN_4K + 8), pf(0x2, LIN_4K + 8), `${name}, write`);
    t.deepEqual(access(m, FETCH, LIN_4K + 0x800), pf(0x10, LIN_4K + 0x800), `${name}, fetch (I/D: EFER.NXE is on)`);
  }
  const u = buildMachine({ user: true });
  u.cpu.exceptionBitmap = 1 << 14;
  region(u, { pde: 0n });
  t.deepEqual(access(u, READ, LIN_4K, true), pf(0x4, LIN_4K), 'user read: U/S set');
  t.deepEqual(access(u, WRITE, LIN_4K, true), pf(0x6, LIN_4K), 'user write');
});

test('reserved bits: above MAXPHYADDR, PS in a PML4E, 2 MiB bits 20:13, XD without EFER.NXE', (t) => {
  const cases: [string, RegionOptions][] = [
    ['PTE bit 51', { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_RW | (1n << 51n) }],
    ['PTE bit 46 (MAXPHYADDR = 46)', { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_RW | (1n << 46n) }],
    ['PDE bit 51', { pde: BigInt(PT_T) | TABLE | (1n << 51n) }],
    ['PS in a PML4E', { pml4e: BigInt(PDPT_T) | TABLE | PTE_PS }],
    ['2 MiB PDE bit 13', { pde: TABLE | PTE_PS | (1n << 13n) }],
    ['1 GiB PDPTE bit 29', { pdpte: TABLE | PTE_PS | (1n << 29n) }],
  ];
  for (const [name, o] of cases) {
    const m = machine();
    region(m, o);
    t.deepEqual(access(m, READ, LIN_4K), pf(0x9, LIN_4K), name);
    t.deepEqual(m.cpu.translate(BigInt(LIN_4K), 'write'), { vector: 14, errorCode: 0xb }, `${name} via translate`);
  }
  const noNx = buildMachine({ efer: EFER_SCE | EFER_LME | EFER_LMA });
  noNx.cpu.exceptionBitmap = 1 << 14;
  region(noNx, { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_XD });
  t.deepEqual(access(noNx, READ, LIN_4K), pf(0x9, LIN_4K), 'XD is a reserved bit while EFER.NXE = 0');
});

test('U/S and R/W: user accesses need a user page, writes a writable one', (t) => {
  const u = buildMachine({ user: true });
  u.cpu.exceptionBitmap = 1 << 14;
  region(u, { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_RW });
  t.deepEqual(access(u, READ, LIN_4K, true), pf(0x5, LIN_4K), 'user read of a supervisor page');
  region(u, { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_US });
  t.deepEqual(access(u, READ, LIN_4K, true), { kind: 'cpuid', leaf: 0x1111, subleaf: 0 });
  t.deepEqual(access(u, WRITE, LIN_4K, true), pf(0x7, LIN_4K), 'user write of a read-only page');
  region(u, { pde: BigInt(PT_T) | PTE_P | PTE_US, leaf4k: BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_US });
  t.deepEqual(access(u, WRITE, LIN_4K, true), pf(0x7, LIN_4K), 'R/W is the AND of all levels');
});

test('CR0.WP: a supervisor write to a read-only page faults with WP=1 and succeeds with WP=0', (t) => {
  const m = machine();
  region(m, { leaf4k: BigInt(FRAME_A) | PTE_P });
  m.cpu.writeGpr(0, 0x5555n);
  t.deepEqual(access(m, WRITE, LIN_4K), pf(0x3, LIN_4K));
  m.cpu.commitCr(0, m.cpu.readCr(0) & ~CR0_WP);
  t.deepEqual(access(m, WRITE, LIN_4K), { kind: 'hlt' });
  t.is(m.memory.read64(FRAME_A), 0x5555n);
  m.cpu.commitCr(0, m.cpu.readCr(0) | CR0_WP);
  t.deepEqual(access(m, WRITE, LIN_4K), pf(0x3, LIN_4K), 'setting WP again flushes the writable translation');
});

test('NX: a fetch from an XD page faults with I/D; reads do not', (t) => {
  const m = machine();
  region(m, { leaf4k: BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_XD });
  t.deepEqual(access(m, FETCH, LIN_4K + 0x800), pf(0x11, LIN_4K + 0x800));
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
});

const USER_LEAF = BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_US;

test('SMEP: a CPL 0 fetch from a user page faults (P|I/D) with SMEP and runs without', (t) => {
  const m = machine();
  region(m, { leaf4k: USER_LEAF });
  t.deepEqual(access(m, FETCH, LIN_4K + 0x800), pf(0x11, LIN_4K + 0x800));
  m.cpu.commitCr(4, m.cpu.readCr(4) & ~CR4_SMEP);
  t.deepEqual(access(m, FETCH, LIN_4K + 0x800), { kind: 'hlt' });
});

test('SMAP: CPL 0 data access to a user page faults unless RFLAGS.AC; CLAC re-arms it', (t) => {
  const m = machine();
  region(m, { leaf4k: USER_LEAF });
  t.deepEqual(access(m, READ, LIN_4K), pf(0x1, LIN_4K));
  t.deepEqual(access(m, WRITE, LIN_4K), pf(0x3, LIN_4K));
  // stac; mov rax, [rbx]; hlt
  t.deepEqual(access(m, '0f01cb488b03f4', LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x1111n);
  // clac; mov rax, [rbx]; hlt — the translation cached under AC=1 must not serve AC=0
  t.deepEqual(access(m, '0f01ca488b03f4', LIN_4K), pf(0x1, LIN_4K));
  m.cpu.commitCr(4, m.cpu.readCr(4) & ~CR4_SMAP);
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
});

test('the I/D bit is reported only while EFER.NXE or CR4.SMEP is set', (t) => {
  // At CPL 3, touching only the user region and the test region (the boot tables' XD bits
  // elsewhere would be reserved bits without EFER.NXE).
  const m = machine({ user: true, efer: EFER_SCE | EFER_LME | EFER_LMA, cr4: (1n << 5n) | CR4_PGE });
  region(m, { leaf4k: BigInt(FRAME_A) });
  t.deepEqual(access(m, FETCH, LIN_4K + 0x800, true), pf(0x4, LIN_4K + 0x800));
  m.cpu.commitCr(4, m.cpu.readCr(4) | CR4_SMEP);
  t.deepEqual(access(m, FETCH, LIN_4K + 0x800, true), pf(0x14, LIN_4K + 0x800));
  m.cpu.commitCr(4, m.cpu.readCr(4) & ~CR4_SMEP);
  m.cpu.commitMsr(0xc0000080, EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE);
  t.deepEqual(access(m, FETCH, LIN_4K + 0x800, true), pf(0x14, LIN_4K + 0x800));
});

test('TLB: a changed PTE is not seen until INVLPG or a CR3 write; global entries survive CR3 writes', (t) => {
  const m = machine();
  m.cpu.commitCr(4, m.cpu.readCr(4) & ~CR4_SMAP);
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x1111n);
  m.memory.write64(PT_T, BigInt(FRAME_B) | PTE_P | PTE_RW | PTE_US);
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x1111n, 'the cached translation is still used');
  // invlpg [rbx]; mov rax, [rbx]; hlt
  t.deepEqual(access(m, '0f013b488b03f4', LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x2222n, 'INVLPG dropped it');

  m.memory.write64(PT_T, BigInt(FRAME_A) | PTE_P | PTE_RW | PTE_US | PTE_G);
  m.cpu.commitCr(3, m.cpu.readCr(3));
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x1111n);
  m.memory.write64(PT_T, BigInt(FRAME_B) | PTE_P | PTE_RW | PTE_US | PTE_G);
  m.cpu.commitCr(3, m.cpu.readCr(3));
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x1111n, 'a global translation survives MOV to CR3 with CR4.PGE');
  m.cpu.commitCr(4, m.cpu.readCr(4) & ~CR4_PGE);
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x2222n, 'clearing CR4.PGE flushes everything');
});

test('translate() walks like the access would, without side effects', (t) => {
  const m = machine();
  t.deepEqual(m.cpu.translate(BigInt(LIN_4K + 0x123), 'read'), { gpa: FRAME_A + 0x123 });
  t.deepEqual(m.cpu.translate(BigInt(LIN_4K + 0x123), 'read', 3), { vector: 14, errorCode: 0x5 });
  region(m, { leaf4k: USER_LEAF });
  t.deepEqual(m.cpu.translate(BigInt(LIN_4K), 'fetch', 0), { vector: 14, errorCode: 0x11 }, 'SMEP');
  t.deepEqual(m.cpu.translate(BigInt(LIN_4K), 'read', 0), { vector: 14, errorCode: 0x1 }, 'SMAP');
  t.deepEqual(m.cpu.translate(BigInt(LIN_4K), 'write', 3), { gpa: FRAME_A });
  t.deepEqual(m.cpu.translate(BigInt(CODE), 'read', 3), { vector: 14, errorCode: 0x5 });
  t.deepEqual(m.cpu.translate(BigInt(LIN_4K), 'write', 3), { gpa: FRAME_A });
  for (const addr of [PML4 + 8, PDPT_T, PD_T, PT_T]) t.is(m.memory.read64(addr) & (PTE_A | PTE_D), 0n);
});

test('physical addresses outside memory read as all ones and drop writes', (t) => {
  const m = machine();
  m.cpu.commitCr(4, m.cpu.readCr(4) & ~CR4_SMAP);
  const outside = BigInt(m.memory.size + 0x10_0000);
  region(m, { leaf4k: outside | PTE_P | PTE_RW | PTE_US });
  m.cpu.writeGpr(0, 0x1234n);
  t.deepEqual(access(m, WRITE, LIN_4K), { kind: 'hlt' });
  t.deepEqual(access(m, READ, LIN_4K), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0xffff_ffff_ffff_ffffn);
  region(m, { pde: outside | TABLE });
  m.cpu.commitCr(3, m.cpu.readCr(3));
  t.deepEqual(access(m, READ, LIN_4K), pf(0x9, LIN_4K), 'a page table outside memory reads as all ones: reserved bits');
});

test('a read-modify-write faults as a write, before anything changes', (t) => {
  const m = machine();
  region(m, { leaf4k: BigInt(FRAME_A) | PTE_P });
  const flags = m.cpu.getRflags();
  // add qword [rbx], 1; hlt
  t.deepEqual(access(m, '48830301f4', LIN_4K), pf(0x3, LIN_4K));
  t.is(m.cpu.getRflags(), flags, 'flags unchanged');
  t.is(m.memory.read64(FRAME_A), 0x1111n);
});
