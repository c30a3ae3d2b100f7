/**
 * Translated code against the reference interpreter: a program runs from the same state on a
 * core that translates every block before its first run and on one that only interprets, and
 * registers, RFLAGS, the data and stack pages, the stop reason and the retired count must agree.
 */
import { xorshift } from './prng.js';
import { buildMachine, CODE, KERNEL_STACK_TOP, SCRATCH, type Machine } from './machine.js';

/** Supervisor RW data, [rbx + disp8] points around DATA + 0x800. */
export const DATA = SCRATCH + 0x1000;

export interface Program {
  code: Uint8Array;
  /** RAX..R15 (RSP is set to the kernel stack top). */
  regs: bigint[];
  flags: bigint;
}

const GPR = ['rax', 'rcx', 'rdx', 'rbx', 'rsp', 'rbp', 'rsi', 'rdi', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;

/** Loads a program at CODE, a data page seeded from `seed`, a zeroed stack page, and the registers. */
export function loadProgram(m: Machine, p: Program, seed: number): void {
  const rnd = xorshift(seed ^ 0x55aa);
  const data = new Uint8Array(0x1000);
  for (let k = 0; k < data.length; k++) data[k] = rnd() & 0xff;
  m.memory.writeBytes(DATA, data);
  m.memory.writeBytes(KERNEL_STACK_TOP - 0x1000, new Uint8Array(0x1000));
  m.memory.writeBytes(CODE, p.code);
  const r = m.cpu.getRegs();
  GPR.forEach((n, q) => { r[n] = p.regs[q]!; });
  r.rsp = BigInt(KERNEL_STACK_TOP);
  r.rip = BigInt(CODE);
  r.rflags = p.flags;
  m.cpu.setRegs(r);
}

export function snapshot(m: Machine, result: unknown, retiredBefore = 0): string {
  return JSON.stringify({
    result, regs: m.cpu.getRegs(), retired: m.cpu.instructionsRetired - retiredBefore,
    data: Buffer.from(m.memory.readBytes(DATA, 0x1000)).toString('hex'),
    stack: Buffer.from(m.memory.readBytes(KERNEL_STACK_TOP - 0x1000, 0x1000)).toString('hex'),
  }, (_, v) => typeof v === 'bigint' ? v.toString(16) : v);
}

/** The two cores, reused from program to program (code, data, stack and registers reloaded). */
export const interpreted = buildMachine({ jit: false });
export const translated = buildMachine({ jit: true });

/**
 * Runs `p` on both cores with `budget`; returns null when they agree, else what differs.
 * `outcomes` (optional) tallies the stop reasons and retired instructions; `setup` (optional)
 * adjusts each core after loading.
 */
export function compareRun(
  p: Program, seed: number, budget: number, outcomes?: Map<string, number>, setup?: (m: Machine) => void,
): string | null {
  const a = interpreted, b = translated;
  const before = [a.cpu.instructionsRetired, b.cpu.instructionsRetired];
  for (const m of [a, b]) {
    m.cpu.exceptionBitmap = 0xffffffff;
    loadProgram(m, p, seed);
    setup?.(m);
  }
  const ra = a.cpu.run(budget), rb = b.cpu.run(budget);
  if (outcomes) {
    const key = ra.kind === 'exception' ? `#${ra.vector}` : ra.kind;
    outcomes.set(key, (outcomes.get(key) ?? 0) + 1);
    outcomes.set('retired', (outcomes.get('retired') ?? 0) + a.cpu.instructionsRetired - before[0]!);
  }
  const sa = snapshot(a, ra, before[0]), sb = snapshot(b, rb, before[1]);
  if (sa === sb) return null;
  const ja = JSON.parse(sa) as Record<string, unknown>, jb = JSON.parse(sb) as Record<string, unknown>;
  const diff = Object.entries(ja)
    .filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(jb[k]))
    .map(([k, v]) => `${k}: interpreter ${JSON.stringify(v).slice(0, 300)} vs translated ${JSON.stringify(jb[k]).slice(0, 300)}`);
  return `seed ${seed}, budget ${budget}, code ${Buffer.from(p.code).toString('hex')}: ${diff.join('; ')}`;
}

/** Random register values, biased to edges; RBX points at DATA + 0x800. */
export function randomRegisters(rnd: () => number): bigint[] {
  const edges = [0n, 1n, 0xffff_ffff_ffff_ffffn, 0x8000_0000n, 0xffff_ffffn, 0x1_0000_0000n, 0x7fff_ffff_ffff_ffffn];
  const regs = Array.from({ length: 16 }, () =>
    rnd() % 3 === 0 ? edges[rnd() % edges.length]! : (BigInt(rnd()) << 32n) | BigInt(rnd()));
  regs[3] = BigInt(DATA + 0x800);
  return regs;
}

export { CODE, KERNEL_STACK_TOP };
