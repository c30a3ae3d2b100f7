/**
 * System instructions that run in the core (SYSCALL/SYSRET, IRETQ, SWAPGS, LGDT/SGDT, LLDT, LTR,
 * RDTSC, the TSS I/O permission bitmap), the run-time mode check, and the GuestCpu API.
 */
import test from 'ava';
import {
  buildMachine, CODE, CR4_TSD, GDT, KERNEL_CS, KERNEL_DS, runAt, SCRATCH, TSS_SEL, USER_CODE, USER_CS, USER_DS,
} from './harness/machine.js';
import { layout as L } from '../../host/vmm/boot/index.js';

const MSR_LSTAR = 0xc0000082, MSR_SFMASK = 0xc0000084, MSR_GS_BASE = 0xc0000101, MSR_KERNEL_GS_BASE = 0xc0000102;
const MSR_TSC = 0x10;

test('SYSCALL enters CPL 0 at LSTAR with RCX/R11 saved and RFLAGS masked; SYSRETQ returns to CPL 3', (t) => {
  for (const jit of [false, true]) {
    const m = buildMachine({ user: true, jit });
    m.cpu.commitMsr(MSR_LSTAR, BigInt(CODE));
    m.cpu.commitMsr(MSR_SFMASK, 0x47700n); // TF|DF|IF|IOPL|NT|AC, as Linux
    m.memory.writeBytes(CODE, Uint8Array.from([0xf4, 0x48, 0x0f, 0x07])); // hlt; sysretq
    // std; syscall; cpuid
    t.deepEqual(runAt(m, 'fd0f050fa2', 100, USER_CODE), { kind: 'hlt' });
    t.is(m.cpu.cpl, 0);
    const s = m.cpu.getSregs();
    t.is(s.cs.selector, KERNEL_CS);
    t.is(s.ss.selector, KERNEL_DS);
    t.true(s.cs.l);
    t.is(m.cpu.readGpr(1), BigInt(USER_CODE + 3), 'RCX = the next instruction');
    t.is(m.cpu.readGpr(11) & 0x400n, 0x400n, 'R11 holds the caller RFLAGS (DF set)');
    t.is(m.cpu.getRflags() & 0x47700n, 0n, 'SFMASK cleared DF and IF');
    m.cpu.skipInstruction();
    t.deepEqual(m.cpu.run(100), { kind: 'cpuid', leaf: 0, subleaf: USER_CODE + 3 }, 'ECX still holds the return address');
    t.is(m.cpu.cpl, 3);
    t.is(m.cpu.getSregs().cs.selector, USER_CS);
    t.is(m.cpu.getSregs().ss.selector, USER_DS);
    t.is(m.cpu.getRip(), BigInt(USER_CODE + 3));
    t.is(m.cpu.getRflags() & 0x400n, 0x400n, 'RFLAGS restored from R11');
  }
});

test('SYSCALL without EFER.SCE is #UD; SYSRETQ with a non-canonical RCX is #GP(0) at CPL 0', (t) => {
  const m = buildMachine({ user: true, efer: (1n << 8n) | (1n << 10n) | (1n << 11n) });
  m.cpu.exceptionBitmap = 0xffffffff;
  t.deepEqual(runAt(m, '0f05', 100, USER_CODE), { kind: 'exception', vector: 6, errorCode: undefined });
  const k = buildMachine();
  k.cpu.exceptionBitmap = 0xffffffff;
  k.cpu.writeGpr(1, 0x0000_8000_0000_0000n);
  t.deepEqual(runAt(k, '480f07'), { kind: 'exception', vector: 13, errorCode: 0 });
  t.is(k.cpu.cpl, 0, 'still at CPL 0');
});

test('IRETQ to CPL 3 loads CS, SS, RSP and RFLAGS from the stack', (t) => {
  const m = buildMachine();
  m.memory.writeBytes(USER_CODE, Uint8Array.from([0x0f, 0xa2]));
  // push 0x2b; push 0x3ff000; push 0x202; push 0x33; push 0x201000 (USER_CODE); iretq
  t.deepEqual(runAt(m, '6a2b6800f03f0068020200006a33680010200048cf'), { kind: 'cpuid', leaf: 0, subleaf: 0 });
  t.is(m.cpu.cpl, 3);
  t.is(m.cpu.getRip(), BigInt(USER_CODE));
  t.is(m.cpu.readGpr(4), 0x3ff000n);
  t.is(m.cpu.getSregs().cs.selector, USER_CS);
  t.is(m.cpu.getSregs().ss.selector, USER_DS);
  t.is(m.cpu.getRflags(), 0x202n);
});

