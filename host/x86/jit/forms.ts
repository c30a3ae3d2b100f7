/**
 * The table's `jit` column, resolved: each inline form an entry can name, and its emitter. An
 * emitter returns false for an operand kind it does not inline (its header says which); the
 * translator then calls the entry's handler, as for 'handler'. The branch forms (jmp, jcc, call,
 * ret) are not emitted alone: compile.ts links them into traces.
 */
import type { Insn } from '../decode/insn.js';
import type { JitForm } from '../decode/table-types.js';
import type { Emitter } from './emitter.js';
import { emitAlu, emitIncDec, emitShift, emitTest } from './emit-alu.js';
import { emitPop, emitPush } from './emit-flow.js';
import { emitCmov, emitExtend, emitLea, emitMov, emitMovImmediate, emitMovsxd, emitNop } from './emit-move.js';

export type InlineEmitter = (e: Emitter, i: Insn) => boolean;

export type BranchForm = 'jmp' | 'jcc' | 'call' | 'ret';
export type InlineForm = Exclude<JitForm, 'handler' | BranchForm>;

export const INLINE_FORMS: Readonly<Record<InlineForm, InlineEmitter>> = {
  alu: emitAlu,
  test: emitTest,
  incdec: emitIncDec,
  shift: emitShift,
  mov: emitMov,
  'mov-imm': emitMovImmediate,
  lea: emitLea,
  extend: emitExtend,
  movsxd: emitMovsxd,
  cmov: emitCmov,
  nop: emitNop,
  push: emitPush,
  pop: emitPop,
};

export function isBranchForm(form: JitForm): form is BranchForm {
  return form === 'jmp' || form === 'jcc' || form === 'call' || form === 'ret';
}
