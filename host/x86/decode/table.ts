/**
 * The instruction table: every encoding the core supports, one entry per opcode form, in the
 * SDM's opcode-map notation (vol. 2, appendix A). It is the single source for the decoder
 * (decoder.ts builds its lookup from it), the executors (each entry names its handler), the
 * block translator (jit/), and the tests (which derive operand shapes and flag expectations
 * from it and compare them with iced-x86 and with the host CPU).
 *
 * Order matters within one opcode: the decoder takes the first entry whose mandatory prefix,
 * ModRM.reg extension, ModRM.mod restriction, exact ModRM byte and REX.B requirement match.
 * Valid encodings the core does not implement are listed as `unsupported` where a more general
 * entry would otherwise claim them; everything absent decodes to #UD.
 */
import {
  X86_EFLAGS_AC, X86_EFLAGS_AF, X86_EFLAGS_CF, X86_EFLAGS_DF, X86_EFLAGS_IF, X86_EFLAGS_OF, X86_EFLAGS_PF,
  X86_EFLAGS_SF, X86_EFLAGS_ZF,
} from '../../../protocol/abi.js';
import {
  aluEG, aluEI, aluGE, ALU_ADC, ALU_AND, ALU_CMP, ALU_OR, ALU_SBB, ALU_XOR, cmpxchg, cmpxchg8b, incDecE,
  negE, notE, testEG, testEI, xadd,
} from '../execute/alu.js';
import { bitScan, bitTest, BT_COMPLEMENT, BT_RESET, BT_SET, BT_TEST, countZeros, popcnt } from '../execute/bit.js';
import { callE, callRel, jccRel, jmpE, jmpRel, loop, ret } from '../execute/control.js';
import { movFromDr, movToDr } from '../execute/debug.js';
import { flagOp, FL_CLC, FL_CLD, FL_CLI, FL_CMC, FL_STC, FL_STD, FL_STI, lahf, sahf } from '../execute/flag.js';
import { int1, int3, intN, iret, syscall, sysret } from '../execute/interrupt.js';
import { io } from '../execute/io.js';
import {
  bswap, cmov, convertAcc, convertAccToDx, lea, movAO, movEG, movEI, movGE, movOA, movsx, movsxd, movZI, movzx, nop,
  setcc, xchg, xlat,
} from '../execute/move.js';
import { divAcc, imulGE, imulGEI, mulAcc } from '../execute/muldiv.js';
import { shiftDouble, shiftGroup } from '../execute/shift.js';
import { farRet, movFromSreg, movToSreg } from '../execute/segment.js';
import { enter, leave, popE, popf, popZ, pushE, pushf, pushI, pushZ } from '../execute/stack.js';
import { stringOp, STR_CMPS, STR_LODS, STR_MOVS, STR_SCAS, STR_STOS } from '../execute/string.js';
import {
  clts, cpuid, hlt, hypercall, invlpg, lldt, lmsw, loadDescriptorTable, ltr, movFromCr, movToCr, rdmsr, rdtsc, setAc,
  smsw, storeDescriptorTable, swapgs, undefinedOpcode, wrmsr,
} from '../execute/system.js';
import type { Handler } from './insn.js';
import {
  PREFIX_NONE, type Family, type Flow, type JitForm, type OpcodeEntry, type OperandForm, type SizeRule,
} from './table-types.js';

const O = X86_EFLAGS_OF, S = X86_EFLAGS_SF, Z = X86_EFLAGS_ZF, A = X86_EFLAGS_AF, P = X86_EFLAGS_PF, C = X86_EFLAGS_CF;
const OSZAPC = O | S | Z | A | P | C;
const D = X86_EFLAGS_DF, I = X86_EFLAGS_IF, AC = X86_EFLAGS_AC;
/** Everything RFLAGS-wide that the flag columns track (what POPF, IRET, SYSCALL... touch). */
const ALL = OSZAPC | D | I | AC;

interface Options {
  ext?: number;
  mod?: 'reg' | 'mem';
  modrm?: number;
  prefix?: 0xf2 | 0xf3 | typeof PREFIX_NONE;
  mnemonic32?: string;
  size?: SizeRule;
  lock?: boolean;
  flow?: Flow;
  written?: number;
  undef?: number;
  read?: number;
  conditional?: boolean;
  jit?: JitForm;
  sub?: number;
  rexB?: 0 | 1;
  unsupported?: boolean;
  sizeMnemonics?: Record<number, string>;
}

const BYTE_FORMS = new Set(['Eb', 'Gb', 'Zb', 'AL', 'Ob', 'Xb', 'Yb']);

