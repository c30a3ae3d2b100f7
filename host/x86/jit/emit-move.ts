/**
 * Inline forms for data movement on 32- and 64-bit operands (the table's `jit` column names
 * them):
 *   mov      MOV E,G / G,E / E,I: register moves, loads and stores
 *   mov-imm  MOV register, immediate (B8+r; also 8-bit B0+r, which calls the handler)
 *   lea      LEA with a 64-bit address size, base and/or index (no RIP or FS/GS)
 *   extend   MOVZX/MOVSX from a low byte or word register, or memory
 *   movsxd   MOVSXD to a 64-bit register
 *   cmov     CMOVcc from a register
 *   nop      the NOP family: nothing at all
 * Semantics as execute/move.ts; other sizes and operand kinds call the handler.
 */
import { AMODE_BASE_DISP, AMODE_BASE_INDEX, BASE_RIP, NONE, type Insn } from '../decode/insn.js';
import { conditionOf, type Emitter } from './emitter.js';
import { emitAddress, emitLoad, emitStore, type Address } from './emit-memory.js';

/** Writes a register at size 4 (zero-extending) or 8 from value expressions. */
function setRegister(e: Emitter, r: number, size: number, lo: string, hi: string): void {
  e.setReg(r, lo, size === 8 ? hi : '0');
}

function memoryOperand(e: Emitter): Address {
  e.faultPoint();
  return emitAddress(e, e.insn);
}

function wide(i: Insn): boolean {
  return i.osize === 4 || i.osize === 8;
}

export function emitNop(): boolean {
  return true;
}

export function emitMovImmediate(e: Emitter, i: Insn): boolean {
  if (!wide(i)) return false;
  setRegister(e, i.reg, i.osize, String(i.imm), String(i.immHi));
  return true;
}

/** `mov`: the direction is the first operand's form (E or G), the source kind the second's. */
export function emitMov(e: Emitter, i: Insn): boolean {
  if (!wide(i)) return false;
  const size = i.osize;
  const [first, second] = i.entry.operands;
  if (second![0] === 'I') {
    if (i.rm !== NONE) {
      setRegister(e, i.rm, size, String(i.imm), String(i.immHi));
    } else {
      const a = memoryOperand(e);
      emitStore(e, a, size, String(i.imm), String(i.immHi));
      e.storeCheck();
    }
    return true;
  }
  const toE = first![0] === 'E';
  if (i.rm !== NONE) {
    const [to, from] = toE ? [i.rm, i.reg] : [i.reg, i.rm];
    setRegister(e, to, size, e.lo(from), e.hi(from));
  } else if (!toE) {
    const a = memoryOperand(e);
    const lo = e.local('m'), hi = e.local('mh');
    emitLoad(e, a, size, lo, hi);
    setRegister(e, i.reg, size, lo, hi);
  } else {
    const a = memoryOperand(e);
    emitStore(e, a, size, e.lo(i.reg), e.hi(i.reg));
    e.storeCheck();
  }
  return true;
}

export function emitMovsxd(e: Emitter, i: Insn): boolean {
  if (i.osize !== 8) return false;
  const v = e.local('v');
  if (i.rm !== NONE) e.emit(`${v} = ${e.lo(i.rm)};`);
  else emitLoad(e, memoryOperand(e), 4, v, '');
  e.setReg(i.reg, v, `${v} >> 31`);
  return true;
}

export function emitCmov(e: Emitter, i: Insn): boolean {
  if (!wide(i) || i.rm === NONE) return false;
  const cond = conditionOf(e, i.sub);
  // The destination is written either way (zero-extended at 32 bits, SDM vol. 2 CMOVcc).
  const lo = e.local('v'), hi = e.local('vh');
  e.emit(`if (${cond}) { ${lo} = ${e.lo(i.rm)}; ${hi} = ${e.hi(i.rm)}; } else { ${lo} = ${e.lo(i.reg)}; ${hi} = ${e.hi(i.reg)}; }`);
  e.setReg(i.reg, lo, i.osize === 8 ? hi : '0');
  return true;
}

/** LEA: base + index·scale + displacement, truncated to the operand size (no canonical check). */
export function emitLea(e: Emitter, i: Insn): boolean {
  if (!wide(i) || i.asize !== 8 || i.base === BASE_RIP || (i.amode !== AMODE_BASE_DISP && i.amode !== AMODE_BASE_INDEX)) return false;
  const b = i.base, x = i.index, m = 1 << i.scale;
  if (i.osize === 4) {
    const sum = [b !== NONE ? e.lo(b) : '', x !== NONE ? `Math.imul(${e.lo(x)}, ${m})` : '', String(i.disp)].filter(Boolean).join(' + ');
    e.setReg(i.reg, `(${sum}) | 0`, '0');
    return true;
  }
  const lo = e.local('t'), hi = e.local('th');
  const loSum = [b !== NONE ? `(${e.lo(b)} >>> 0)` : '', x !== NONE ? `(${e.lo(x)} >>> 0) * ${m}` : '', String(i.disp >>> 0)].filter(Boolean).join(' + ');
  const hiSum = [b !== NONE ? e.hi(b) : '', x !== NONE ? `${e.hi(x)} * ${m}` : '', String(i.dispHi)].filter(Boolean).join(' + ');
  e.emit(`${lo} = ${loSum}; ${hi} = (${hiSum} + Math.floor(${lo} / 4294967296)) | 0;`);
  e.setReg(i.reg, `${lo} | 0`, hi);
  return true;
}

/** `extend`: MOVZX/MOVSX (signed: MOVSX) Gv from Eb or Ew, as the entry's second operand says. */
export function emitExtend(e: Emitter, i: Insn): boolean {
  if (!wide(i)) return false;
  const byte = i.entry.operands[1] === 'Eb';
  const signed = i.entry.mnemonic === 'movsx';
  const v = e.local('v');
  if (i.rm !== NONE) {
    if (i.rm >= 16) return false; // AH..BH
    e.emit(`${v} = ${e.lo(i.rm)} & ${byte ? 0xff : 0xffff};`);
  } else {
    emitLoad(e, memoryOperand(e), byte ? 1 : 2, v, '');
  }
  if (signed) e.emit(`${v} = (${v} << ${byte ? 24 : 16}) >> ${byte ? 24 : 16};`);
  setRegister(e, i.reg, i.osize, v, signed ? `(${v} >> 31)` : '0');
  return true;
}
