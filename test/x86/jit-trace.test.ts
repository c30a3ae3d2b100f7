/**
 * Traces (jit/trace.ts): a translation follows relative JMPs and CALLs on its page, predicts
 * each RET whose CALL it followed, and goes on past a Jcc's not-taken side. Against the
 * interpreter (harness/differential.ts) — and, where it is simple, against values worked out
 * by hand — for nested calls, returns that go elsewhere than predicted, faults inside an inlined
 * callee, budgets that end anywhere in a trace, code that patches an inlined callee, the host
 * patching it between runs, calls to another page, RET imm16, an INVLPG that remaps the trace's
 * own page, and random programs of functions.
 */
import test from 'ava';
import { cachedBlock } from '../../host/x86/block.js';
import { compareRun, interpreted, KERNEL_STACK_TOP, loadProgram, randomRegisters, translated, type Program } from './harness/differential.js';
import { CODE, PT, type Machine } from './harness/machine.js';
import { xorshift } from './harness/prng.js';
import { randomInstruction } from './harness/random-code.js';

type Part = number[] | { label: string } | { call: string } | { jmp: string } | { jcc: number; to: string } | { org: number };

/** A tiny assembler: bytes, labels, rel32 CALL/JMP/Jcc to labels, and `org` (pad with INT3 to an offset). */
function assemble(parts: Part[]): Uint8Array {
  const layout = (labels: Map<string, number>): number[] => {
    const out: number[] = [];
    const rel = (to: string, end: number): number[] => {
      const r = (labels.get(to) ?? end) - end;
      return [r & 0xff, (r >> 8) & 0xff, (r >> 16) & 0xff, (r >>> 24) & 0xff];
    };
    for (const p of parts) {
      if (Array.isArray(p)) out.push(...p);
      else if ('label' in p) labels.set(p.label, out.length);
      else if ('org' in p) while (out.length < p.org) out.push(0xcc);
      else if ('call' in p) out.push(0xe8, ...rel(p.call, out.length + 5));
      else if ('jmp' in p) out.push(0xe9, ...rel(p.jmp, out.length + 5));
      else out.push(0x0f, 0x80 + p.jcc, ...rel(p.to, out.length + 6));
    }
    return out;
  };
  const labels = new Map<string, number>();
  layout(labels);
  return Uint8Array.from(layout(labels));
}

const JNZ = 5;
const HLT = [0xf4], RET = [0xc3], DEC_ECX = [0xff, 0xc9];
const movEcx = (n: number): number[] => [0xb9, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];

function program(parts: Part[], seed = 1): Program {
  const rnd = xorshift(seed);
  return { code: assemble(parts), regs: randomRegisters(rnd), flags: 0x202n };
}

/** Compares the two cores on `p` for every budget in `budgets`. */
function agree(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, p: Program, budgets: number[], setup?: (m: Machine) => void): void {
  const failures: string[] = [];
  for (const budget of budgets) {
    const f = compareRun(p, 1, budget, undefined, setup);
    if (f !== null && failures.length < 3) failures.push(f);
  }
  t.deepEqual(failures, []);
}

const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k);

// mov ecx, N; L: call f; call g; dec ecx; jnz L; hlt; f: add eax, 1; ret; g: call f; ret
const NESTED = [movEcx(50), { label: 'L' }, { call: 'f' }, { call: 'g' }, DEC_ECX, { jcc: JNZ, to: 'L' }, HLT,
  { label: 'f' }, [0x83, 0xc0, 0x01], RET, { label: 'g' }, { call: 'f' }, RET];

test('nested CALL/RET: the loop with its callees is one translated trace, and agrees at every budget', (t) => {
  const p = program(NESTED);
  agree(t, p, [...range(120), 100_000]);
  loadProgram(translated, p, 1);
  translated.cpu.run(100_000);
  const loop = cachedBlock(translated.cpu, CODE / 4096, (CODE % 4096) + 5)!;
  // call f, add, ret, call g, call f, add, ret, ret, dec, jnz: the callees are inlined, the RETs predicted.
  t.is(loop.compiledLength, 10);
  t.is(translated.cpu.readGpr(0) & 0xffffffffn, (p.regs[0]! + 100n) & 0xffffffffn, 'EAX gained 2 per iteration');
});

