/**
 * Segment registers in 64-bit mode, as a guest that brings its own GDT uses them (SDM vol. 2 MOV,
 * RET; vol. 3A §3.4.5, §5.8): LGDT, MOV DS/ES/SS, a far return to reload CS, MOV r/m, Sreg to read
 * a selector back — and each check the SDM lists for the loads, with the fault and error code it
 * names. The GDT is kvm-unit-tests' layout (kernel code at 0x08, data at 0x10), unlike the boot
 * image's Linux layout, so that nothing here passes by accident of the boot GDT.
 */
import test, { type ExecutionContext } from 'ava';
import { buildMachine, CODE, gate, KERNEL_CS, runAt, SCRATCH, setGate, type Machine } from './harness/machine.js';

const GDT_AT = SCRATCH;
const GDTR_AT = SCRATCH + 0x100;
const HANDLER = CODE + 0x800; // hlt
/** kernel code 64 (not yet accessed: type 0xA), kernel data, user data, user code 64, a data segment not present. */
const DESCRIPTORS = [0n, 0x00af9a000000ffffn, 0x00cf92000000ffffn, 0x00cff2000000ffffn, 0x00affa000000ffffn, 0x00cf12000000ffffn];

function withOwnGdt(): Machine {
  const m = buildMachine();
  DESCRIPTORS.forEach((d, k) => m.memory.write64(GDT_AT + 8 * k, d));
  const gdtr = new Uint8Array(10);
  new DataView(gdtr.buffer).setUint16(0, DESCRIPTORS.length * 8 - 1, true);
  new DataView(gdtr.buffer).setBigUint64(2, BigInt(GDT_AT), true);
  m.memory.writeBytes(GDTR_AT, gdtr);
  m.memory.writeBytes(HANDLER, Uint8Array.of(0xf4));
  // The boot IDT's gates name 0x10, which is this GDT's data segment: the tests that expect a
  // fault intercept it with the exception bitmap; the handler gate names the new code segment.
  for (const v of [6, 11, 12, 13]) setGate(m.memory, v, gate(BigInt(HANDLER), 0x08, 0xe, 0));
  return m;
}

/** lgdt [rbx] (RBX = the GDTR image), then `code`. */
function afterLgdt(m: Machine, code: string, budget = 100) {
  m.cpu.writeGpr(3, BigInt(GDTR_AT));
  return runAt(m, '0f0113' + code, budget);
}

test('a guest installs its own GDT: LGDT, MOV DS/ES/SS, a far return reloads CS, MOV r, Sreg reads them back', (t) => {
  const m = withOwnGdt();
  // mov eax, 0x10; mov ds, eax; mov es, eax; mov ss, eax; push 0x08; lea rax, [rip+3]; push rax;
  // retfq; mov ecx, cs; mov edx, ss; mov [rbx+8], ds; hlt
  const r = afterLgdt(m, 'b8100000008ed88ec08ed06a08488d05030000005048cb8cc98cd28c5b08f4');
  t.deepEqual(r, { kind: 'hlt' });
  const s = m.cpu.getSregs();
  t.is(s.cs.selector, 0x08);
  t.true(s.cs.l, 'still 64-bit code');
  t.is(s.ds.selector, 0x10);
  t.is(s.es.selector, 0x10);
  t.is(s.ss.selector, 0x10);
  t.is(m.cpu.readGpr(1), 0x08n, 'MOV ECX, CS');
  t.is(m.cpu.readGpr(2), 0x10n, 'MOV EDX, SS');
  t.is(m.memory.read64(GDTR_AT + 8) & 0xffffn, 0x10n, 'MOV m16, DS stores 16 bits');
  t.is(m.memory.read64(GDTR_AT + 8) >> 16n, 0n, '... and nothing beyond');
  t.is((m.memory.read64(GDT_AT + 8) >> 40n) & 0xffn, 0x9bn, 'loading CS set the descriptor\'s accessed bit');
});

test('MOV r, Sreg: 16 bits with 66, zero-extended otherwise; a memory destination is 16 bits', (t) => {
  const m = buildMachine();
  m.cpu.writeGpr(0, 0xffff_ffff_ffff_ffffn);
  m.cpu.writeGpr(6, 0xffff_ffff_ffff_ffffn);
  // mov ax, es; mov esi, es; hlt
  t.deepEqual(runAt(m, '668cc08cc6f4'), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0xffff_ffff_ffff_0018n, 'MOV AX, ES writes AX only');
  t.is(m.cpu.readGpr(6), 0x18n, 'MOV ESI, ES zero-extends');
});

type LoadCase = [what: string, selector: number, fault: { vector: number; errorCode: number } | null];

