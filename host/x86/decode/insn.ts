/**
 * A pre-decoded instruction: everything the executors need, resolved once when a block is
 * decoded and reused for every execution (Halfix-style traces, docs/x86-model.md §1.3). One
 * class with every field initialised, so that all records share a hidden class and field
 * loads in the handlers stay monomorphic.
 */
import type { CpuCore } from '../core.js';
import type { OpcodeEntry } from './table-types.js';

export type Handler = (c: CpuCore, i: Insn) => void;

/** `base` value for RIP-relative addressing. */
export const BASE_RIP = 16;
/** `base`/`index`/`rm` value meaning "none". */
export const NONE = -1;

/** Addressing shapes, picked by the decoder so the effective-address code can branch once. */
export const AMODE_BASE_DISP = 0;
export const AMODE_BASE_INDEX = 1;
export const AMODE_RIP = 2;
export const AMODE_ABS = 3;
/** FS/GS override or 32-bit address size: the general path. */
export const AMODE_GENERAL = 4;

export class Insn {
  exec: Handler;
  entry: OpcodeEntry;
  /** Length in bytes, prefixes included. */
  len = 0;
  /** Offset of the instruction from the start of its block (block.ts). */
  offset = 0;
  /** Operand size in bytes: 1, 2, 4 or 8. */
  osize = 4;
  /** Address size in bytes: 4 (67 prefix) or 8. */
  asize = 8;
  /** ModRM.reg operand (or the opcode's register), 0..15; 16..19 = AH..BH for byte operands. */
  reg = 0;
  /** ModRM.rm register when mod = 3 (same numbering), else NONE (a memory operand). */
  rm = NONE;
  base = NONE;
  index = NONE;
  /** log2 of the SIB scale. */
  scale = 0;
  /** Displacement, sign-extended (int32). For moffs: the low half of the 64-bit offset. */
  disp = 0;
  /** moffs high half. */
  dispHi = 0;
  amode = AMODE_BASE_DISP;
  /** Segment override (SEG_FS/SEG_GS), or NONE. ES/CS/SS/DS overrides have no effect in 64-bit mode. */
  seg = NONE;
  /** A non-canonical address faults with #SS instead of #GP (RSP/RBP-based, no FS/GS override). */
  stackAddress = false;
  /** Immediate: low 32 bits (int32) and high 32 bits (sign-extension, or imm64's upper half). */
  imm = 0;
  immHi = 0;
  /** Second immediate (ENTER's nesting level). */
  imm2 = 0;
  /** 0, 0xf2 or 0xf3: the last REP prefix. */
  rep = 0;
  lock = false;
  /** REX.W was present (SYSRET/IRET/CMPXCHG16B-style size selection). */
  rexW = false;
  /** Condition code (Jcc/SETcc/CMOVcc/LOOPcc) or sub-operation (ALU op, shift op, ...). */
  sub = 0;
  /**
   * A REP-prefixed string instruction: its handler counts its own iterations as retired
   * instructions (execute/string.ts), so the block loop must not count it.
   */
  selfRetiring = false;

  constructor(exec: Handler, entry: OpcodeEntry) {
    this.exec = exec;
    this.entry = entry;
  }
}
