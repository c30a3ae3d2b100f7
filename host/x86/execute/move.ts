/**
 * Data movement: MOV (all forms, including moffs and imm64), MOVZX, MOVSX, MOVSXD, LEA, XCHG,
 * CMOVcc, SETcc, BSWAP, CBW/CWDE/CDQE, CWD/CDQ/CQO, XLAT, and the NOP family. No flags.
 * SDM vol. 2 per instruction.
 */
import type { CpuCore } from '../core.js';
import { testCondition } from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { prepareWrite, readMem, writeMem } from '../mmu/access.js';
import { readReg, writeReg, writeReg32 } from '../registers.js';
import { effectiveAddressHalves, linearAddress, segmentedAddress } from './address.js';
import { immediate, readE, writeE } from './operands.js';

/** MOV Eb,Gb / Ev,Gv (88, 89). */
export function movEG(c: CpuCore, i: Insn): void {
  const v = readReg(c, i.reg, i.osize);
  writeE(c, i, i.osize, v, c.vhi);
}

/** MOV Gb,Eb / Gv,Ev (8A, 8B). */
export function movGE(c: CpuCore, i: Insn): void {
  const v = readE(c, i, i.osize);
  writeReg(c, i.reg, i.osize, v, c.vhi);
}

/** MOV Eb,Ib / Ev,Iz (C6 /0, C7 /0) and MOV Zb,Ib / Zv,Iv (B0+r, B8+r; imm64 with REX.W). */
export function movEI(c: CpuCore, i: Insn): void {
  writeE(c, i, i.osize, immediate(c, i, i.osize), i.immHi);
}

export function movZI(c: CpuCore, i: Insn): void {
  writeReg(c, i.reg, i.osize, immediate(c, i, i.osize), i.immHi);
}

/** MOV AL/rAX, moffs (A0, A1). */
export function movAO(c: CpuCore, i: Insn): void {
  const v = readMem(c, linearAddress(c, i), i.osize);
  writeReg(c, 0, i.osize, v, c.vhi);
}

/** MOV moffs, AL/rAX (A2, A3). */
export function movOA(c: CpuCore, i: Insn): void {
  const lin = linearAddress(c, i);
  const v = readReg(c, 0, i.osize);
  writeMem(c, lin, i.osize, v, c.vhi);
}

/** MOVZX Gv,Eb / Gv,Ew (0F B6, 0F B7). */
export function movzx(c: CpuCore, i: Insn): void {
  const v = readE(c, i, i.entry.opcode === 0xb6 ? 1 : 2);
  writeReg(c, i.reg, i.osize, v, 0);
}

/** MOVSX Gv,Eb / Gv,Ew (0F BE, 0F BF). */
export function movsx(c: CpuCore, i: Insn): void {
  const byte = i.entry.opcode === 0xbe;
  const raw = readE(c, i, byte ? 1 : 2);
  const v = byte ? (raw << 24) >> 24 : (raw << 16) >> 16;
  writeReg(c, i.reg, i.osize, v, v >> 31);
}

/** MOVSXD Gv,Ed (63): sign-extends with REX.W; a plain 32/16-bit move otherwise. */
export function movsxd(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const v = readE(c, i, size === 8 ? 4 : size);
  writeReg(c, i.reg, size, v, v >> 31);
}

/** LEA Gv,M (8D): the effective address, truncated to the operand size. */
export function lea(c: CpuCore, i: Insn): void {
  const lo = effectiveAddressHalves(c, i);
  writeReg(c, i.reg, i.osize, lo, c.vhi);
}

/** XCHG Eb,Gb / Ev,Gv (86, 87) and XCHG Zv,rAX (90+r, rm = 0). A memory operand is written first. */
export function xchg(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const gLo = readReg(c, i.reg, size);
  const gHi = c.vhi;
  if (i.rm !== NONE) {
    const eLo = readReg(c, i.rm, size);
    const eHi = c.vhi;
    writeReg(c, i.rm, size, gLo, gHi);
    writeReg(c, i.reg, size, eLo, eHi);
    return;
  }
  const lin = linearAddress(c, i);
  prepareWrite(c, lin, size);
  const eLo = readMem(c, lin, size);
  const eHi = c.vhi;
  writeMem(c, lin, size, gLo, gHi);
  writeReg(c, i.reg, size, eLo, eHi);
}

/**
 * CMOVcc Gv,Ev (0F 40+cc): the source is read (and may fault) whatever the condition; with a
 * 32-bit operand the destination's upper half is cleared even when no move happens (SDM vol. 2
 * CMOVcc, "in 64-bit mode").
 */
export function cmov(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const v = readE(c, i, size);
  const hi = c.vhi;
  if (testCondition(c, i.sub)) writeReg(c, i.reg, size, v, hi);
  else if (size === 4) writeReg32(c, i.reg, c.lo[i.reg]!);
}

/** SETcc Eb (0F 90+cc). */
export function setcc(c: CpuCore, i: Insn): void {
  writeE(c, i, 1, testCondition(c, i.sub) ? 1 : 0, 0);
}

function bswap32(v: number): number {
  return ((v << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) | 0;
}

/** BSWAP Zv (0F C8+r). With a 16-bit operand the result is undefined; we clear the word (as Intel and AMD processors do). */
export function bswap(c: CpuCore, i: Insn): void {
  const r = i.reg;
  if (i.osize === 8) {
    const lo = c.lo[r]!;
    c.lo[r] = bswap32(c.hi[r]!);
    c.hi[r] = bswap32(lo);
  } else if (i.osize === 4) {
    writeReg32(c, r, bswap32(c.lo[r]!));
  } else {
    writeReg(c, r, 2, 0, 0);
  }
}

/** CBW / CWDE / CDQE (98): sign-extends the lower half of the accumulator into it. */
export function convertAcc(c: CpuCore, i: Insn): void {
  const a = c.lo[0]!;
  if (i.osize === 2) writeReg(c, 0, 2, (a << 24) >> 24, 0);
  else if (i.osize === 4) writeReg32(c, 0, (a << 16) >> 16);
  else c.hi[0] = a >> 31;
}

/** CWD / CDQ / CQO (99): fills rDX with the accumulator's sign. */
export function convertAccToDx(c: CpuCore, i: Insn): void {
  if (i.osize === 2) writeReg(c, 2, 2, (c.lo[0]! << 16) >> 31, 0);
  else if (i.osize === 4) writeReg32(c, 2, c.lo[0]! >> 31);
  else {
    const s = c.hi[0]! >> 31;
    c.lo[2] = s;
    c.hi[2] = s;
  }
}

/** NOP, PAUSE, multi-byte and reserved NOPs, ENDBR64: nothing (a memory operand is not accessed). */
export function nop(_c: CpuCore, _i: Insn): void {}

/**
 * XLAT / XLATB (D7): AL ← [rBX + AL] (zero-extended AL; EBX with a 67 prefix, the sum wrapping
 * at 2^32), through FS or GS when overridden (SDM vol. 2 XLAT).
 */
export function xlat(c: CpuCore, i: Insn): void {
  const sum = (c.lo[3]! >>> 0) + (c.lo[0]! & 0xff);
  const carry = sum >= 4294967296 ? 1 : 0;
  const lo = sum - carry * 4294967296;
  const hi = i.asize === 4 ? 0 : (c.hi[3]! + carry) | 0;
  const v = readMem(c, segmentedAddress(c, i, i.asize === 4 ? sum >>> 0 : lo, hi), 1);
  c.lo[0] = (c.lo[0]! & ~0xff) | v;
}
