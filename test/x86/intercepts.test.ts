/**
 * Instruction intercepts (the VMX-exit seam to host/kvm) and the checks hardware makes before
 * them (SDM vol. 3C §25.1.1: CPL and #UD checks take priority over the exit). An intercepted
 * instruction is not retired: RIP stays on it and nothing it would do has happened;
 * skipInstruction() retires it.
 */
import test from 'ava';
import { buildMachine, CODE, runAt, USER_CODE, type Machine } from './harness/machine.js';

function kernel(): Machine {
  return buildMachine();
}

test('MOV from/to CR, CLTS, LMSW stop with their operands and leave RIP on the instruction', (t) => {
  const m = kernel();
  t.deepEqual(runAt(m, '0f20c0'), { kind: 'mov_from_cr', cr: 0, gpr: 0 });
  t.is(m.cpu.getRip(), BigInt(CODE));
  t.deepEqual(runAt(m, '440f20c1'), { kind: 'mov_from_cr', cr: 8, gpr: 1 });
  m.cpu.writeGpr(3, 0x1234_5000n);
  t.deepEqual(runAt(m, '0f22db'), { kind: 'mov_to_cr', cr: 3, gpr: 3, value: 0x1234_5000n });
  t.deepEqual(runAt(m, '0f06'), { kind: 'clts' });
  m.cpu.writeGpr(0, 0xabcd_0011n);
  t.deepEqual(runAt(m, '0f01f0'), { kind: 'lmsw', value: 0x0011 });
  t.is(m.cpu.instructionsRetired, 0, 'intercepted instructions are not retired');
});

test('LMSW reads its memory operand before stopping', (t) => {
  const m = kernel();
  m.cpu.exceptionBitmap = 1 << 14;
  // lmsw [rax] with rax = 0 (the not-present null page): #PF, no intercept
  m.cpu.writeGpr(0, 0n);
  const r = runAt(m, '0f0130');
  t.is(r.kind, 'exception');
  t.like(r, { vector: 14, errorCode: 0, address: 0n });
});

test('RDMSR, WRMSR, CPUID, HLT, VMCALL, VMMCALL and port I/O stop with their operands', (t) => {
  const m = kernel();
  m.cpu.writeGpr(1, 0xc000_0080n);
  t.deepEqual(runAt(m, '0f32'), { kind: 'rdmsr', index: 0xc0000080 });
  m.cpu.writeGpr(0, 0xffff_ffff_1111_2222n);
  m.cpu.writeGpr(2, 0xeeee_eeee_3333_4444n);
  t.deepEqual(runAt(m, '0f30'), { kind: 'wrmsr', index: 0xc0000080, value: 0x3333_4444_1111_2222n });
  m.cpu.writeGpr(0, 7n);
  m.cpu.writeGpr(1, 1n);
  t.deepEqual(runAt(m, '0fa2'), { kind: 'cpuid', leaf: 7, subleaf: 1 });
  t.deepEqual(runAt(m, 'f4'), { kind: 'hlt' });
  t.deepEqual(runAt(m, '0f01c1'), { kind: 'hypercall', insn: 'vmcall' });
  t.deepEqual(runAt(m, '0f01d9'), { kind: 'hypercall', insn: 'vmmcall' });
  t.deepEqual(runAt(m, 'e460'), { kind: 'io', port: 0x60, size: 1, in: true, value: 0 });
  m.cpu.writeGpr(0, 0x1234_5678n);
  m.cpu.writeGpr(2, 0x3f8n);
  t.deepEqual(runAt(m, 'ef'), { kind: 'io', port: 0x3f8, size: 4, in: false, value: 0x12345678 });
  t.deepEqual(runAt(m, '66ed'), { kind: 'io', port: 0x3f8, size: 2, in: true, value: 0 });
});

test('skipInstruction retires the intercepted instruction and execution resumes after it', (t) => {
  const m = kernel();
  // rdmsr; mov ebx, 5; hlt
  t.deepEqual(runAt(m, '0f32bb05000000f4'), { kind: 'rdmsr', index: 0 });
  m.cpu.writeGpr32(0, 0x11);
  m.cpu.skipInstruction();
  t.is(m.cpu.getRip(), BigInt(CODE + 2));
  t.deepEqual(m.cpu.run(100), { kind: 'hlt' });
  t.is(m.cpu.readGpr(3), 5n);
  t.is(m.cpu.readGpr(0), 0x11n);
});

