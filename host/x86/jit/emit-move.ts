/**
 * Generated code for data movement on 32- and 64-bit operands: MOV (register, immediate, memory
 * load and store), LEA, MOVZX/MOVSX from low byte or word registers and memory, MOVSXD, CMOVcc,
 * and the NOP family. Semantics as execute/move.ts.
 */
import { AMODE_BASE_DISP, AMODE_BASE_INDEX, BASE_RIP, NONE, type Insn } from '../decode/insn.js';
import { cmov, lea, movEG, movEI, movGE, movsx, movsxd, movZI, movzx, nop } from '../execute/move.js';
import { conditionExpression, type Emitter } from './emitter.js';
import { emitAddress, emitLoad, emitStore } from './emit-memory.js';

/** Writes a register at size 4 (zero-extending) or 8 from value expressions. */
function setRegister(e: Emitter, r: number, size: number, lo: string, hi: string): void {
  e.emit(size === 8 ? `L[${r}] = ${lo}; Hi[${r}] = ${hi};` : `L[${r}] = ${lo}; Hi[${r}] = 0;`);
}

function memoryOperand(e: Emitter): string {
  e.flushFlags();
  e.emit(`k = ${e.index};`);
  return emitAddress(e, e.insn);
}

/** Returns false when the instruction is not one this file compiles. */
export function emitMove(e: Emitter, i: Insn): boolean {
  const h = i.entry.exec;
  if (h === nop) return true;
  const size = i.osize;
  if (h === movZI) {
    if (size !== 4 && size !== 8) return false;
    setRegister(e, i.reg, size, String(i.imm), String(i.immHi));
    return true;
  }
  if (size !== 4 && size !== 8) return false;
  if (h === movEG || h === movGE) {
    const [to, from] = h === movEG ? [i.rm, i.reg] : [i.reg, i.rm];
    if (i.rm !== NONE) {
      setRegister(e, to, size, `L[${from}]`, `Hi[${from}]`);
    } else if (h === movGE) {
      const a = memoryOperand(e);
      const lo = e.local('m'), hi = e.local('mh');
      emitLoad(e, a, size, lo, hi);
      setRegister(e, i.reg, size, lo, hi);
    } else {
      const a = memoryOperand(e);
      emitStore(e, a, size, `L[${i.reg}]`, `Hi[${i.reg}]`);
      e.storeCheck();
    }
    return true;
  }
  if (h === movEI) {
    if (i.rm !== NONE) {
      setRegister(e, i.rm, size, String(i.imm), String(i.immHi));
    } else {
      const a = memoryOperand(e);
      emitStore(e, a, size, String(i.imm), String(i.immHi));
      e.storeCheck();
    }
    return true;
  }
  if (h === lea) return emitLea(e, i, size);
  if (h === movzx || h === movsx) return emitExtend(e, i, size, h === movsx);
  if (h === movsxd) {
    if (size !== 8) return false;
    const v = e.local('v');
    if (i.rm !== NONE) e.emit(`${v} = L[${i.rm}];`);
    else emitLoad(e, memoryOperand(e), 4, v, '');
    e.emit(`L[${i.reg}] = ${v}; Hi[${i.reg}] = ${v} >> 31;`);
    return true;
  }
  if (h === cmov) {
    if (i.rm === NONE || e.pending === null) return false;
    const cond = conditionExpression(e.pending, i.sub);
    if (cond === null) return false;
    const move = size === 8 ? `L[${i.reg}] = L[${i.rm}]; Hi[${i.reg}] = Hi[${i.rm}];` : `L[${i.reg}] = L[${i.rm}]; Hi[${i.reg}] = 0;`;
    e.emit(`if (${cond}) { ${move} }${size === 4 ? ` else Hi[${i.reg}] = 0;` : ''}`);
    return true;
  }
  return false;
}

/** LEA: base + index·scale + displacement, truncated to the operand size (no canonical check). */
function emitLea(e: Emitter, i: Insn, size: number): boolean {
  if (i.asize !== 8 || i.base === BASE_RIP || (i.amode !== AMODE_BASE_DISP && i.amode !== AMODE_BASE_INDEX)) return false;
  const b = i.base, x = i.index, m = 1 << i.scale;
  if (size === 4) {
    const sum = [b !== NONE ? `L[${b}]` : '', x !== NONE ? `Math.imul(L[${x}], ${m})` : '', String(i.disp)].filter(Boolean).join(' + ');
    e.emit(`L[${i.reg}] = (${sum}) | 0; Hi[${i.reg}] = 0;`);
    return true;
  }
  const lo = e.local('t'), hi = e.local('th');
  const loSum = [b !== NONE ? `(L[${b}] >>> 0)` : '', x !== NONE ? `(L[${x}] >>> 0) * ${m}` : '', String(i.disp >>> 0)].filter(Boolean).join(' + ');
  const hiSum = [b !== NONE ? `Hi[${b}]` : '', x !== NONE ? `Hi[${x}] * ${m}` : '', String(i.dispHi)].filter(Boolean).join(' + ');
  e.emit(`${lo} = ${loSum}; ${hi} = Math.floor(${lo} / 4294967296);`);
  e.emit(`L[${i.reg}] = ${lo} | 0; Hi[${i.reg}] = (${hiSum} + ${hi}) | 0;`);
  return true;
}

/** MOVZX/MOVSX Gv, Eb/Ew from a low byte/word register or memory. */
function emitExtend(e: Emitter, i: Insn, size: number, signed: boolean): boolean {
  const byte = i.entry.opcode === 0xb6 || i.entry.opcode === 0xbe;
  const v = e.local('v');
  if (i.rm !== NONE) {
    if (i.rm >= 16) return false; // AH..BH
    e.emit(`${v} = L[${i.rm}] & ${byte ? 0xff : 0xffff};`);
  } else {
    emitLoad(e, memoryOperand(e), byte ? 1 : 2, v, '');
  }
  if (signed) e.emit(`${v} = (${v} << ${byte ? 24 : 16}) >> ${byte ? 24 : 16};`);
  setRegister(e, i.reg, size, v, signed ? `(${v} >> 31)` : '0');
  return true;
}
