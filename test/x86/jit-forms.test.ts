/**
 * The instruction table drives the translator (as v86's table drives its code generator): an
 * entry's `jit` column says whether the translator emits it inline — and with which form — or
 * calls its interpreter handler. Read from the generated code of a trace: every entry that names
 * an inline form is inlined for 32- and 64-bit register operands (the forms' common ground; each
 * emitter's header lists what else it inlines), every 'handler' entry is a call, and flipping
 * one entry's column flips what is emitted.
 */
import test from 'ava';
import { OPCODE_TABLE, type OpcodeEntry } from '../../host/index.js';
import { Block, buildBlock } from '../../host/x86/block.js';
import { INLINE_FORMS, isBranchForm } from '../../host/x86/jit/forms.js';
import { translate } from '../../host/x86/jit/compile.js';
import { encode } from './fixtures/encode.js';
import { buildMachine, CODE } from './harness/machine.js';

const machine = buildMachine();
/** CMP EAX, EBX: flags for the forms that read them (CMOVcc). */
const CMP = [0x39, 0xd8];
const HLT = [0xf4];

/** The translated source of CMP; <instruction>; HLT, and whether slot 1 calls its handler. */
function slotOneCallsHandler(e: OpcodeEntry, osize: number, flip?: OpcodeEntry): boolean {
  const own = (e.opcode & 7) | (e.rexB === 1 ? 8 : 0);
  const bytes = encode(e, {
    osize, reg: e.operands.some((f) => f[0] === 'Z') ? own : 1, rm: e.mod === 'mem' || e.operands.includes('M') ? 'mem' : 2,
    disp8: 8, imm: e.family === 'shift' ? 3n : 5n, rep: e.prefix === 0xf2 || e.prefix === 0xf3 ? e.prefix : undefined,
  });
  machine.memory.writeBytes(CODE, Uint8Array.from([...CMP, ...bytes, ...HLT]));
  const b = buildBlock(machine.cpu, CODE / 4096, CODE % 4096)!;
  if (b.insns[1]!.entry !== e) throw new Error(`${e.name}: the encoding decodes to ${b.insns[1]!.entry.name}`);
  if (flip !== undefined) b.insns[1]!.entry = flip;
  const block = new Block(b.insns, b.frame, b.offset);
  return translate(machine.cpu, block).source.includes('X[1](c, I[1])');
}

function sizes(e: OpcodeEntry): number[] {
  switch (e.size) {
    case 'v': return [4, 8];
    case 'd64': case 'f64': return [8];
    default: return [];
  }
}

test('every inline form the table names has an emitter, and every emitter is named by some entry', (t) => {
  const named = new Set(OPCODE_TABLE.map((e) => e.jit));
  for (const form of named) t.true(form === 'handler' || isBranchForm(form) || form in INLINE_FORMS, `${form} has an emitter`);
  for (const form of Object.keys(INLINE_FORMS)) t.true(named.has(form as OpcodeEntry['jit']), `${form} is used by the table`);
});

test('entries with an inline form are inlined (32/64-bit register operands); \'handler\' entries are calls', (t) => {
  const wrong: string[] = [];
  let inline = 0, calls = 0;
  for (const e of OPCODE_TABLE) {
    if (e.unsupported || e.mod === 'mem' || e.operands.includes('M') && e.mnemonic !== 'lea') continue;
    if (e.flow === 'stop' || e.family === 'string' || e.family === 'interrupt' || isBranchForm(e.jit)) continue;
    for (const osize of sizes(e)) {
      if (e.mnemonic === 'movsxd' && osize === 4) continue; // MOVSXD r32 is a plain move; the form is for 64 bits
      const calls1 = slotOneCallsHandler(e, osize);
      if (e.jit === 'handler') {
        calls++;
        if (!calls1) wrong.push(`${e.name} /${osize * 8}: the column says handler, the code has none`);
      } else {
        inline++;
        if (calls1) wrong.push(`${e.name} /${osize * 8}: the column says ${e.jit}, the code calls the handler`);
      }
    }
  }
  t.deepEqual(wrong, []);
  t.true(inline > 150 && calls > 50, `${inline} inline, ${calls} handler forms checked`);
});

test('flipping an entry\'s column flips what the translator emits', (t) => {
  const add = OPCODE_TABLE.find((e) => e.name === 'add Ev,Gv [01]')!;
  const adc = OPCODE_TABLE.find((e) => e.name === 'adc Ev,Gv [11]')!;
  t.false(slotOneCallsHandler(add, 4));
  t.true(slotOneCallsHandler(add, 4, { ...add, jit: 'handler' }));
  t.true(slotOneCallsHandler(adc, 4));
  t.throws(() => slotOneCallsHandler(adc, 4, { ...adc, jit: 'nop' }), { message: /recorded flags|left no flags record/ },
    'an inline form that disagrees with the flag columns is refused when translated');
});
