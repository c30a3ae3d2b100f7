/**
 * The shape of the instruction table (table.ts), the single source from which the decoder
 * decodes, the executors are dispatched, the translator compiles and the tests derive their
 * expectations of operand shapes (v86's x86_table.js idea).
 *
 * Operand forms follow the SDM opcode-map notation (vol. 2, appendix A.2):
 *   E? ModRM r/m (register or memory)   G? ModRM.reg register     M  memory only (no size)
 *   R  ModRM.rm as a GPR whatever mod    C  control register (ModRM.reg + REX.R)
 *   D  debug register (ModRM.reg; with REX.R it would name DR8-15, which do not exist: #UD)
 *   Sw segment register (ModRM.reg, REX.R ignored; 6 and 7 name none: #UD)
 *   Mx XLAT's table entry [rBX + AL] (implicit, as iced-x86 lists it)
 *   Z? register in the opcode's low 3 bits (+ REX.B)
 *   I? immediate: Ib (8-bit, zero-extended), Ibs (8-bit, sign-extended to the operand size),
 *      Iw (16-bit), Iz (16/32-bit, sign-extended to 64), Iv (16/32/64-bit)
 *   J? relative branch target (Jb 8-bit, Jz 32-bit)     O? moffs (absolute address)
 *   X?/Y? string source DS:rSI / destination ES:rDI (implicit)
 *   AL, rAX (accumulator at the operand size), eAX (AX/EAX for IN/OUT), CL, DX, 1
 * Size suffixes: b 8, w 16, d 32, q 64, v operand size, y 32/64 (32 unless REX.W), z 16/32 (32 for a
 * 64-bit operand size).
 */
import type { Handler } from './insn.js';

/** `prefix` value for encodings that allow none of 66, F2, F3 (SDM "NP"). */
export const PREFIX_NONE = 1;

export type OperandForm =
  | 'Eb' | 'Ew' | 'Ed' | 'Eq' | 'Ev' | 'Ey' | 'Ez'
  | 'Gb' | 'Gw' | 'Gd' | 'Gq' | 'Gv' | 'Gy'
  | 'M' | 'R' | 'C' | 'D' | 'Sw' | 'Mx'
  | 'Zb' | 'Zv' | 'Zq'
  | 'Ib' | 'Ibs' | 'Iw' | 'Iz' | 'Iv'
  | 'Jb' | 'Jz'
  | 'Ob' | 'Ov'
  | 'Xb' | 'Xv' | 'Yb' | 'Yv'
  | 'AL' | 'rAX' | 'eAX' | 'CL' | 'DX' | '1';

/**
 * How the operand size is chosen (SDM vol. 1 §3.6.1, vol. 2 §2.2.1.2):
 *   b   always 8 bits                  v  32; REX.W → 64; 66 → 16
 *   d64 64 by default; 66 → 16 (PUSH/POP and other stack operations)
 *   f64 always 64 (near branches: 66 is ignored, Intel behaviour)
 *   w/d/q fixed 16/32/64             vw 16 or 32 (66 → 16), never 64 (IN/OUT)
 */
export type SizeRule = 'b' | 'v' | 'd64' | 'f64' | 'w' | 'd' | 'q' | 'vw';

/** Instruction families: one executor file each (execute/). */
export type Family =
  | 'alu' | 'shift' | 'muldiv' | 'bit' | 'move' | 'string' | 'stack' | 'control' | 'flag' | 'system'
  | 'interrupt' | 'io' | 'nop' | 'segment' | 'debug';

/**
 * How the block translator (jit/) emits an instruction, as v86's table drives its code
 * generator: 'handler' calls the interpreter's handler from the generated code; every other value
 * names the inline form that jit/forms.ts maps to its emitter (jit/emit-*.ts), which reads the
 * operation from the entry (operand forms, `sub`) and falls back to the handler for operand kinds
 * it does not inline (each emitter's header says which: mostly 8- and 16-bit operands).
 *   alu      ADD/OR/AND/SUB/XOR/CMP, register and immediate forms, memory source
 *   test     TEST, register and immediate forms       incdec  INC/DEC of a register
 *   shift    SHL/SAL/SHR/SAR of a register by 1 or an immediate
 *   mov      MOV E,G / G,E / E,I (loads, stores)       mov-imm MOV register, immediate (B0..BF)
 *   lea      LEA                                       extend  MOVZX/MOVSX
 *   movsxd   MOVSXD                                    cmov    CMOVcc from a register
 *   nop      the NOP family                            push/pop PUSH register or immediate, POP register
 *   jmp, jcc, call, ret   relative JMP, Jcc, CALL and RET (the translator follows them: jit/trace.ts)
 */