/** Runs `code` (a MOV Sreg, EAX; HLT) after LGDT once per case, faults intercepted by the bitmap. */
function checkLoads(t: ExecutionContext, code: string, bitmap: number, cases: LoadCase[], loaded: (m: Machine) => number): void {
  for (const [what, sel, fault] of cases) {
    const m = withOwnGdt();
    m.cpu.exceptionBitmap = bitmap;
    m.cpu.writeGpr(0, BigInt(sel));
    const r = afterLgdt(m, code);
    t.deepEqual(r, fault === null ? { kind: 'hlt' } : { kind: 'exception', ...fault }, what);
    if (fault === null) t.is(loaded(m), sel, what);
  }
}

test('MOV SS checks RPL = CPL, a writable data segment of DPL = CPL, presence; MOV DS checks readability and privilege', (t) => {
  checkLoads(t, '8ed0f4', (1 << 12) | (1 << 13), [ // mov ss, eax; hlt
    ['SS ← user data (DPL 3) at CPL 0', 0x18, { vector: 13, errorCode: 0x18 }],
    ['SS ← code', 0x08, { vector: 13, errorCode: 0x08 }],
    ['SS ← not-present data', 0x28, { vector: 12, errorCode: 0x28 }],
    ['SS ← beyond the GDT limit', 0x30, { vector: 13, errorCode: 0x30 }],
    ['SS ← RPL 3 selector of kernel data', 0x13, { vector: 13, errorCode: 0x10 }],
    ['SS ← null at CPL 0 (allowed in 64-bit mode)', 0, null],
  ], (m) => m.cpu.getSregs().ss.selector);
  checkLoads(t, '8ed8f4', (1 << 11) | (1 << 13), [ // mov ds, eax; hlt
    ['DS ← readable code', 0x08, null],
    ['DS ← user data (DPL 3) at CPL 0', 0x18, null],
    ['DS ← not present', 0x28, { vector: 11, errorCode: 0x28 }],
    ['DS ← beyond the limit', 0x38, { vector: 13, errorCode: 0x38 }],
    ['DS ← null', 0, null],
  ], (m) => m.cpu.getSregs().ds.selector);
});

test('MOV CS and the nonexistent segment registers 6 and 7 are #UD', (t) => {
  for (const code of ['8ec8', '8cf0', '8ef8']) {
    const m = buildMachine();
    m.cpu.exceptionBitmap = 1 << 6;
    t.deepEqual(runAt(m, code + 'f4'), { kind: 'exception', vector: 6, errorCode: undefined }, code);
  }
});

test('RETF to an outer level pops RSP and SS too and nulls the data segments the new CPL may not use', (t) => {
  const m = withOwnGdt();
  const userRsp = 0x3ff000n;
  // mov eax, 0x10; mov ds, eax; push 0x1b (SS); push rsp value; push 0x23 (CS); push target; retfq
  m.cpu.writeGpr(5, userRsp);
  const target = 0x201000;
  m.memory.writeBytes(target, Uint8Array.of(0x90, 0xcd, 0x81));
  m.cpu.exceptionBitmap = 1 << 13;
  // mov eax, 0x10; mov ds, eax; push 0x1b; push rbp; push 0x23; push imm32 target; retfq
  const r = afterLgdt(m, `b8100000008ed86a1b556a2368${'00102000'}48cb`, 3 + 6);
  t.deepEqual(r, { kind: 'budget' });
  t.is(m.cpu.cpl, 3);
  const s = m.cpu.getSregs();
  t.is(s.cs.selector, 0x23);
  t.is(s.ss.selector, 0x1b);
  t.is(m.cpu.readGpr(4), userRsp);
  t.is(m.cpu.getRip(), BigInt(target) + 1n, 'the user code ran one instruction');
  t.is(s.ds.selector, 0, 'DS held a DPL 0 data segment: nulled');
  t.true(s.ds.unusable);
});

test('RETF checks the code segment: a data segment is #GP(selector), a non-canonical RIP into 64-bit code #GP(0)', (t) => {
  const m = withOwnGdt();
  m.cpu.exceptionBitmap = 1 << 13;
  // push 0x10; push 0x1000; retfq
  t.deepEqual(afterLgdt(m, '6a106800100000' + '48cb'), { kind: 'exception', vector: 13, errorCode: 0x10 });
  const n = withOwnGdt();
  n.cpu.exceptionBitmap = 1 << 13;
  n.cpu.writeGpr(0, 0x0000_8000_0000_0000n);
  // push 0x08; push rax; retfq
  t.deepEqual(afterLgdt(n, '6a085048cb'), { kind: 'exception', vector: 13, errorCode: 0 });
  t.is(n.cpu.getSregs().cs.selector, KERNEL_CS, 'CS unchanged');
});