test('at CPL 3 the privileged instructions fault before any intercept; CPUID and VMCALL still stop', (t) => {
  const gp0 = { kind: 'exception', vector: 13, errorCode: 0 };
  const ud = { kind: 'exception', vector: 6, errorCode: undefined };
  const cases: [string, string, object][] = [
    ['mov rax, cr0', '0f20c0', gp0],
    ['mov cr3, rbx', '0f22db', gp0],
    ['clts', '0f06', gp0],
    ['lmsw ax', '0f01f0', gp0],
    ['rdmsr', '0f32', gp0],
    ['wrmsr', '0f30', gp0],
    ['hlt', 'f4', gp0],
    ['invlpg [rax]', '0f0138', gp0],
    ['swapgs', '0f01f8', gp0],
    ['lgdt [rsp-16]', '0f015424f0', gp0],
    ['lidt [rsp-16]', '0f015c24f0', gp0],
    ['ltr ax', '0f00d8', gp0],
    ['lldt ax', '0f00d0', gp0],
    ['sgdt (UMIP)', '0f014424f0', gp0],
    ['sidt (UMIP)', '0f014c24f0', gp0],
    ['smsw (UMIP)', '0f01e0', gp0],
    ['cli (IOPL 0)', 'fa', gp0],
    ['sti (IOPL 0)', 'fb', gp0],
    ['in (no I/O bitmap)', 'e460', gp0],
    ['sysretq', '480f07', gp0],
    ['stac', '0f01cb', ud],
    ['clac', '0f01ca', ud],
    ['cpuid', '0fa2', { kind: 'cpuid', leaf: 0, subleaf: 0 }],
    ['vmcall', '0f01c1', { kind: 'hypercall', insn: 'vmcall' }],
  ];
  for (const [name, code, expected] of cases) {
    const m = buildMachine({ user: true });
    m.cpu.exceptionBitmap = 0xffffffff;
    m.cpu.writeGpr(0, 0n);
    m.cpu.writeGpr(1, 0n);
    const r = runAt(m, code, 100, USER_CODE);
    t.deepEqual(r, expected as typeof r, name);
    t.is(m.cpu.getRip(), BigInt(USER_CODE), `${name}: RIP on the instruction`);
    t.is(m.cpu.cpl, 3);
  }
});

test('encodings that are not instructions raise #UD: CR1, LOCK on a non-lockable instruction', (t) => {
  for (const code of ['0f22c8', 'f090', 'f001c0', '0f0b']) {
    const m = kernel();
    m.cpu.exceptionBitmap = 1 << 6;
    t.deepEqual(runAt(m, code), { kind: 'exception', vector: 6, errorCode: undefined }, code);
  }
});

test('the budget is exact, across blocks and through REP iterations', (t) => {
  for (const jit of [false, true]) {
    const m = buildMachine({ jit });
    // 1: inc rax; inc rbx; jmp 1b    — three instructions per round
    m.memory.writeBytes(CODE, Uint8Array.from([0x48, 0xff, 0xc0, 0x48, 0xff, 0xc3, 0xeb, 0xf8]));
    m.cpu.setRip(BigInt(CODE));
    let total = 0;
    for (const step of [1, 2, 5, 7, 100, 1000, 3]) {
      t.deepEqual(m.cpu.run(step), { kind: 'budget' });
      total += step;
      const expectedRax = Math.floor(total / 3) + (total % 3 >= 1 ? 1 : 0);
      const expectedRbx = Math.floor(total / 3) + (total % 3 >= 2 ? 1 : 0);
      t.is(m.cpu.readGpr(0), BigInt(expectedRax), `rax after ${total}`);
      t.is(m.cpu.readGpr(3), BigInt(expectedRbx), `rbx after ${total}`);
    }
    t.is(m.cpu.instructionsRetired, total);
    // rep stosb, 100 iterations: each counts as one
    const n = buildMachine({ jit });
    n.cpu.writeGpr(1, 100n);
    n.cpu.writeGpr(7, 0x90000n);
    n.memory.writeBytes(CODE, Uint8Array.from([0xf3, 0xaa, 0xf4]));
    n.cpu.setRip(BigInt(CODE));
    t.deepEqual(n.cpu.run(30), { kind: 'budget' });
    t.is(n.cpu.readGpr(1), 70n);
    t.is(n.cpu.getRip(), BigInt(CODE), 'an interrupted REP stays on its instruction');
    t.deepEqual(n.cpu.run(1000), { kind: 'hlt' });
    t.is(n.cpu.readGpr(1), 0n);
    t.is(n.cpu.readGpr(7), 0x90000n + 100n);
    t.is(n.cpu.instructionsRetired, 100);
  }
});

test('run(0) retires nothing; a negative or fractional budget is refused', (t) => {
  const m = kernel();
  t.deepEqual(runAt(m, 'f4', 0), { kind: 'budget' });
  t.is(m.cpu.getRip(), BigInt(CODE));
  t.throws(() => m.cpu.run(-1), { instanceOf: RangeError });
  t.throws(() => m.cpu.run(1.5), { instanceOf: RangeError });
});

test('a REP instruction at the end of a block gets exactly the budget the block left it', (t) => {
  for (const jit of [false, true]) {
    const m = buildMachine({ jit });
    m.cpu.writeGpr(1, 100n);
    m.cpu.writeGpr(7, 0x90000n);
    // nop; nop; nop; rep stosb; hlt   — one block ending in the REP
    t.deepEqual(runAt(m, '909090f3aaf4', 10), { kind: 'budget' });
    t.is(m.cpu.instructionsRetired, 10);
    t.is(m.cpu.readGpr(1), 93n, 'three NOPs and seven iterations');
  }
});
