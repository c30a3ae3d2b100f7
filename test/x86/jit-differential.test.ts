/**
 * Translated code against the reference interpreter (itself checked against the host CPU by
 * semantics.test.ts): random loops built from the instruction table — ALU, shifts, multiply and
 * divide, bit operations, moves, stack operations, flag instructions, register and memory
 * operands — run from the same state on a core that translates every block before its first
 * run and on one that only interprets (harness/differential.ts); registers, RFLAGS, memory, the stop reason and the retired count
 * must agree. Faults inside loops (#DE, #PF), budgets that end mid-loop and code that rewrites
 * itself are included.
 */
import test from 'ava';
import { xorshift } from './harness/prng.js';
import { buildMachine, CODE } from './harness/machine.js';
import { compareRun, randomRegisters, snapshot, type Program } from './harness/differential.js';
import { randomInstruction } from './harness/random-code.js';

function randomProgram(seed: number): Program {
  const rnd = xorshift(seed);
  const body: number[] = [];
  const count = 4 + (rnd() % 20);
  for (let k = 0; k < count; k++) {
    const i = randomInstruction(rnd);
    if (i) body.push(...i);
  }
  const iterations = 1 + (rnd() % 40);
  // mov ecx, iterations; L: body; dec ecx; jnz L; hlt  (jnz rel32 to stay valid for long bodies)
  const code = [0xb9, iterations & 0xff, 0, 0, 0, ...body, 0xff, 0xc9, 0x0f, 0x85];
  const rel = -(body.length + 2 + 6);
  code.push(rel & 0xff, (rel >> 8) & 0xff, (rel >> 16) & 0xff, (rel >> 24) & 0xff, 0xf4);
  const regs = randomRegisters(rnd);
  const flags = BigInt(0x202 | (rnd() & 0x8d5));
  return { code: Uint8Array.from(code), regs, flags };
}

function compare(seed: number, budget: number, outcomes?: Map<string, number>): string | null {
  return compareRun(randomProgram(seed), seed, budget, outcomes);
}

test('random loops: translated code matches the interpreter', (t) => {
  const failures: string[] = [];
  const outcomes = new Map<string, number>();
  for (let seed = 1; seed <= 300; seed++) {
    const f = compare(seed, 100_000, outcomes);
    if (f && failures.length < 5) failures.push(f);
  }
  t.deepEqual(failures, []);
  t.log(JSON.stringify([...outcomes]));
});

test('random loops stopped by the budget mid-way: same state', (t) => {
  const failures: string[] = [];
  for (let seed = 1000; seed <= 1100; seed++) {
    const f = compare(seed, 7 + (seed % 61) * 3);
    if (f && failures.length < 5) failures.push(f);
  }
  t.deepEqual(failures, []);
});

test('a fault inside a translated loop reports the faulting instruction and the exact count', (t) => {
  // mov ecx, 100; L: add eax, [rbx]; add rbx, 0x800; dec ecx; jnz L; hlt
  // RBX walks from the kernel scratch area into the not-present... supervisor NX pages that end
  // at the 16 MiB memory size: the walk leaves the mapped memory and #PFs.
  const code = Uint8Array.from([0xb9, 0x64, 0, 0, 0, 0x03, 0x03, 0x48, 0x81, 0xc3, 0x00, 0x08, 0, 0, 0xff, 0xc9, 0x75, 0xf2, 0xf4]);
  const results = [false, true].map((jit) => {
    const m = buildMachine({ jit, memorySize: 4 << 20 });
    m.cpu.exceptionBitmap = 1 << 14;
    m.memory.writeBytes(CODE, code);
    m.cpu.setRip(BigInt(CODE));
    m.cpu.writeGpr(3, 0x3f_c000n);
    return snapshot(m, m.cpu.run(10_000));
  });
  t.is(results[1], results[0]);
  t.regex(results[0]!, /"vector":14/);
});

test('code that rewrites the next instruction of its own translated block sees the new instruction', (t) => {
  // L: mov byte [rip+1], 2  (patches the imm8 of the following add)
  //    add eax, 1           (becomes add eax, 2 after the first iteration)
  //    dec ecx; jnz L; hlt
  // mov byte [rip + 2], 0x02 → c6 05 <disp32> 02 ; disp from the end of this instruction to the add's imm8
  const prog: number[] = [0xb9, 0x0a, 0, 0, 0];
  const loop = prog.length;
  prog.push(0xc6, 0x05, 0x02, 0x00, 0x00, 0x00, 0x02); // mov byte [rip+2], 2 → the imm8 of `83 c0 01`
  prog.push(0x83, 0xc0, 0x01); // add eax, 1
  prog.push(0xff, 0xc9, 0x75, (loop - (prog.length + 4)) & 0xff, 0xf4);
  const states = [false, true].map((jit) => {
    const m = buildMachine({ jit });
    m.memory.writeBytes(CODE, Uint8Array.from(prog));
    m.cpu.setRip(BigInt(CODE));
    const r = m.cpu.run(1000);
    return { r, eax: m.cpu.readGpr(0), retired: m.cpu.instructionsRetired };
  });
  t.deepEqual(states[1], states[0]);
  t.is(states[0]!.eax, 20n, 'every iteration, including the first, adds the patched immediate');
});