const hex2 = (v: number): string => v.toString(16).toUpperCase().padStart(2, '0');

/** The encoding in the SDM's opcode notation: mandatory prefix, map, opcode, ModRM constraints. */
function encodingName(map: 0 | 1, opcode: number, o: Options): string {
  const parts: string[] = [];
  if (o.prefix === PREFIX_NONE) parts.push('NP');
  else if (o.prefix !== undefined) parts.push(hex2(o.prefix));
  if (map === 1) parts.push('0F');
  parts.push(hex2(opcode));
  if (o.modrm !== undefined) parts.push(hex2(o.modrm));
  if (o.ext !== undefined) parts.push(`/${o.ext}`);
  if (o.mod !== undefined) parts.push(o.mod === 'reg' ? '(mod=11)' : '(mod!=11)');
  if (o.rexB !== undefined) parts.push(`(REX.B=${o.rexB})`);
  return parts.join(' ');
}

function entry(map: 0 | 1, opcode: number, mnemonic: string, operands: string, family: Family, exec: Handler, o: Options = {}): OpcodeEntry {
  const ops = (operands === '' ? [] : operands.split(',')) as OperandForm[];
  const sizedOps = ops.filter((f) => f[0] === 'E' || f[0] === 'G' || f[0] === 'Z' || f === 'AL' || f === 'rAX' || f[0] === 'O' || f[0] === 'X' || f[0] === 'Y');
  const size: SizeRule = o.size ?? (sizedOps.length > 0 && sizedOps.every((f) => BYTE_FORMS.has(f)) ? 'b' : 'v');
  const hasModrm = ops.some((f) => f[0] === 'E' || f[0] === 'G' || f === 'M' || f === 'R' || f === 'C' || f === 'D' || f === 'Sw') ||
    o.ext !== undefined || o.mod !== undefined || o.modrm !== undefined;
  return {
    name: `${mnemonic}${ops.length > 0 ? ' ' + ops.join(',') : ''} [${encodingName(map, opcode, o)}]`,
    mnemonic, map, opcode, ext: o.ext ?? -1, mod: o.mod ?? 'any', modrm: o.modrm ?? -1, prefix: o.prefix ?? 0,
    operands: ops, size, lockable: o.lock ?? false, family, flow: o.flow ?? 'next',
    flagsRead: o.read ?? 0, flagsWritten: o.written ?? 0, flagsUndefined: o.undef ?? 0,
    flagsConditional: o.conditional ?? false, jit: o.jit ?? 'handler', sub: o.sub ?? 0,
    exec, hasModrm, rexB: o.rexB ?? -1, unsupported: o.unsupported ?? false, sizeMnemonics: o.sizeMnemonics,
    mnemonic32: o.mnemonic32,
  };
}

const one = (op: number, m: string, ops: string, f: Family, h: Handler, o?: Options): OpcodeEntry => entry(0, op, m, ops, f, h, o);
const two = (op: number, m: string, ops: string, f: Family, h: Handler, o?: Options): OpcodeEntry => entry(1, op, m, ops, f, h, o);

const CONDITIONS = ['o', 'no', 'b', 'ae', 'e', 'ne', 'be', 'a', 's', 'ns', 'p', 'np', 'l', 'ge', 'le', 'g'];
/** Flags each condition reads (SDM vol. 1 appendix B), by condition code. */
const CONDITION_READS = [O, O, C, C, Z, Z, C | Z, C | Z, S, S, P, P, S | O, S | O, Z | S | O, Z | S | O];
const BRANCH: Options = { flow: 'branch', size: 'f64' };

function aluEntries(): OpcodeEntry[] {
  const names = ['add', 'or', 'adc', 'sbb', 'and', 'sub', 'xor', 'cmp'];
  const out: OpcodeEntry[] = [];
  for (let k = 0; k < 8; k++) {
    const m = names[k]!;
    const logic = k === ALU_OR || k === ALU_AND || k === ALU_XOR;
    const carry = k === ALU_ADC || k === ALU_SBB;
    const f: Options = {
      sub: k, written: OSZAPC, undef: logic ? A : 0, read: carry ? C : 0, lock: k !== ALU_CMP, jit: carry ? 'handler' : 'alu',
    };
    const noLock = { ...f, lock: false };
    out.push(
      one(k * 8, m, 'Eb,Gb', 'alu', aluEG, f),
      one(k * 8 + 1, m, 'Ev,Gv', 'alu', aluEG, f),
      one(k * 8 + 2, m, 'Gb,Eb', 'alu', aluGE, noLock),
      one(k * 8 + 3, m, 'Gv,Ev', 'alu', aluGE, noLock),
      one(k * 8 + 4, m, 'AL,Ib', 'alu', aluEI, noLock),
      one(k * 8 + 5, m, 'rAX,Iz', 'alu', aluEI, noLock),
      one(0x80, m, 'Eb,Ib', 'alu', aluEI, { ...f, ext: k }),
      one(0x81, m, 'Ev,Iz', 'alu', aluEI, { ...f, ext: k }),
      one(0x83, m, 'Ev,Ibs', 'alu', aluEI, { ...f, ext: k }),
    );
  }
  return out;
}

