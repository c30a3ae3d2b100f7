/**
 * Translated code against the reference interpreter (itself checked against the host CPU by
 * semantics.test.ts): random loops built from the instruction table — ALU, shifts, multiply and
 * divide, bit operations, moves, stack operations, flag instructions, register and memory
 * operands — run from the same state on a core that translates every block on its first run and
 * on one that only interprets; registers, RFLAGS, memory, the stop reason and the retired count
 * must agree. Faults inside loops (#DE, #PF), budgets that end mid-loop and code that rewrites
 * itself are included.
 */
import test from 'ava';
import { OPCODE_TABLE, type OpcodeEntry } from '../../host/index.js';
import { encode, type EncodeChoice } from './fixtures/encode.js';
import { xorshift } from './harness/prng.js';
import { buildMachine, CODE, KERNEL_STACK_TOP, SCRATCH, type Machine } from './harness/machine.js';

const DATA = SCRATCH + 0x1000; // supervisor RW data, [rbx + disp8] points around DATA + 0x800
const FAMILIES = new Set(['alu', 'shift', 'muldiv', 'bit', 'move', 'stack', 'flag']);
/** Registers instructions may name: not RBX (memory base), RCX (loop counter), RSP. */
const POOL = [0, 2, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];

function usable(e: OpcodeEntry): boolean {
  if (!FAMILIES.has(e.family) || e.unsupported || e.prefix !== 0) return false;
  if (e.operands.some((f) => f[0] === 'O' || f === 'M' && e.mnemonic !== 'lea')) return false; // absolute moffs
  if (e.mnemonic === 'popf' || e.mnemonic === 'cli' || e.mnemonic === 'sti' || e.mnemonic === 'leave') return false;
  if (e.mnemonic === 'xchg' && e.operands.includes('rAX')) return true;
  return true;
}

const ENTRIES = OPCODE_TABLE.filter(usable);

function sizes(e: OpcodeEntry): number[] {
  return e.size === 'b' ? [1] : e.size === 'v' ? [2, 4, 8] : e.size === 'd64' ? [8] : [];
}

function randomInstruction(rnd: () => number): Uint8Array | null {
  const e = ENTRIES[rnd() % ENTRIES.length]!;
  const ss = sizes(e);
  if (ss.length === 0) return null;
  const osize = ss[rnd() % ss.length]!;
  const pick = (): number => POOL[rnd() % POOL.length]!;
  const ch: EncodeChoice = { osize, reg: pick() };
  const hasE = e.operands.some((f) => f[0] === 'E' || f === 'M');
  if (hasE) {
    const mem = e.mod === 'mem' || (e.mod !== 'reg' && rnd() % 3 === 0);
    ch.rm = mem ? 'mem' : pick();
    ch.disp8 = (rnd() % 256) - 128;
  }
  if ((e.mnemonic === 'pop' || e.mnemonic === 'push') && ch.rm === 'mem') ch.disp8 = (rnd() % 64) * 8 - 256;
  ch.imm = (BigInt(rnd()) << 32n) | BigInt(rnd());
  if (e.family === 'shift') ch.imm = BigInt(rnd() % 70);
  if (e.family === 'bit' && e.opcode !== 0xba && ch.rm === 'mem') return null; // bit-string offsets reach far
  return encode(e, ch);
}

function randomProgram(seed: number): { code: Uint8Array; regs: bigint[]; flags: bigint } {
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
  const edges = [0n, 1n, 0xffff_ffff_ffff_ffffn, 0x8000_0000n, 0xffff_ffffn, 0x1_0000_0000n, 0x7fff_ffff_ffff_ffffn];
  const regs = Array.from({ length: 16 }, () =>
    rnd() % 3 === 0 ? edges[rnd() % edges.length]! : (BigInt(rnd()) << 32n) | BigInt(rnd()));
  regs[3] = BigInt(DATA + 0x800);
  const flags = BigInt(0x202 | (rnd() & 0x8d5));
  return { code: Uint8Array.from(code), regs, flags };
}

function load(m: Machine, p: { code: Uint8Array; regs: bigint[]; flags: bigint }, seed: number): void {
  const rnd = xorshift(seed ^ 0x55aa);
  const data = new Uint8Array(0x1000);
  for (let k = 0; k < data.length; k++) data[k] = rnd() & 0xff;
  m.memory.writeBytes(DATA, data);
  m.memory.writeBytes(CODE, p.code);
  const r = m.cpu.getRegs();
  const names = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
  names.forEach((n, q) => { r[n] = p.regs[q]!; });
  r.rsp = BigInt(KERNEL_STACK_TOP);
  r.rip = BigInt(CODE);
  r.rflags = p.flags;
  m.cpu.setRegs(r);
}

function snapshot(m: Machine, result: unknown, retiredBefore = 0): string {
  return JSON.stringify({
    result, regs: m.cpu.getRegs(), retired: m.cpu.instructionsRetired - retiredBefore,
    data: Buffer.from(m.memory.readBytes(DATA, 0x1000)).toString('hex'),
    stack: Buffer.from(m.memory.readBytes(KERNEL_STACK_TOP - 0x1000, 0x1000)).toString('hex'),
  }, (_, v) => typeof v === 'bigint' ? v.toString(16) : v);
}

/** The two cores, reused from program to program (code, data, stack and registers reloaded). */
const interpreted = buildMachine({ jit: false });
const translated = buildMachine({ jit: true });

function compare(seed: number, budget: number, outcomes?: Map<string, number>): string | null {
  const p = randomProgram(seed);
  const a = interpreted, b = translated;
  const before = [a.cpu.instructionsRetired, b.cpu.instructionsRetired];
  for (const m of [a, b]) {
    m.cpu.exceptionBitmap = 0xffffffff;
    m.memory.writeBytes(KERNEL_STACK_TOP - 0x1000, new Uint8Array(0x1000));
    load(m, p, seed);
  }
  const ra = a.cpu.run(budget), rb = b.cpu.run(budget);
  if (outcomes) {
    const key = ra.kind === 'exception' ? `#${ra.vector}` : ra.kind;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    outcomes.set('retired', (outcomes.get('retired') ?? 0) + a.cpu.instructionsRetired - before[0]!);
  }
  const sa = snapshot(a, ra, before[0]), sb = snapshot(b, rb, before[1]);
  if (sa === sb) return null;
  const diff = Object.entries(JSON.parse(sa) as Record<string, unknown>)
    .filter(([k, v]) => JSON.stringify(v) !== JSON.stringify((JSON.parse(sb) as Record<string, unknown>)[k]))
    .map(([k, v]) => `${k}: interpreter ${JSON.stringify(v).slice(0, 300)} vs translated ${JSON.stringify((JSON.parse(sb) as Record<string, unknown>)[k]).slice(0, 300)}`);
  return `seed ${seed}, budget ${budget}, code ${Buffer.from(p.code).toString('hex')}: ${diff.join('; ')}`;
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