test('SWAPGS exchanges GS.base and KERNEL_GS_BASE, and GS-relative accesses follow', (t) => {
  const m = buildMachine();
  m.cpu.commitMsr(MSR_KERNEL_GS_BASE, BigInt(SCRATCH));
  m.memory.write32(SCRATCH + 8, 0xdeadbeef);
  // swapgs; mov eax, gs:[8]; hlt
  t.deepEqual(runAt(m, '0f01f8658b042508000000f4'), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0xdeadbeefn);
  t.is(m.cpu.readMsr(MSR_GS_BASE), BigInt(SCRATCH));
  t.is(m.cpu.readMsr(MSR_KERNEL_GS_BASE), 0n);
});

test('LGDT/SGDT round trip; LGDT with a non-canonical base is #GP(0)', (t) => {
  const m = buildMachine();
  m.cpu.writeGpr(0, BigInt(SCRATCH));
  m.memory.write16(SCRATCH, 0x7f);
  m.memory.write64(SCRATCH + 2, 0x8000n);
  t.deepEqual(runAt(m, '0f0110f4'), { kind: 'hlt' });
  t.deepEqual(m.cpu.getSregs().gdt, { base: 0x8000n, limit: 0x7f });
  m.cpu.writeGpr(0, BigInt(SCRATCH + 0x100));
  t.deepEqual(runAt(m, '0f0100f4'), { kind: 'hlt' });
  t.is(m.memory.read16(SCRATCH + 0x100), 0x7f);
  t.is(m.memory.read64(SCRATCH + 0x102), 0x8000n);
  m.memory.write64(SCRATCH + 2, 0x0000_8000_0000_0000n);
  m.cpu.writeGpr(0, BigInt(SCRATCH));
  m.cpu.exceptionBitmap = 1 << 13;
  t.deepEqual(runAt(m, '0f0110f4'), { kind: 'exception', vector: 13, errorCode: 0 });
  t.deepEqual(m.cpu.getSregs().gdt, { base: 0x8000n, limit: 0x7f }, 'unchanged');
});

/**
 * A 16-byte system descriptor at GDT+0x50 (the GDT's limit grown to hold it): base SCRATCH,
 * `access` (present, type) in byte 5, `limit` below 64 KiB (SDM vol. 3A §7.2.3).
 */
function systemDescriptorAt0x50(m: ReturnType<typeof buildMachine>, access: bigint, limit: bigint): void {
  m.memory.write64(GDT + 0x50, limit | (BigInt(SCRATCH & 0xffffff) << 16n) | (access << 40n) | (BigInt(SCRATCH >>> 24) << 56n));
  m.memory.write64(GDT + 0x58, 0n);
  const s = m.cpu.getSregs();
  m.cpu.setSregs({ ...s, gdt: { base: s.gdt.base, limit: 0x5f } });
}

test('LTR loads an available TSS and marks it busy; a busy one is #GP(selector)', (t) => {
  const m = buildMachine();
  // A second 16-byte TSS descriptor at GDT+0x50, available (type 9), base SCRATCH, limit 0x67.
  systemDescriptorAt0x50(m, 0x89n, 0x67n);
  // mov ax, 0x50; ltr ax; hlt
  t.deepEqual(runAt(m, '66b850000f00d8f4'), { kind: 'hlt' });
  const tr = m.cpu.getSregs().tr;
  t.is(tr.selector, 0x50);
  t.is(tr.base, BigInt(SCRATCH));
  t.is(tr.limit, 0x67);
  t.is(m.memory.read8(GDT + 0x55) & 0xf, 0xb, 'busy in the GDT');
  m.cpu.exceptionBitmap = 1 << 13;
  m.cpu.writeGpr(0, BigInt(TSS_SEL));
  t.deepEqual(runAt(m, '0f00d8f4'), { kind: 'exception', vector: 13, errorCode: TSS_SEL });
});

test('LLDT loads an LDT descriptor (type 2, 16 bytes); a null selector leaves LDTR unusable; a TSS descriptor is #GP(selector)', (t) => {
  const m = buildMachine();
  // An LDT descriptor at GDT+0x50: base SCRATCH, limit 0xfff, present, type 2 (SDM vol. 3A table 3-2).
  systemDescriptorAt0x50(m, 0x82n, 0xfffn);
  // mov ax, 0x50; lldt ax; hlt
  t.deepEqual(runAt(m, '66b850000f00d0f4'), { kind: 'hlt' });
  const ldt = m.cpu.getSregs().ldt;
  t.like(ldt, { selector: 0x50, base: BigInt(SCRATCH), limit: 0xfff, type: 2, present: true, unusable: false });
  // xor eax, eax; lldt ax; hlt
  t.deepEqual(runAt(m, '31c00f00d0f4'), { kind: 'hlt' });
  t.true(m.cpu.getSregs().ldt.unusable);
  m.cpu.exceptionBitmap = 1 << 13;
  m.cpu.writeGpr(0, BigInt(TSS_SEL));
  t.deepEqual(runAt(m, '0f00d0f4'), { kind: 'exception', vector: 13, errorCode: TSS_SEL });
});