function shiftEntries(): OpcodeEntry[] {
  const names = ['rol', 'ror', 'rcl', 'rcr', 'shl', 'shr', 'sal', 'sar'];
  const out: OpcodeEntry[] = [];
  for (let k = 0; k < 8; k++) {
    const rotate = k < 4;
    const written = rotate ? O | C : OSZAPC;
    const read = k === 2 || k === 3 ? C : 0; // RCL, RCR rotate through CF
    // Shifts (not rotates) by a constant are translated inline; by CL, the handler.
    const jit: JitForm = rotate ? 'handler' : 'shift';
    const byOne: Options = { ext: k, sub: k, written, undef: rotate ? 0 : A, read, jit };
    const byImm: Options = { ext: k, sub: k, written, undef: rotate ? O : O | A, read, conditional: true, jit };
    const byCl: Options = { ...byImm, jit: 'handler' };
    out.push(
      one(0xc0, names[k]!, 'Eb,Ib', 'shift', shiftGroup, byImm),
      one(0xc1, names[k]!, 'Ev,Ib', 'shift', shiftGroup, byImm),
      one(0xd0, names[k]!, 'Eb,1', 'shift', shiftGroup, byOne),
      one(0xd1, names[k]!, 'Ev,1', 'shift', shiftGroup, byOne),
      one(0xd2, names[k]!, 'Eb,CL', 'shift', shiftGroup, byCl),
      one(0xd3, names[k]!, 'Ev,CL', 'shift', shiftGroup, byCl),
    );
  }
  return out;
}

function conditionEntries(): OpcodeEntry[] {
  const out: OpcodeEntry[] = [];
  for (let cc = 0; cc < 16; cc++) {
    const n = CONDITIONS[cc]!;
    const read = CONDITION_READS[cc]!;
    out.push(
      one(0x70 + cc, 'j' + n, 'Jb', 'control', jccRel, { ...BRANCH, sub: cc, read, jit: 'jcc' }),
      two(0x80 + cc, 'j' + n, 'Jz', 'control', jccRel, { ...BRANCH, sub: cc, read, jit: 'jcc' }),
      two(0x40 + cc, 'cmov' + n, 'Gv,Ev', 'move', cmov, { sub: cc, read, jit: 'cmov' }),
      two(0x90 + cc, 'set' + n, 'Eb', 'move', setcc, { sub: cc, read }),
    );
  }
  return out;
}

function registerEntries(): OpcodeEntry[] {
  const out: OpcodeEntry[] = [];
  for (let r = 0; r < 8; r++) {
    out.push(
      one(0x50 + r, 'push', 'Zv', 'stack', pushZ, { size: 'd64', jit: 'push' }),
      one(0x58 + r, 'pop', 'Zv', 'stack', popZ, { size: 'd64', jit: 'pop' }),
      one(0xb0 + r, 'mov', 'Zb,Ib', 'move', movZI, { jit: 'mov-imm' }),
      one(0xb8 + r, 'mov', 'Zv,Iv', 'move', movZI, { jit: 'mov-imm' }),
      two(0xc8 + r, 'bswap', 'Zv', 'move', bswap),
    );
    if (r > 0) out.push(one(0x90 + r, 'xchg', 'Zv,rAX', 'move', xchg));
  }
  return out;
}

const STRING_SIZES = (base: string): Record<number, string> => ({ 1: base + 'b', 2: base + 'w', 4: base + 'd', 8: base + 'q' });

