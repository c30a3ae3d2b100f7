/**
 * Instruction semantics against the host CPU: every fixture in fixtures/semantics.json.gz was
 * run on this machine's x86-64 processor (fixtures/native-runner.c); here the same bytes run on
 * the core (at CPL 3, as natively) with the reference interpreter and with block translation,
 * and registers, RFLAGS, memory and faults must match. With translation on, every block is
 * translated before its first run (jitThreshold 0), and each case must have entered translated
 * code — otherwise a bug in the translator would pass as the interpreter's success.
 *
 * Flags the SDM leaves undefined after an instruction are masked: the table's flagsUndefined
 * column (itself held to iced-x86's per-instruction info by decoder/flags.test.ts), refined by
 * the SDM's count rules for shifts and rotates, which no per-form column can state: a masked
 * count of 0 changes no flag (all are compared), and OF is defined for a count of 1 only.
 */
import test from 'ava';
import { decode } from '../../host/index.js';
import { buildMachine, type Machine } from './harness/machine.js';
import { CODE, DATA, expandInput, GPRS, MEM_SIZE, type FixtureCase } from './fixtures/layout.js';
import { loadFixtures } from './fixtures/load.js';

const fixtures = loadFixtures();
const OF = 0x800;

/** EFLAGS bits that are undefined after the case's (first) instruction. */
function undefinedFlags(code: Uint8Array, rcx: bigint): number {
  const bytes = new Uint8Array(code.length + 16);
  bytes.set(code);
  const i = decode(bytes, 0, bytes.length);
  if (typeof i === 'number') return 0; // #UD or #GP: nothing is written
  const e = i.entry;
  if (!e.flagsConditional) return e.flagsUndefined;
  const count = (e.operands.includes('CL') ? Number(rcx & 0xffn) : i.imm & 0xff) & (i.osize === 8 ? 0x3f : 0x1f);
  if (count === 0) return 0;
  return count === 1 ? e.flagsUndefined & ~OF : e.flagsUndefined | OF;
}

/** RF: the kernel reports it set at a fault (the saved image of a fault has RF=1). */
const RF = 0x10000;

function machine(jit: boolean): Machine & { jit: boolean } {
  const m = buildMachine({ memorySize: 1 << 30, user: true, userPdes: [DATA / 0x200000, CODE / 0x200000], jit });
  m.cpu.exceptionBitmap = 0xffffffff;
  return { ...m, jit };
}

function runFixture(m: Machine & { jit: boolean }, c: FixtureCase): string[] {
  const { memory, cpu } = m;
  const input = expandInput(c);
  const code = Buffer.from(c.code, 'hex');
  memory.writeBytes(CODE, Uint8Array.from([...code, 0x0f, 0xa2])); // the snippet, then CPUID (an intercept) to stop
  memory.writeBytes(DATA, input.memory);
  const regs = cpu.getRegs();
  GPRS.forEach((name, q) => { regs[name as keyof typeof regs] = input.regs[q]!; });
  regs.rip = BigInt(CODE);
  regs.rflags = input.rflags;
  cpu.setRegs(regs);

  const problems: string[] = [];
  const translatedBefore = cpu.translatedRuns;
  const r = cpu.run(1000);
  const translated = cpu.translatedRuns > translatedBefore;
  if (translated !== m.jit) problems.push(translated ? 'ran translated code with translation off' : 'no translated block ran');
  if (c.out.vector < 0) {
    if (r.kind !== 'cpuid') problems.push(`stopped with ${JSON.stringify(r, (_, v) => typeof v === 'bigint' ? v.toString(16) : v)}, expected completion`);
    else if (cpu.getRip() !== BigInt(CODE + code.length)) problems.push(`RIP ${cpu.getRip().toString(16)}, expected end of snippet`);
  } else if (r.kind !== 'exception' || r.vector !== c.out.vector) {
    problems.push(`stopped with ${JSON.stringify(r, (_, v) => typeof v === 'bigint' ? v.toString(16) : v)}, expected exception ${c.out.vector}`);
  } else if (cpu.getRip() !== BigInt(CODE)) {
    problems.push(`RIP ${cpu.getRip().toString(16)} after the fault, expected the faulting instruction`);
  }
  GPRS.forEach((name, q) => {
    const expected = c.out.regs[name] !== undefined ? BigInt('0x' + c.out.regs[name]) : input.regs[q]!;
    const actual = cpu.readGpr(q);
    if (actual !== expected) problems.push(`${name} = ${actual.toString(16)}, expected ${expected.toString(16)}`);
  });
  const mask = ~(undefinedFlags(code, input.regs[1]!) | RF) & 0x3fffff;
  const flags = Number(cpu.getRflags());
  if ((flags & mask) !== (c.out.rflags & mask)) {
    problems.push(`rflags = ${flags.toString(16)}, expected ${c.out.rflags.toString(16)} (compared bits ${mask.toString(16)})`);
  }
  const after = memory.readBytes(DATA, MEM_SIZE);
  const expectedMem = Uint8Array.from(input.memory);
  for (const [off, hex] of c.out.mem) expectedMem.set(Buffer.from(hex, 'hex'), off);
  for (let k = 0; k < MEM_SIZE; k++) {
    if (after[k] !== expectedMem[k]) {
      problems.push(`memory DATA+0x${k.toString(16)} = ${after[k]!.toString(16)}, expected ${expectedMem[k]!.toString(16)}`);
      break;
    }
  }
  return problems;
}

for (const jit of [false, true]) {
  test(`host-CPU fixtures (${fixtures.header.count} cases from ${fixtures.header.host}), ${jit ? 'with block translation' : 'interpreter only'}`, (t) => {
    const m = machine(jit);
    const failures: string[] = [];
    let failed = 0;
    for (const c of fixtures.cases) {
      const p = runFixture(m, c);
      if (p.length > 0) {
        failed++;
        if (failures.length < 25) failures.push(`${c.name} [${c.code}] seed ${c.seed}: ${p.join('; ')}`);
      }
    }
    t.is(fixtures.cases.length, fixtures.header.count);
    t.true(fixtures.cases.length > 5000);
    t.deepEqual(failures, [], `${failed} of ${fixtures.cases.length} cases differ`);
  });
}