test('descriptor-table exiting stops LGDT/LIDT/LLDT/LTR with the operand read; executeIntercepted() then does what the instruction does', (t) => {
  for (const jit of [false, true]) {
    const m = buildMachine({ jit });
    m.cpu.descriptorTableExiting = true;
    m.memory.write16(SCRATCH, 0x7f);
    m.memory.write64(SCRATCH + 2, 0x8000n);
    m.cpu.writeGpr(0, BigInt(SCRATCH));
    // lgdt [rax]; hlt
    t.deepEqual(runAt(m, '0f0110f4'), { kind: 'descriptor_table', insn: 'lgdt', base: 0x8000n, limit: 0x7f, selector: 0 });
    t.is(m.cpu.getRip(), BigInt(CODE), 'RIP on the LGDT');
    m.memory.write16(SCRATCH, 0x3f);
    m.cpu.executeIntercepted();
    t.deepEqual(m.cpu.getSregs().gdt, { base: 0x8000n, limit: 0x3f }, 'executed: it reads its operand again');
    t.is(m.cpu.getRip(), BigInt(CODE + 3));
    t.deepEqual(m.cpu.run(10), { kind: 'hlt' });
    m.cpu.writeGpr(0, BigInt(TSS_SEL));
    t.deepEqual(runAt(m, '0f00d8f4'), { kind: 'descriptor_table', insn: 'ltr', base: 0n, limit: 0, selector: TSS_SEL });
    const record = L.faultRecordAddress(0);
    m.memory.write64(record + L.FAULT_RECORD.count, 0n);
    m.cpu.executeIntercepted();
    // The boot TSS is busy already: LTR of a busy TSS is #GP(selector), queued and delivered
    // through the boot IDT, whose stub records it with the RIP of the LTR.
    m.cpu.run(1000);
    t.is(m.memory.read64(record + L.FAULT_RECORD.count), 1n);
    t.is(m.memory.read64(record + L.FAULT_RECORD.vector), 13n);
    t.is(m.memory.read64(record + L.FAULT_RECORD.errorCode), BigInt(TSS_SEL));
    t.is(m.memory.read64(record + L.FAULT_RECORD.rip), BigInt(CODE), 'the faulting LTR did not retire');
    m.cpu.descriptorTableExiting = false;
    m.cpu.writeGpr(0, BigInt(SCRATCH));
    m.cpu.exceptionBitmap = 0;
    t.deepEqual(runAt(m, '0f0110f4'), { kind: 'hlt' }, 'off again: LGDT runs');
  }
});

test('RDTSC counts up from the value written to IA32_TSC; CR4.TSD makes it #GP(0) at CPL 3', (t) => {
  const m = buildMachine();
  m.cpu.commitMsr(MSR_TSC, 1_000_000_000_000n);
  // rdtsc; mov r8, rax; mov r9, rdx; rdtsc; hlt
  t.deepEqual(runAt(m, '0f314989c04989d10f31f4'), { kind: 'hlt' });
  const first = (m.cpu.readGpr(9) << 32n) | m.cpu.readGpr(8);
  const second = (m.cpu.readGpr(2) << 32n) | m.cpu.readGpr(0);
  t.true(first >= 1_000_000_000_000n && first < 1_000_000_000_000n + 10_000_000_000n);
  t.true(second >= first);
  const u = buildMachine({ user: true });
  u.cpu.commitCr(4, u.cpu.readCr(4) | CR4_TSD);
  u.cpu.exceptionBitmap = 1 << 13;
  t.deepEqual(runAt(u, '0f31', 100, USER_CODE), { kind: 'exception', vector: 13, errorCode: 0 });
});