test('a RET that goes elsewhere than predicted leaves the trace there', (t) => {
  // L: call f; inc eax; add r8d, 1; dec ecx; jnz L; hlt
  // f: test cl, 1; jz r; add qword [rsp], 2 (skip the INC); r: ret
  const p = program([movEcx(40), { label: 'L' }, { call: 'f' }, [0xff, 0xc0], [0x41, 0x83, 0xc0, 0x01], DEC_ECX,
    { jcc: JNZ, to: 'L' }, HLT, { label: 'f' }, [0xf6, 0xc1, 0x01], [0x74, 0x05], [0x48, 0x83, 0x04, 0x24, 0x02], RET]);
  agree(t, p, [...range(60), 1000]);
  loadProgram(translated, p, 1);
  t.deepEqual(translated.cpu.run(1000), { kind: 'hlt' });
  t.is(translated.cpu.readGpr(0) & 0xffffffffn, (p.regs[0]! + 20n) & 0xffffffffn, 'INC ran for the 20 even counts');
  t.is(translated.cpu.readGpr(8) & 0xffffffffn, (p.regs[8]! + 40n) & 0xffffffffn);
});

test('a fault inside an inlined callee: the faulting instruction, CR2, RSP and the count are exact', (t) => {
  // f leaks 8 bytes of stack per call (pop rdx; push rdx; push rdx; ret) until a push reaches a not-present page.
  const p = program([movEcx(100), { label: 'L' }, { call: 'f' }, DEC_ECX, { jcc: JNZ, to: 'L' }, HLT,
    { label: 'f' }, [0x5a, 0x52, 0x52], RET]);
  const setup = (m: Machine): void => {
    m.memory.write64(PT + 0x90 * 8, 0n); // page 0x90000 not present
    m.cpu.writeGpr(4, 0x9_1040n);
  };
  agree(t, p, [...range(80), 10_000], setup);
  loadProgram(translated, p, 1);
  setup(translated);
  const r = translated.cpu.run(10_000);
  t.like(r, { kind: 'exception', vector: 14, errorCode: 2 }); // not present, a write
  t.is(r.kind === 'exception' ? r.address! >> 12n : -1n, 0x90n);
  t.is(translated.cpu.readGpr(4), 0x9_1000n, 'RSP as before the push that faulted');
});

for (const [width, store, add] of [
  ['byte (a handler\'s store)', [0x88, 0x0d], [0x83, 0xc0, 0x01]], // mov [rip+d], cl / add eax, imm8
  ['dword (an inline store)', [0x89, 0x0d], [0x05, 0x01, 0x00, 0x00, 0x00]], // mov [rip+d], ecx / add eax, imm32
] as const) {
  test(`code that patches a callee inlined into its trace runs the patched callee on the next call: ${width}`, (t) => {
    // mov ecx, 10; L: call f; mov [rip + the ADD's immediate], cl/ecx; dec ecx; jnz L; hlt; f: add eax, 1; ret
    const head: Part[] = [movEcx(10), { label: 'L' }, { call: 'f' }];
    const code = assemble([...head, [...store, 0, 0, 0, 0], DEC_ECX, { jcc: JNZ, to: 'L' }, HLT, { label: 'f' }, [...add], RET]);
    const movAt = assemble(head).length, immAt = code.length - 1 - (add.length - (add[0] === 0x05 ? 1 : 2));
    const disp = immAt - (movAt + 6);
    code.set([disp & 0xff, (disp >> 8) & 0xff, 0, 0], movAt + 2);
    const p: Program = { code, regs: randomRegisters(xorshift(3)), flags: 0x202n };
    agree(t, p, [...range(70), 1000]);
    loadProgram(translated, p, 1);
    t.deepEqual(translated.cpu.run(1000), { kind: 'hlt' });
    // The first call adds 1; each later call adds the count the previous iteration stored: 10, 9, ..., 2.
    t.is(translated.cpu.readGpr(0) & 0xffffffffn, (p.regs[0]! + 55n) & 0xffffffffn);
  });
}

test('the host patching an inlined callee between runs is seen by the next run', (t) => {
  const p = program(NESTED);
  const results = [interpreted, translated].map((m) => {
    loadProgram(m, p, 1);
    t.deepEqual(m.cpu.run(203), { kind: 'budget' }); // 1 + 20 iterations of 10
    const fImm = p.code.indexOf(0x83) + 2;
    m.memory.writeBytes(CODE + fImm, Uint8Array.of(5)); // f: add eax, 5
    t.deepEqual(m.cpu.run(100_000), { kind: 'hlt' });
    return m.cpu.readGpr(0) & 0xffffffffn;
  });
  t.is(results[1], results[0]);
  // MOV and 20 iterations of 10 instructions add 2 each; the budget stops the 21st after CALL f
  // and ADD (+1 at the old immediate); its second call, and each of the 29 iterations left, add 5.
  t.is(results[0], (p.regs[0]! + 40n + 1n + 5n + 29n * 10n) & 0xffffffffn);
});