function stringEntries(): OpcodeEntry[] {
  const ops: [number, string, number, string, string][] = [
    [0xa4, 'movs', STR_MOVS, 'Yb,Xb', 'Yv,Xv'],
    [0xa6, 'cmps', STR_CMPS, 'Xb,Yb', 'Xv,Yv'],
    [0xaa, 'stos', STR_STOS, 'Yb,AL', 'Yv,rAX'],
    [0xac, 'lods', STR_LODS, 'AL,Xb', 'rAX,Xv'],
    [0xae, 'scas', STR_SCAS, 'AL,Yb', 'rAX,Yv'],
  ];
  const out: OpcodeEntry[] = [];
  for (const [op, m, sub, byteOps, wideOps] of ops) {
    const compare = sub === STR_CMPS || sub === STR_SCAS;
    const o: Options = { sub, flow: 'branch', read: D, written: compare ? OSZAPC : 0, sizeMnemonics: STRING_SIZES(m) };
    out.push(
      one(op, m + 'b', byteOps, 'string', stringOp, { ...o, size: 'b' }),
      one(op + 1, m, wideOps, 'string', stringOp, { ...o, size: 'v' }),
    );
  }
  return out;
}

/** BT/BTS/BTR/BTC: CF is the bit; OF/SF/AF/PF undefined; ZF unchanged. */
function bitTestEntries(): OpcodeEntry[] {
  const ops: [string, number, number][] = [['bt', 0xa3, BT_TEST], ['bts', 0xab, BT_SET], ['btr', 0xb3, BT_RESET], ['btc', 0xbb, BT_COMPLEMENT]];
  return ops.flatMap(([m, opcode, sub], k) => {
    const o: Options = { sub, lock: sub !== BT_TEST, written: O | S | A | P | C, undef: O | S | A | P };
    return [two(opcode, m, 'Ev,Gv', 'bit', bitTest, o), two(0xba, m, 'Ev,Ib', 'bit', bitTest, { ...o, ext: 4 + k })];
  });
}

const STOP: Options = { flow: 'stop' };
const TEST: Options = { written: OSZAPC, undef: A, jit: 'test' };

