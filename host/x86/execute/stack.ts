/**
 * Stack operations in 64-bit mode (SDM vol. 1 §6.2, vol. 2 PUSH/POP/PUSHF/POPF/ENTER/LEAVE): the
 * stack pointer is RSP (64-bit, no SS base), pushes and pops are 8 bytes (2 with a 66 prefix;
 * 32-bit pushes do not exist), a non-canonical stack address raises #SS(0). RSP changes only
 * once the memory access has succeeded.
 */
import {
  X86_EFLAGS_AC, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_RF, X86_EFLAGS_TF, X86_EFLAGS_VIF, X86_EFLAGS_VIP, X86_EFLAGS_VM,
} from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { materializeFlags, readFlags } from '../flags.js';
import { NONE, type Insn } from '../decode/insn.js';
import { prepareWrite, read16, read64, readMem, write16, write64, writeMem } from '../mmu/access.js';
import { updateTlbContext } from '../mmu/tlb.js';
import { readReg, writeReg } from '../registers.js';
import { RFLAGS_DEFINED } from '../arch.js';
import { checkCanonical, linearAddress } from './address.js';
import { readE } from './operands.js';

const TWO32 = 4294967296;

/** RSP as a number (may be non-canonical: the caller's access checks it). */
export function rspValue(c: CpuCore): number {
  return c.hi[4]! * TWO32 + (c.lo[4]! >>> 0);
}

/** Sets RSP to a number that holds a 64-bit value within ±2^53 (wrapping at 2^64 is not needed for canonical stacks). */
export function setRsp(c: CpuCore, v: number): void {
  const h = Math.floor(v / TWO32);
  c.lo[4] = (v - h * TWO32) | 0;
  c.hi[4] = h | 0;
}

/** Adds a small signed amount to RSP with exact 64-bit wrap-around. */
export function addRsp(c: CpuCore, delta: number): void {
  const l = (c.lo[4]! >>> 0) + delta;
  c.lo[4] = l | 0;
  c.hi[4] = (c.hi[4]! + Math.floor(l / TWO32)) | 0;
}

/** Pushes a value of `size` (2 or 8) bytes. */
export function push(c: CpuCore, size: number, lo: number, hi: number): void {
  const lin = checkCanonical(c, rspValue(c) - size, true);
  if (size === 8) write64(c, lin, lo, hi);
  else write16(c, lin, lo);
  addRsp(c, -size);
}

/** Pops a value of `size` (2 or 8) bytes: low half returned, high half in c.vhi. */
export function pop(c: CpuCore, size: number): number {
  const lin = checkCanonical(c, rspValue(c), true);
  const v = size === 8 ? read64(c, lin) : read16(c, lin);
  const hi = c.vhi;
  addRsp(c, size);
  c.vhi = hi;
  return v;
}

/** Reads the value at RSP + `offset` without popping (for instructions that pop several values). */
export function peek(c: CpuCore, size: number, offset: number): number {
  const lin = checkCanonical(c, rspValue(c) + offset, true);
  return readMem(c, lin, size);
}

/** PUSH Zv (50+r). */
export function pushZ(c: CpuCore, i: Insn): void {
  const v = readReg(c, i.reg, i.osize);
  push(c, i.osize, v, c.vhi);
}

/** PUSH Ev (FF /6). */
export function pushE(c: CpuCore, i: Insn): void {
  const v = readE(c, i, i.osize);
  push(c, i.osize, v, c.vhi);
}

/** PUSH Iz / Ibs (68, 6A): sign-extended to the operand size. */
export function pushI(c: CpuCore, i: Insn): void {
  push(c, i.osize, i.osize === 2 ? i.imm & 0xffff : i.imm, i.immHi);
}

/** POP Zv (58+r). */
export function popZ(c: CpuCore, i: Insn): void {
  const v = pop(c, i.osize);
  writeReg(c, i.reg, i.osize, v, c.vhi);
}

/**
 * POP Ev (8F /0): the destination address is computed after RSP has been incremented (SDM
 * vol. 2 POP); if the store faults, RSP is restored.
 */
export function popE(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = checkCanonical(c, rspValue(c), true);
  const v = readMem(c, lin, size);
  const hi = c.vhi;
  if (i.rm !== NONE) {
    addRsp(c, size);
    writeReg(c, i.rm, size, v, hi);
    return;
  }
  const oldLo = c.lo[4]!, oldHi = c.hi[4]!;
  addRsp(c, size);
  try {
    writeMem(c, linearAddress(c, i), size, v, hi);
  } catch (e) {
    c.lo[4] = oldLo;
    c.hi[4] = oldHi;
    throw e;
  }
}