export type JitForm =
  | 'handler' | 'alu' | 'test' | 'incdec' | 'shift' | 'mov' | 'mov-imm' | 'lea' | 'extend' | 'movsxd' | 'cmov' | 'nop'
  | 'push' | 'pop' | 'jmp' | 'jcc' | 'call' | 'ret';

/**
 * What an instruction does to control flow, for block building (block.ts):
 *   next    falls through to the next instruction
 *   branch  may change RIP (ends a block)
 *   stop    may stop the core with an intercept, or change state that decoding depends on
 *           (ends a block)
 */
export type Flow = 'next' | 'branch' | 'stop';

export interface OpcodeEntry {
  /**
   * The entry's name, unique in the table: mnemonic, operand forms and encoding in the SDM's
   * notation (`test Eb,Ib [F6 /1]`, `vmcall [NP 0F 01 C1]`). It depends on nothing but the
   * entry itself, so whatever is derived from it (the fixture seeds) stays put when entries are
   * added or moved.
   */
  readonly name: string;
  /** Mnemonic, lower case, as iced-x86 names it (Mnemonic enum, lower-cased). */
  readonly mnemonic: string;
  /** Opcode map: 0 = one-byte, 1 = 0F. */
  readonly map: 0 | 1;
  readonly opcode: number;
  /** ModRM.reg value this entry needs (opcode extension, "/digit"), or -1. */
  readonly ext: number;
  /** Restriction on ModRM.mod: register form only (mod = 3), memory form only, or none. */
  readonly mod: 'reg' | 'mem' | 'any';
  /** The exact ModRM byte (0F 01 C1 VMCALL, ...), or -1. */
  readonly modrm: number;
  /**
   * Mandatory prefix: the entry only matches when the last F2/F3 prefix is this one; PREFIX_NONE:
   * only without 66, F2 and F3 (the SDM's "NP"); 0: whatever the prefixes.
   */
  readonly prefix: 0 | 0xf2 | 0xf3 | typeof PREFIX_NONE;
  readonly operands: readonly OperandForm[];
  readonly size: SizeRule;
  /** Whether a LOCK prefix is allowed (with a memory destination). */
  readonly lockable: boolean;
  readonly family: Family;
  readonly flow: Flow;
  /**
   * RFLAGS bits (EFLAGS positions, of OF SF ZF AF PF CF DF IF AC) that the instruction reads,
   * may write, and leaves architecturally undefined (SDM vol. 1 appendix A, vol. 2 per
   * instruction); test/x86/decoder/flags.test.ts holds them to iced-x86's per-instruction RFLAGS
   * info. The translator reads them (jit/flag-use.ts): what an instruction needs from the lazy
   * flags before it runs, and whether its record replaces the pending one.
   */
  readonly flagsRead: number;
  readonly flagsWritten: number;
  readonly flagsUndefined: number;
  /**
   * The written flags are written only for a non-zero count: a shift or rotate by a masked count
   * of 0 changes no flag (SDM vol. 2 SAL/SAR/SHL/SHR, RCL/RCR/ROL/ROR, SHLD/SHRD), so its write
   * does not replace earlier flags.
   */
  readonly flagsConditional: boolean;
  /** How the block translator emits the instruction. */
  readonly jit: JitForm;
  /** Operation selector copied into Insn.sub (ALU op, shift op, condition code, ...). */
  readonly sub: number;
  readonly exec: Handler;
  /** Whether the instruction needs a ModRM byte (derived from operands/ext/mod/modrm). */
  readonly hasModrm: boolean;
  /** REX.B requirement (opcode 90: NOP without REX.B, XCHG R8,rAX with it), or -1 for none. */
  readonly rexB: -1 | 0 | 1;
  /**
   * A valid encoding that this core does not implement: matching it decodes to #UD. Listed so
   * that a more general entry of the same opcode cannot claim it.
   */
  readonly unsupported: boolean;
  /** Mnemonics by operand size where they differ (CBW/CWDE/CDQE, MOVSB/MOVSQ, IRETD/IRETQ ...). */
  readonly sizeMnemonics: Readonly<Record<number, string>> | undefined;
  /** The mnemonic with a 32-bit address size where it differs (JECXZ). */
  readonly mnemonic32: string | undefined;
}