export const OPCODE_TABLE: readonly OpcodeEntry[] = [
  ...aluEntries(),
  ...shiftEntries(),
  ...conditionEntries(),
  ...registerEntries(),
  ...stringEntries(),

  // Data movement
  one(0x63, 'movsxd', 'Gv,Ez', 'move', movsxd, { jit: 'movsxd' }),
  one(0x86, 'xchg', 'Eb,Gb', 'move', xchg, { lock: true }),
  one(0x87, 'xchg', 'Ev,Gv', 'move', xchg, { lock: true }),
  one(0x88, 'mov', 'Eb,Gb', 'move', movEG, { jit: 'mov' }),
  one(0x89, 'mov', 'Ev,Gv', 'move', movEG, { jit: 'mov' }),
  one(0x8a, 'mov', 'Gb,Eb', 'move', movGE, { jit: 'mov' }),
  one(0x8b, 'mov', 'Gv,Ev', 'move', movGE, { jit: 'mov' }),
  one(0x8d, 'lea', 'Gv,M', 'move', lea, { mod: 'mem', jit: 'lea' }),
  one(0x90, 'pause', '', 'nop', nop, { prefix: 0xf3, jit: 'nop' }),
  one(0x90, 'nop', '', 'nop', nop, { rexB: 0, jit: 'nop' }),
  one(0x90, 'xchg', 'Zv,rAX', 'move', xchg, { rexB: 1 }),
  one(0x98, 'cwde', '', 'move', convertAcc, { sizeMnemonics: { 2: 'cbw', 4: 'cwde', 8: 'cdqe' } }),
  one(0x99, 'cdq', '', 'move', convertAccToDx, { sizeMnemonics: { 2: 'cwd', 4: 'cdq', 8: 'cqo' } }),
  one(0xa0, 'mov', 'AL,Ob', 'move', movAO),
  one(0xa1, 'mov', 'rAX,Ov', 'move', movAO),
  one(0xa2, 'mov', 'Ob,AL', 'move', movOA),
  one(0xa3, 'mov', 'Ov,rAX', 'move', movOA),
  one(0xc6, 'mov', 'Eb,Ib', 'move', movEI, { ext: 0, jit: 'mov' }),
  one(0xc7, 'mov', 'Ev,Iz', 'move', movEI, { ext: 0, jit: 'mov' }),
  two(0xb6, 'movzx', 'Gv,Eb', 'move', movzx, { jit: 'extend' }),
  two(0xb7, 'movzx', 'Gv,Ew', 'move', movzx, { jit: 'extend' }),
  two(0xbe, 'movsx', 'Gv,Eb', 'move', movsx, { jit: 'extend' }),
  two(0xbf, 'movsx', 'Gv,Ew', 'move', movsx, { jit: 'extend' }),
  one(0xd7, 'xlatb', 'Mx', 'move', xlat, { size: 'b' }),

  // Arithmetic and logic beyond the 00..3F block
  one(0x84, 'test', 'Eb,Gb', 'alu', testEG, TEST),
  one(0x85, 'test', 'Ev,Gv', 'alu', testEG, TEST),
  one(0xa8, 'test', 'AL,Ib', 'alu', testEI, TEST),
  one(0xa9, 'test', 'rAX,Iz', 'alu', testEI, TEST),
  one(0xf6, 'test', 'Eb,Ib', 'alu', testEI, { ...TEST, ext: 0 }),
  one(0xf6, 'test', 'Eb,Ib', 'alu', testEI, { ...TEST, ext: 1 }),
  one(0xf6, 'not', 'Eb', 'alu', notE, { ext: 2, lock: true }),
  one(0xf6, 'neg', 'Eb', 'alu', negE, { ext: 3, lock: true, written: OSZAPC }),
  one(0xf6, 'mul', 'Eb', 'muldiv', mulAcc, { ext: 4, sub: 4, written: OSZAPC, undef: S | Z | A | P }),
  one(0xf6, 'imul', 'Eb', 'muldiv', mulAcc, { ext: 5, sub: 5, written: OSZAPC, undef: S | Z | A | P }),
  one(0xf6, 'div', 'Eb', 'muldiv', divAcc, { ext: 6, sub: 6, written: OSZAPC, undef: OSZAPC }),
  one(0xf6, 'idiv', 'Eb', 'muldiv', divAcc, { ext: 7, sub: 7, written: OSZAPC, undef: OSZAPC }),
  one(0xf7, 'test', 'Ev,Iz', 'alu', testEI, { ...TEST, ext: 0 }),
  one(0xf7, 'test', 'Ev,Iz', 'alu', testEI, { ...TEST, ext: 1 }),
  one(0xf7, 'not', 'Ev', 'alu', notE, { ext: 2, lock: true }),
  one(0xf7, 'neg', 'Ev', 'alu', negE, { ext: 3, lock: true, written: OSZAPC }),
  one(0xf7, 'mul', 'Ev', 'muldiv', mulAcc, { ext: 4, sub: 4, written: OSZAPC, undef: S | Z | A | P }),
  one(0xf7, 'imul', 'Ev', 'muldiv', mulAcc, { ext: 5, sub: 5, written: OSZAPC, undef: S | Z | A | P }),
  one(0xf7, 'div', 'Ev', 'muldiv', divAcc, { ext: 6, sub: 6, written: OSZAPC, undef: OSZAPC }),
  one(0xf7, 'idiv', 'Ev', 'muldiv', divAcc, { ext: 7, sub: 7, written: OSZAPC, undef: OSZAPC }),
  // INC/DEC leave CF as it was (they write every arithmetic flag but CF).
  one(0xfe, 'inc', 'Eb', 'alu', incDecE, { ext: 0, sub: 0, lock: true, written: O | S | Z | A | P, jit: 'incdec' }),
  one(0xfe, 'dec', 'Eb', 'alu', incDecE, { ext: 1, sub: 1, lock: true, written: O | S | Z | A | P, jit: 'incdec' }),
  one(0xff, 'inc', 'Ev', 'alu', incDecE, { ext: 0, sub: 0, lock: true, written: O | S | Z | A | P, jit: 'incdec' }),
  one(0xff, 'dec', 'Ev', 'alu', incDecE, { ext: 1, sub: 1, lock: true, written: O | S | Z | A | P, jit: 'incdec' }),
  one(0x69, 'imul', 'Gv,Ev,Iz', 'muldiv', imulGEI, { written: OSZAPC, undef: S | Z | A | P }),
  one(0x6b, 'imul', 'Gv,Ev,Ibs', 'muldiv', imulGEI, { written: OSZAPC, undef: S | Z | A | P }),
  two(0xaf, 'imul', 'Gv,Ev', 'muldiv', imulGE, { written: OSZAPC, undef: S | Z | A | P }),
  two(0xb0, 'cmpxchg', 'Eb,Gb', 'alu', cmpxchg, { lock: true, written: OSZAPC }),
  two(0xb1, 'cmpxchg', 'Ev,Gv', 'alu', cmpxchg, { lock: true, written: OSZAPC }),
  two(0xc0, 'xadd', 'Eb,Gb', 'alu', xadd, { lock: true, written: OSZAPC }),
  two(0xc1, 'xadd', 'Ev,Gv', 'alu', xadd, { lock: true, written: OSZAPC }),
  two(0xc7, 'cmpxchg8b', 'M', 'alu', cmpxchg8b, {
    ext: 1, mod: 'mem', size: 'v', lock: true, written: Z, sizeMnemonics: { 2: 'cmpxchg8b', 4: 'cmpxchg8b', 8: 'cmpxchg16b' },
  }),

  // Shifts by two registers
  two(0xa4, 'shld', 'Ev,Gv,Ib', 'shift', shiftDouble, { sub: 0, written: OSZAPC, undef: O | A, conditional: true }),
  two(0xa5, 'shld', 'Ev,Gv,CL', 'shift', shiftDouble, { sub: 0, written: OSZAPC, undef: O | A, conditional: true }),
  two(0xac, 'shrd', 'Ev,Gv,Ib', 'shift', shiftDouble, { sub: 1, written: OSZAPC, undef: O | A, conditional: true }),
  two(0xad, 'shrd', 'Ev,Gv,CL', 'shift', shiftDouble, { sub: 1, written: OSZAPC, undef: O | A, conditional: true }),

  // Bits
  ...bitTestEntries(),
  two(0xb8, 'popcnt', 'Gv,Ev', 'bit', popcnt, { prefix: 0xf3, written: OSZAPC }),
  two(0xbc, 'tzcnt', 'Gv,Ev', 'bit', countZeros, { prefix: 0xf3, sub: 0, written: OSZAPC, undef: O | S | A | P }),
  two(0xbc, 'bsf', 'Gv,Ev', 'bit', bitScan, { sub: 0, written: OSZAPC, undef: O | S | A | P | C }),
  two(0xbd, 'lzcnt', 'Gv,Ev', 'bit', countZeros, { prefix: 0xf3, sub: 1, written: OSZAPC, undef: O | S | A | P }),
  two(0xbd, 'bsr', 'Gv,Ev', 'bit', bitScan, { sub: 1, written: OSZAPC, undef: O | S | A | P | C }),

  // Stack
  one(0x68, 'push', 'Iz', 'stack', pushI, { size: 'd64', jit: 'push' }),
  one(0x6a, 'push', 'Ibs', 'stack', pushI, { size: 'd64', jit: 'push' }),
  one(0x8f, 'pop', 'Ev', 'stack', popE, { ext: 0, size: 'd64' }),
  one(0xff, 'push', 'Ev', 'stack', pushE, { ext: 6, size: 'd64' }),
  one(0x9c, 'pushf', '', 'stack', pushf, { size: 'd64', read: ALL, sizeMnemonics: { 2: 'pushf', 8: 'pushfq' } }),
  // POPF may set TF: it ends its block, so that the next instruction is single-stepped (debug.ts).
  one(0x9d, 'popf', '', 'stack', popf, { size: 'd64', flow: 'stop', written: ALL, sizeMnemonics: { 2: 'popf', 8: 'popfq' } }),
  one(0xc9, 'leave', '', 'stack', leave, { size: 'd64' }),
  one(0xc8, 'enter', 'Iw,Ib', 'stack', enter, { size: 'd64' }),

  // Control transfer
  one(0xe8, 'call', 'Jz', 'control', callRel, { ...BRANCH, jit: 'call' }),
  one(0xe9, 'jmp', 'Jz', 'control', jmpRel, { ...BRANCH, jit: 'jmp' }),
  one(0xeb, 'jmp', 'Jb', 'control', jmpRel, { ...BRANCH, jit: 'jmp' }),
  one(0xff, 'call', 'Ev', 'control', callE, { ...BRANCH, ext: 2 }),
  one(0xff, 'jmp', 'Ev', 'control', jmpE, { ...BRANCH, ext: 4 }),
  one(0xc2, 'ret', 'Iw', 'control', ret, { ...BRANCH, jit: 'ret' }),
  one(0xc3, 'ret', '', 'control', ret, { ...BRANCH, jit: 'ret' }),
  one(0xe0, 'loopne', 'Jb', 'control', loop, { ...BRANCH, read: Z }),
  one(0xe1, 'loope', 'Jb', 'control', loop, { ...BRANCH, read: Z }),
  one(0xe2, 'loop', 'Jb', 'control', loop, BRANCH),
  one(0xe3, 'jrcxz', 'Jb', 'control', loop, { ...BRANCH, mnemonic32: 'jecxz' }),

  // Flags
  one(0xf5, 'cmc', '', 'flag', flagOp, { sub: FL_CMC, written: C, read: C }),
  one(0xf8, 'clc', '', 'flag', flagOp, { sub: FL_CLC, written: C }),
  one(0xf9, 'stc', '', 'flag', flagOp, { sub: FL_STC, written: C }),
  one(0xfa, 'cli', '', 'flag', flagOp, { sub: FL_CLI, written: I }),
  one(0xfb, 'sti', '', 'flag', flagOp, { sub: FL_STI, written: I }),
  one(0xfc, 'cld', '', 'flag', flagOp, { sub: FL_CLD, written: D }),
  one(0xfd, 'std', '', 'flag', flagOp, { sub: FL_STD, written: D }),
  one(0x9e, 'sahf', '', 'flag', sahf, { written: S | Z | A | P | C }),
  one(0x9f, 'lahf', '', 'flag', lahf, { read: S | Z | A | P | C }),

  // Interrupts and privilege transitions
  // INT n pushes RFLAGS through the event-delivery path, not as an operand (iced-x86 lists no read).
  one(0xcc, 'int3', '', 'interrupt', int3, { flow: 'branch' }),
  one(0xcd, 'int', 'Ib', 'interrupt', intN, { flow: 'branch' }),
  one(0xf1, 'int1', '', 'interrupt', int1, { flow: 'branch' }),
  one(0xcf, 'iretd', '', 'interrupt', iret, { flow: 'branch', written: ALL, sizeMnemonics: { 2: 'iret', 4: 'iretd', 8: 'iretq' } }),
  // SYSCALL saves RFLAGS in R11 and masks it with IA32_FMASK; SYSRET loads it from R11.
  two(0x05, 'syscall', '', 'interrupt', syscall, { flow: 'branch', read: ALL, written: ALL }),
  two(0x07, 'sysret', '', 'interrupt', sysret, { flow: 'branch', written: ALL, sizeMnemonics: { 4: 'sysret', 8: 'sysretq' } }),

  // Segment registers and far returns: a guest that installs its own GDT reloads them
  one(0x8c, 'mov', 'Ev,Sw', 'segment', movFromSreg),
  one(0x8e, 'mov', 'Sw,Ev', 'segment', movToSreg, { ext: 1, unsupported: true }), // MOV CS is #UD
  one(0x8e, 'mov', 'Sw,Ev', 'segment', movToSreg),
  one(0xca, 'retf', 'Iw', 'segment', farRet, { flow: 'branch' }),
  one(0xcb, 'retf', '', 'segment', farRet, { flow: 'branch' }),

  // Debug registers. MOV DR may arm a breakpoint: it ends its block (debug.ts). MOV to/from DR
  // leaves OF, SF, ZF, AF, PF, CF undefined (SDM vol. 2 MOV—Move to/from Debug Registers).
  two(0x21, 'mov', 'R,D', 'debug', movFromDr, { size: 'q', flow: 'stop', written: OSZAPC, undef: OSZAPC }),
  two(0x23, 'mov', 'D,R', 'debug', movToDr, { size: 'q', flow: 'stop', written: OSZAPC, undef: OSZAPC }),

  // I/O
  one(0xe4, 'in', 'AL,Ib', 'io', io, { flow: 'stop' }),
  one(0xe5, 'in', 'eAX,Ib', 'io', io, { flow: 'stop', size: 'vw' }),
  one(0xe6, 'out', 'Ib,AL', 'io', io, { flow: 'stop' }),
  one(0xe7, 'out', 'Ib,eAX', 'io', io, { flow: 'stop', size: 'vw' }),
  one(0xec, 'in', 'AL,DX', 'io', io, { flow: 'stop' }),
  one(0xed, 'in', 'eAX,DX', 'io', io, { flow: 'stop', size: 'vw' }),
  one(0xee, 'out', 'DX,AL', 'io', io, { flow: 'stop' }),
  one(0xef, 'out', 'DX,eAX', 'io', io, { flow: 'stop', size: 'vw' }),

  // System
  one(0xf4, 'hlt', '', 'system', hlt, STOP),
  // LLDT, LTR, LGDT and LIDT may stop with a descriptor-table intercept: each ends its block.
  two(0x00, 'lldt', 'Ev', 'system', lldt, { ext: 2, flow: 'stop' }),
  two(0x00, 'ltr', 'Ev', 'system', ltr, { ext: 3, flow: 'stop' }),
  // VMCALL may write the arithmetic flags (VMfail in VMX root operation); in a guest it exits.
  two(0x01, 'vmcall', '', 'system', hypercall, { modrm: 0xc1, prefix: PREFIX_NONE, flow: 'stop', written: OSZAPC }),
  two(0x01, 'vmgexit', '', 'system', hypercall, { modrm: 0xd9, prefix: 0xf3, unsupported: true }),
  two(0x01, 'vmgexit', '', 'system', hypercall, { modrm: 0xd9, prefix: 0xf2, unsupported: true }),
  two(0x01, 'vmmcall', '', 'system', hypercall, { modrm: 0xd9, flow: 'stop' }),
  two(0x01, 'clac', '', 'system', setAc, { modrm: 0xca, prefix: PREFIX_NONE, sub: 0, written: AC }),
  two(0x01, 'stac', '', 'system', setAc, { modrm: 0xcb, prefix: PREFIX_NONE, sub: 1, written: AC }),
  two(0x01, 'swapgs', '', 'system', swapgs, { modrm: 0xf8 }),
  two(0x01, 'sgdt', 'M', 'system', storeDescriptorTable, { ext: 0, mod: 'mem', sub: 0 }),
  two(0x01, 'sidt', 'M', 'system', storeDescriptorTable, { ext: 1, mod: 'mem', sub: 1 }),
  two(0x01, 'lgdt', 'M', 'system', loadDescriptorTable, { ext: 2, mod: 'mem', sub: 0, flow: 'stop' }),
  two(0x01, 'lidt', 'M', 'system', loadDescriptorTable, { ext: 3, mod: 'mem', sub: 1, flow: 'stop' }),
  two(0x01, 'smsw', 'Ev', 'system', smsw, { ext: 4 }),
  two(0x01, 'lmsw', 'Ev', 'system', lmsw, { ext: 6, flow: 'stop' }),
  two(0x01, 'invlpg', 'M', 'system', invlpg, { ext: 7, mod: 'mem' }),
  two(0x06, 'clts', '', 'system', clts, STOP),
  two(0x0b, 'ud2', '', 'system', undefinedOpcode, STOP),
  // MOV to/from CR leaves OF, SF, ZF, AF, PF, CF undefined (SDM vol. 2 MOV—Move to/from Control Registers).
  two(0x20, 'mov', 'R,C', 'system', movFromCr, { size: 'q', flow: 'stop', written: OSZAPC, undef: OSZAPC }),
  two(0x22, 'mov', 'C,R', 'system', movToCr, { size: 'q', flow: 'stop', written: OSZAPC, undef: OSZAPC }),
  two(0x30, 'wrmsr', '', 'system', wrmsr, STOP),
  two(0x31, 'rdtsc', '', 'system', rdtsc),
  two(0x32, 'rdmsr', '', 'system', rdmsr, STOP),
  two(0xa2, 'cpuid', '', 'system', cpuid, STOP),

  // NOPs and hints: 0F 1F /0 is NOP; the rest of 0F 19..0F 1F are reserved NOPs. CET and MPX
  // claim some of that space; those encodings are outside the supported set.
  two(0x1e, 'endbr64', '', 'nop', nop, { prefix: 0xf3, modrm: 0xfa, jit: 'nop' }),
  two(0x1e, 'endbr32', '', 'nop', nop, { prefix: 0xf3, modrm: 0xfb, jit: 'nop' }),
  two(0x1e, 'rdssp', 'Ev', 'nop', nop, { prefix: 0xf3, ext: 1, mod: 'reg', unsupported: true }),
  // Fences order memory accesses; a single core executing in program order has nothing to order.
  two(0xae, 'lfence', '', 'nop', nop, { ext: 5, mod: 'reg', prefix: PREFIX_NONE, jit: 'nop' }),
  two(0xae, 'mfence', '', 'nop', nop, { ext: 6, mod: 'reg', prefix: PREFIX_NONE, jit: 'nop' }),
  two(0xae, 'sfence', '', 'nop', nop, { ext: 7, mod: 'reg', prefix: PREFIX_NONE, jit: 'nop' }),
  two(0x1c, 'cldemote', 'Eb', 'nop', nop, { ext: 0, mod: 'mem', prefix: PREFIX_NONE, unsupported: true }),
  two(0x0d, 'reservednop', 'Ev,Gv', 'nop', nop, { mod: 'reg', jit: 'nop' }),
  ...[0, 1, 2, 3, 6, 7].map((ext) => two(0x18, 'prefetch', 'M', 'nop', nop, { ext, mod: 'mem', unsupported: true })),
  two(0x18, 'reservednop', 'Ev,Gv', 'nop', nop, { jit: 'nop' }),
  two(0x1f, 'nop', 'Ev', 'nop', nop, { ext: 0, jit: 'nop' }),
  ...[0x19, 0x1c, 0x1d, 0x1e, 0x1f].map((op) => two(op, 'reservednop', 'Ev,Gv', 'nop', nop, { jit: 'nop' })),
];
