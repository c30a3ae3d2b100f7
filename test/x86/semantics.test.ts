/**
 * Instruction semantics against the host CPU: every fixture in fixtures/semantics.json.gz was
 * run on this machine's x86-64 processor (fixtures/native-runner.c); here the same bytes run on
 * the core (at CPL 3, as natively) with the reference interpreter and with block translation,
 * and registers, RFLAGS, memory and faults must match. With translation on, every block is
 * translated before its first run (jitThreshold 0), and each case must have entered translated
 * code — otherwise a bug in the translator would pass as the interpreter's success. Flags the SDM leaves undefined after an
 * instruction are masked, as iced-x86 reports them (rflagsUndefined) — the oracle for "undefined"
 * is iced, not our table.
 */
import test from 'ava';
import { Decoder, DecoderOptions, MemorySizeExt, Mnemonic, OpKind, Register, RegisterExt, RflagsBits } from 'iced-x86';
import { buildMachine, type Machine } from './harness/machine.js';
import { CODE, DATA, expandInput, GPRS, MEM_SIZE, type FixtureCase } from './fixtures/layout.js';
import { loadFixtures } from './fixtures/load.js';

const fixtures = loadFixtures();

const ICED_TO_EFLAGS: [number, number][] = [
  [RflagsBits.OF, 0x800], [RflagsBits.SF, 0x80], [RflagsBits.ZF, 0x40], [RflagsBits.AF, 0x10],
  [RflagsBits.CF, 0x1], [RflagsBits.PF, 0x4], [RflagsBits.DF, 0x400], [RflagsBits.IF, 0x200], [RflagsBits.AC, 0x40000],
];

const SHIFTS = new Set([Mnemonic.Rol, Mnemonic.Ror, Mnemonic.Rcl, Mnemonic.Rcr, Mnemonic.Shl, Mnemonic.Sal, Mnemonic.Shr,
  Mnemonic.Sar, Mnemonic.Shld, Mnemonic.Shrd]);

/**
 * EFLAGS bits that are undefined after this instruction: those iced-x86 reports
 * (rflagsUndefined, per instruction form), plus OF after a shift or rotate whose masked count is
 * not 1 — the SDM defines OF for 1-bit shifts only, which a static per-form table cannot say.
 */
function undefinedFlags(code: Uint8Array, rcx: bigint): number {
  const buf = new Uint8Array(16);
  buf.set(code);
  const d = new Decoder(64, buf, DecoderOptions.None);
  const i = d.decode();
  let mask = 0;
  for (const [iced, eflags] of ICED_TO_EFLAGS) if ((i.rflagsUndefined & iced) !== 0) mask |= eflags;
  if (SHIFTS.has(i.mnemonic)) {
    const last = i.opCount - 1;
    const count = i.opKind(last) === OpKind.Register && i.opRegister(last) === Register.CL
      ? Number(rcx & 0xffn)
      : Number(i.immediate(last));
    const size = i.opKind(0) === OpKind.Register ? RegisterExt.size(i.opRegister(0)) : MemorySizeExt.size(i.memorySize);
    if ((count & (size === 8 ? 0x3f : 0x1f)) !== 1) mask |= 0x800;
  }
  d.free();
  return mask;
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
