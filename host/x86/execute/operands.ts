/**
 * Operand access shared by the executors: the ModRM r/m operand (register or memory) and the
 * ModRM.reg operand, at the instruction's operand size or an explicit one. Value conventions
 * are those of registers.ts (64-bit: low half returned, high half in c.vhi).
 */
import type { CpuCore } from '../core.js';
import { NONE, type Insn } from '../decode/insn.js';
import { prepareWrite, readMem, writeMem } from '../mmu/access.js';
import { readReg, writeReg } from '../registers.js';
import { linearAddress } from './address.js';

/** Reads the r/m operand at `size` bytes. */
export function readE(c: CpuCore, i: Insn, size: number): number {
  if (i.rm !== NONE) return readReg(c, i.rm, size);
  return readMem(c, linearAddress(c, i), size);
}

/** Writes the r/m operand at `size` bytes. */
export function writeE(c: CpuCore, i: Insn, size: number, lo: number, hi: number): void {
  if (i.rm !== NONE) writeReg(c, i.rm, size, lo, hi);
  else writeMem(c, linearAddress(c, i), size, lo, hi);
}

/**
 * For a read-modify-write of the r/m operand: the linear address, already checked for writing
 * (or 0 for a register operand, which needs no address).
 */
export function addressForUpdate(c: CpuCore, i: Insn, size: number): number {
  if (i.rm !== NONE) return 0;
  const lin = linearAddress(c, i);
  prepareWrite(c, lin, size);
  return lin;
}

/** Reads the r/m operand of a read-modify-write at the address from addressForUpdate. */
export function readUpdate(c: CpuCore, i: Insn, lin: number, size: number): number {
  if (i.rm !== NONE) return readReg(c, i.rm, size);
  return readMem(c, lin, size);
}

/** Writes the r/m operand of a read-modify-write. */
export function writeUpdate(c: CpuCore, i: Insn, lin: number, size: number, lo: number, hi: number): void {
  if (i.rm !== NONE) writeReg(c, i.rm, size, lo, hi);
  else writeMem(c, lin, size, lo, hi);
}

/** The immediate as an operand of `size` bytes (sign-extension already applied by the decoder). */
export function immediate(c: CpuCore, i: Insn, size: number): number {
  c.vhi = i.immHi;
  return size === 1 ? i.imm & 0xff : size === 2 ? i.imm & 0xffff : i.imm;
}