test('at CPL 3, IN/OUT consult the TSS I/O permission bitmap', (t) => {
  const m = buildMachine({ user: true });
  const tss = SCRATCH + 0x1000;
  m.memory.write16(tss + 0x66, 0x68);
  const bitmap = new Uint8Array(8193).fill(0xff);
  bitmap[0x60 >> 3]! &= ~(1 << (0x60 & 7));
  for (let p = 0x3f8; p <= 0x3fe; p++) bitmap[p >> 3]! &= ~(1 << (p & 7));
  bitmap[0x3ff >> 3]! &= ~(1 << (0x3ff & 7));
  m.memory.writeBytes(tss + 0x68, bitmap);
  const s = m.cpu.getSregs();
  m.cpu.setSregs({ ...s, tr: { ...s.tr, base: BigInt(tss), limit: 0x68 + 8192 } });
  m.cpu.exceptionBitmap = 1 << 13;
  t.deepEqual(runAt(m, 'e460', 100, USER_CODE), { kind: 'io', port: 0x60, size: 1, in: true, value: 0 });
  t.deepEqual(runAt(m, 'e461', 100, USER_CODE), { kind: 'exception', vector: 13, errorCode: 0 });
  m.cpu.writeGpr(0, 0xabcdn);
  // mov dx, 0x3fe; out dx, ax: ports 0x3fe and 0x3ff allowed
  t.deepEqual(runAt(m, '66bafe0366ef', 100, USER_CODE), { kind: 'io', port: 0x3fe, size: 2, in: false, value: 0xabcd });
  // mov dx, 0x3ff; out dx, ax: port 0x400 denied
  t.deepEqual(runAt(m, '66baff0366ef', 100, USER_CODE), { kind: 'exception', vector: 13, errorCode: 0 });
});

test('run() refuses states this core cannot run, naming the field', (t) => {
  const cases: [string, (m: ReturnType<typeof buildMachine>) => void, RegExp][] = [
    ['paging off', (m) => m.cpu.setSregs({ ...m.cpu.getSregs(), cr0: 0x11n }), /CR0\.(PG|PE)/],
    ['PAE off', (m) => m.cpu.setSregs({ ...m.cpu.getSregs(), cr4: 0n }), /CR4\.PAE/],
    ['not long mode', (m) => m.cpu.setSregs({ ...m.cpu.getSregs(), efer: 0n }), /EFER\.LM/],
    ['compatibility mode', (m) => { const s = m.cpu.getSregs(); m.cpu.setSregs({ ...s, cs: { ...s.cs, l: false, db: true } }); }, /CS\.L/],
    ['non-canonical RIP', (m) => m.cpu.setRip(0x0000_8000_0000_0000n), /RIP/],
    ['reserved RFLAGS bit', (m) => m.cpu.setRflags(0x8002n), /RFLAGS/],
    ['non-canonical FS base', (m) => m.cpu.commitMsr(0xc0000100, 0x0000_8000_0000_0000n), /FS\.base/],
  ];
  for (const [name, spoil, detail] of cases) {
    const m = buildMachine();
    m.memory.writeBytes(CODE, Uint8Array.from([0xf4]));
    spoil(m);
    const r = m.cpu.run(100);
    t.is(r.kind, 'invalid_guest_state', name);
    if (r.kind === 'invalid_guest_state') t.regex(r.detail, detail, name);
    t.is(m.cpu.instructionsRetired, 0, name);
  }
});

test('SYSRET without REX.W returns to compatibility mode, which stops the core', (t) => {
  const m = buildMachine();
  m.cpu.writeGpr(1, 0x1000n);
  const r = runAt(m, '0f07');
  t.is(r.kind, 'invalid_guest_state');
  t.is(m.cpu.cpl, 3);
});

test('the register API: 64-bit values, 32-bit writes zero-extend, RFLAGS bit 1 forced', (t) => {
  const m = buildMachine();
  const regs = m.cpu.getRegs();
  regs.r15 = 0xfedc_ba98_7654_3210n;
  regs.rax = 0xffff_ffff_ffff_ffffn;
  regs.rflags = 0x0n;
  m.cpu.setRegs(regs);
  t.is(m.cpu.readGpr(15), 0xfedc_ba98_7654_3210n);
  t.is(m.cpu.readGpr32(15), 0x7654_3210);
  t.is(m.cpu.getRflags(), 0x2n);
  m.cpu.writeGpr32(0, 0x1234);
  t.is(m.cpu.readGpr(0), 0x1234n);
  m.cpu.writeGpr(3, -1n);
  t.is(m.cpu.readGpr(3), 0xffff_ffff_ffff_ffffn);
  t.throws(() => m.cpu.readGpr(16), { instanceOf: RangeError });
  t.is(m.cpu.readMsr(0x1234), undefined);
  t.false(m.cpu.commitMsr(0x1234, 1n));
  t.throws(() => m.cpu.injectException(32), { instanceOf: RangeError });
  t.throws(() => m.cpu.readCr(1 as 0), { instanceOf: RangeError });
  t.throws(() => m.cpu.setRegs({ ...regs, rax: 1 as unknown as bigint }), { instanceOf: TypeError });
  t.is(m.cpu.readGpr(0), 0x1234n, 'a refused setRegs changes nothing');
});
