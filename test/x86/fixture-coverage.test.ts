/**
 * The host-CPU fixtures (fixtures/semantics.json.gz) cover the instruction table, and adding an
 * instruction is safe: every user-level entry has cases in each of its operand sizes and
 * register/memory forms; the file holds exactly the cases fixtures/cases.ts makes from today's
 * table (else: regenerate); and a case depends on its entry's name, not on where the entry sits
 * in the table, so an inserted entry leaves every other case as it was.
 */
import test from 'ava';
import { decode, OPCODE_TABLE, type OpcodeEntry } from '../../host/index.js';
import { NONE } from '../../host/x86/decode/insn.js';
import { PREFIX_NONE } from '../../host/x86/decode/table-types.js';
import { semanticCases, undefinedResult, VENDOR_DEPENDENT, type CaseInput } from './fixtures/cases.js';
import { loadFixtures } from './fixtures/load.js';

const fixtures = loadFixtures();

/**
 * User-level: what a CPL-3 program can run with a result that depends on nothing but registers,
 * flags and memory. Not user-level: system instructions (privileged, or reporting the host's own
 * state), I/O (IOPL), interrupts (the host OS's IDT and MSRs decide), segment registers and far
 * returns (the host OS's GDT and selectors decide) and debug registers (privileged).
 */
const NOT_USER_LEVEL = new Set(['system', 'io', 'interrupt', 'segment', 'debug']);
function userLevel(e: OpcodeEntry): boolean {
  return !e.unsupported && !NOT_USER_LEVEL.has(e.family);
}

/** The operand sizes an entry can decode to (NP encodings take no 66 prefix, and REX.W changes nothing they do). */
function operandSizes(e: OpcodeEntry): number[] {
  if (e.prefix === PREFIX_NONE) return [4];
  switch (e.size) {
    case 'b': return [1];
    case 'w': return [2];
    case 'd': return [4];
    case 'q': case 'f64': return [8];
    case 'vw': return [2, 4];
    case 'd64': return [2, 8];
    case 'v': return [2, 4, 8];
  }
}

function forms(e: OpcodeEntry): ('reg' | 'mem')[] {
  if (!e.operands.some((f) => f[0] === 'E' || f === 'M')) return ['reg'];
  return e.mod === 'mem' ? ['mem'] : e.mod === 'reg' ? ['reg'] : ['reg', 'mem'];
}

function inputsOf(c: CaseInput): string {
  return JSON.stringify([c.name, c.code, c.seed, c.set, c.flags, c.poke]);
}

test('every user-level table entry has host-CPU fixtures, in each operand size and register/memory form', (t) => {
  const covered = new Set<string>();
  for (const c of fixtures.cases) {
    const bytes = Buffer.from(c.code + '90'.repeat(16), 'hex');
    const i = decode(bytes, 0, bytes.length);
    if (typeof i === 'number') continue;
    covered.add(`${i.entry.name} /${i.osize} ${i.rm === NONE && i.entry.hasModrm && i.entry.operands.some((f) => f[0] === 'E' || f === 'M') ? 'mem' : 'reg'}`);
  }
  const missing: string[] = [];
  const undefinedForms = new Set<string>();
  let required = 0;
  for (const e of OPCODE_TABLE.filter(userLevel)) {
    if (VENDOR_DEPENDENT[e.name] !== undefined) continue;
    for (const size of operandSizes(e)) {
      const why = undefinedResult(e, size);
      if (why !== undefined) {
        undefinedForms.add(why);
        continue;
      }
      for (const form of forms(e)) {
        required++;
        const key = `${e.name} /${size} ${form}`;
        if (!covered.has(key)) missing.push(key);
      }
    }
  }
  t.deepEqual(missing, [], 'entries without host-CPU cases (add them to test/x86/fixtures/cases.ts and regenerate)');
  t.true(required > 700, `${required} entry forms required`);
  for (const why of undefinedForms) t.log(`no cases: ${why}`);
  for (const name of Object.keys(VENDOR_DEPENDENT)) {
    t.true(OPCODE_TABLE.some((e) => e.name === name && userLevel(e)), `${name} is a user-level table entry`);
  }
});

test('the fixture file holds exactly the cases cases.ts makes from the table (else regenerate it)', (t) => {
  const made = semanticCases().map(inputsOf);
  const stored = fixtures.cases.map(inputsOf);
  const storedSet = new Set(stored);
  const madeSet = new Set(made);
  t.deepEqual(made.filter((c) => !storedSet.has(c)).slice(0, 5), [], 'cases missing from semantics.json.gz: run test/x86/fixtures/regenerate.sh');
  t.deepEqual(stored.filter((c) => !madeSet.has(c)).slice(0, 5), [], 'stale cases in semantics.json.gz: run test/x86/fixtures/regenerate.sh');
  t.is(fixtures.header.count, fixtures.cases.length);
});

test('inserting a table entry leaves every other entry\'s cases unchanged', (t) => {
  const byName = (cases: CaseInput[]): Map<string, string> => new Map(cases.map((c, k) => [`${c.name} ${k}`, inputsOf(c)]));
  const before = semanticCases();
  const beforeByName = byName(before);
  const template = OPCODE_TABLE.find((e) => e.mnemonic === 'add' && e.operands.join(',') === 'Ev,Gv')!;
  const inserted: OpcodeEntry = { ...template, name: 'add Ev,Gv [D6] (inserted)', opcode: 0xd6 };
  for (const at of [0, OPCODE_TABLE.length >> 1]) {
    const table = [...OPCODE_TABLE.slice(0, at), inserted, ...OPCODE_TABLE.slice(at)];
    const after = semanticCases(table).filter((c) => !c.name.includes('(inserted)'));
    t.is(after.length, before.length);
    t.deepEqual([...byName(after)].filter(([k, v]) => beforeByName.get(k) !== v).slice(0, 3), [], `entry inserted at ${at}`);
  }
  // Two entries never share seeds: they come from the names, which are unique.
  const names = new Set(OPCODE_TABLE.map((e) => e.name));
  t.is(names.size, OPCODE_TABLE.length, 'entry names are unique');
  t.is(new Set(before.map((c) => c.seed)).size, before.length, 'every case has its own seed');
});