/** PUSHF (9C): RFLAGS with VM and RF cleared in the image (SDM vol. 2 PUSHF). */
export function pushf(c: CpuCore, i: Insn): void {
  const f = readFlags(c) & ~(X86_EFLAGS_VM | X86_EFLAGS_RF);
  push(c, i.osize, i.osize === 2 ? f & 0xffff : f, 0);
}

/**
 * Loads RFLAGS as POPF does outside virtual-8086 mode (SDM vol. 2 POPF): VM, VIP, VIF and
 * reserved bits keep their values, RF is cleared, IOPL changes only at CPL 0, IF only when
 * CPL ≤ IOPL; a 16-bit POPF changes bits 15:0 only.
 */
export function loadFlagsAsPopf(c: CpuCore, value: number, size: number): void {
  materializeFlags(c);
  const old = c.flags;
  const iopl = (old & X86_EFLAGS_IOPL) >> 12;
  let changeable = RFLAGS_DEFINED & ~(X86_EFLAGS_VM | X86_EFLAGS_VIP | X86_EFLAGS_VIF | X86_EFLAGS_RF);
  if (c.cpl > 0) changeable &= ~X86_EFLAGS_IOPL;
  if (c.cpl > iopl) changeable &= ~X86_EFLAGS_IF;
  if (size === 2) changeable &= 0xffff;
  c.flags = (((old & ~changeable) | (value & changeable)) & ~X86_EFLAGS_RF) >>> 0;
  if ((old ^ c.flags) & X86_EFLAGS_AC) updateTlbContext(c);
  // TF: the instruction after this one is single-stepped, so the block in progress ends here
  // (POPF is a 'stop' instruction) and run() steps (debug.ts).
  if ((c.flags & X86_EFLAGS_TF) !== 0) c.stateChecked = false;
}

/** POPF (9D). */
export function popf(c: CpuCore, i: Insn): void {
  const v = pop(c, i.osize);
  loadFlagsAsPopf(c, v, i.osize);
}

/** LEAVE (C9): RSP = RBP, then pop RBP (16-bit: BP). */
export function leave(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const lin = checkCanonical(c, c.hi[5]! * TWO32 + (c.lo[5]! >>> 0), true);
  const v = readMem(c, lin, size);
  const hi = c.vhi;
  c.lo[4] = c.lo[5]!;
  c.hi[4] = c.hi[5]!;
  addRsp(c, size);
  writeReg(c, 5, size, v, hi);
}

/**
 * ENTER Iw, Ib (C8): push RBP (BP), copy `level - 1` frame pointers from the enclosing frames
 * (RBP - size, RBP - 2·size, ...), push the new frame pointer, then RBP ← the new frame and
 * RSP ← RSP − Iw (SDM vol. 2 ENTER, 64-bit stack). The level is Ib mod 32. Every stack slot is
 * checked for writing, and every frame pointer read, before anything is written.
 */
export function enter(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const alloc = i.imm & 0xffff;
  const level = i.imm2 & 31;
  const sp = rspValue(c);
  const bp = c.hi[5]! * TWO32 + (c.lo[5]! >>> 0);
  const pushes = level === 0 ? 1 : level + 1;
  const frame = sp - size;
  // What goes on the stack, from the first push down: RBP, the copied frame pointers, the new frame.
  const values: [number, number][] = [[readReg(c, 5, size), c.vhi]];
  for (let k = 1; k < level; k++) {
    const v = readMem(c, checkCanonical(c, bp - k * size, true), size);
    values.push([v, size === 8 ? c.vhi : 0]);
  }
  if (level > 0) {
    const h = Math.floor(frame / TWO32);
    values.push([size === 8 ? (frame - h * TWO32) | 0 : frame & 0xffff, size === 8 ? h | 0 : 0]);
  }
  const slots = values.map((_, k) => checkCanonical(c, sp - size * (k + 1), true));
  for (const lin of slots) prepareWrite(c, lin, size);
  values.forEach(([lo, hi], k) => writeMem(c, slots[k]!, size, lo, hi));
  // Then a write at the final RSP must be possible (SDM vol. 2 ENTER: "#PF ... if a write using
  // the final value of the stack pointer would cause a page fault"). The host CPU the fixtures
  // were recorded on checks it after the pushes: a fault leaves them in memory, the registers
  // unchanged.
  prepareWrite(c, checkCanonical(c, sp - size * pushes - alloc, true), size);
  const h = Math.floor(frame / TWO32);
  writeReg(c, 5, size, (frame - h * TWO32) | 0, h | 0);
  addRsp(c, -size * pushes - alloc);
}