test('calls and jumps to another page leave the trace; RET imm16 releases its bytes', (t) => {
  // L: push rax; call far (next page); call near; dec ecx; jnz L; hlt
  // near: ret 8 (releases the pushed RAX as well) — far: add r9d, 3; jmp back (to a label on the first page)
  const p = program([movEcx(30), { label: 'L' }, [0x50], { call: 'near' }, { call: 'far' }, DEC_ECX, { jcc: JNZ, to: 'L' }, HLT,
    { label: 'near' }, [0x41, 0x83, 0xc1, 0x01], [0xc2, 0x08, 0x00],
    { label: 'back' }, RET,
    { org: 0x1000 + 0x40 }, { label: 'far' }, [0x41, 0x83, 0xc1, 0x03], { jmp: 'back' }]);
  agree(t, p, [...range(50), 10_000]);
  loadProgram(translated, p, 1);
  t.deepEqual(translated.cpu.run(10_000), { kind: 'hlt' });
  t.is(translated.cpu.readGpr(9) & 0xffffffffn, (p.regs[9]! + 120n) & 0xffffffffn);
  t.is(translated.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP), 'each PUSH released by the RET 8');
});

test('a trace stops following branches after an INVLPG that remapped its own page (as the interpreter refetches)', (t) => {
  // mov [rbx], rcx (the code page's PTE := another frame); invlpg [rdx]; jmp over; ...; over: mov eax, 1; hlt
  // The other frame holds the same code except mov eax, 2 at `over`.
  const OTHER = CODE + 0x1_0000;
  const parts = (value: number): Part[] => [[0x48, 0x89, 0x0b], [0x0f, 0x01, 0x3a], { jmp: 'over' }, { org: 0x40 }, { label: 'over' },
    [0xb8, value, 0, 0, 0], HLT];
  const results = [interpreted, translated].map((m) => {
    m.cpu.exceptionBitmap = 0xffffffff;
    loadProgram(m, program(parts(1)), 1);
    m.memory.writeBytes(OTHER, assemble(parts(2)));
    const pte = PT + (CODE / 4096) * 8;
    m.cpu.writeGpr(3, BigInt(pte));
    m.cpu.writeGpr(1, (m.memory.read64(pte) & ~0xf_ffff_f000n) | BigInt(OTHER));
    m.cpu.writeGpr(2, BigInt(CODE));
    const r = m.cpu.run(100);
    m.memory.write64(pte, BigInt(CODE) | (m.memory.read64(pte) & 0xfffn)); // restore for the next test,
    m.cpu.setSregs(m.cpu.getSregs()); // and drop the translation through OTHER (KVM_SET_SREGS flushes the TLB)
    return { r, eax: m.cpu.readGpr(0) & 0xffffffffn };
  });
  t.deepEqual(results[1], results[0]);
  t.deepEqual(results[0], { r: { kind: 'hlt' }, eax: 2n });
});

/**
 * A random program of functions: main loops over calls to f0..f3; each function is a random body
 * (no PUSH/POP, so RET finds its address) with Jcc side exits over single instructions and
 * calls to lower-numbered functions; f3 sits on the next page.
 */
function randomFunctions(seed: number): Program {
  const rnd = xorshift(seed);
  const body = (max: number, callees: number): Part[] => {
    const parts: Part[] = [];
    const n = 1 + (rnd() % max);
    for (let k = 0; k < n; k++) {
      const r = rnd() % 10;
      if (r === 0 && callees > 0) parts.push({ call: `f${rnd() % callees}` });
      else if (r === 1) {
        const skip = randomInstruction(rnd, false);
        if (skip === null) continue;
        parts.push([0x70 + (rnd() % 16), skip.length], [...skip]); // jcc rel8 over one instruction
      } else {
        const i = randomInstruction(rnd, false);
        if (i !== null) parts.push([...i]);
      }
    }
    return parts;
  };
  const parts: Part[] = [movEcx(1 + (rnd() % 30)), { label: 'L' }];
  for (let k = 0; k < 1 + (rnd() % 4); k++) parts.push({ call: `f${rnd() % 4}` });
  parts.push(...body(4, 0), DEC_ECX, { jcc: JNZ, to: 'L' }, HLT);
  for (let f = 0; f < 3; f++) parts.push({ label: `f${f}` }, ...body(8, f), RET);
  parts.push({ org: 0x1000 + 0x10 }, { label: 'f3' }, ...body(8, 3), RET);
  return { code: assemble(parts), regs: randomRegisters(rnd), flags: BigInt(0x202 | (rnd() & 0x8d5)) };
}

test('random programs of functions: translated traces agree with the interpreter, also stopped mid-way', (t) => {
  const failures: string[] = [];
  const outcomes = new Map<string, number>();
  for (let seed = 1; seed <= 150; seed++) {
    const p = randomFunctions(seed);
    for (const budget of [100_000, 3 + (seed * 37) % 400]) {
      const f = compareRun(p, seed, budget, budget === 100_000 ? outcomes : undefined);
      if (f !== null && failures.length < 3) failures.push(f);
    }
  }
  t.deepEqual(failures, []);
  t.log(JSON.stringify([...outcomes]));
});

