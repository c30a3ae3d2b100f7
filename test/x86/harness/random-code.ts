/**
 * Random instructions from the instruction table for the differential tests: ALU, shifts,
 * multiply and divide, bit operations, moves, stack operations and flag instructions, with
 * register and memory ([rbx + disp8]) operands, in registers other than RBX (the memory base),
 * RCX (the loop counter) and RSP.
 */
import { OPCODE_TABLE, type OpcodeEntry } from '../../../host/index.js';
import { encode, type EncodeChoice } from '../fixtures/encode.js';

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

const NO_STACK = ENTRIES.filter((e) => e.family !== 'stack');

/** One random instruction (null: the draw had no usable encoding); `stack`: PUSH/POP among them. */
export function randomInstruction(rnd: () => number, stack = true): Uint8Array | null {
  const pool = stack ? ENTRIES : NO_STACK;
  const e = pool[rnd() % pool.length]!;
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
