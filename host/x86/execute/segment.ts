/**
 * Segment registers in 64-bit mode: MOV r/m, Sreg (8C), MOV Sreg, r/m (8E) and the far return
 * RETF (CB, CA Iw) that a kernel uses to reload CS after installing its own GDT (SDM vol. 2
 * MOV, RET; vol. 3A §3.4, §5.8). A guest that brings its own GDT loads it with LGDT, reloads
 * DS/ES/SS (and FS/GS) with MOV, and CS with a far return — `pushq $sel; pushq $1f; lretq`.
 *
 * Loads read the descriptor from the GDT or LDT (an implicit supervisor access) and set its
 * accessed bit, as the processor does; every check comes before any change.
 */
import { SEG_CS, SEG_FS, SEG_GS, SEG_SS, type CpuCore } from '../core.js';
import { isCode, isWritableData, readDescriptor, segmentFromDescriptor, type Descriptor } from '../descriptors.js';
import { raiseGP, raiseNP, raiseSS } from '../fault.js';
import type { Insn } from '../decode/insn.js';
import { readMem, writeImplicit32, write16 } from '../mmu/access.js';
import { updateTlbContext } from '../mmu/tlb.js';
import { writeReg } from '../registers.js';
import { loadSegment } from '../segments.js';
import { checkCanonical, linearAddress } from './address.js';
import { dropInaccessibleDataSegments, nullStackSegment, returnStackSegment } from './interrupt.js';
import { readE } from './operands.js';
import { addRsp, rspValue } from './stack.js';

const TWO32 = 4294967296;
/** Descriptor type bit 0: accessed. */
const ACCESSED = 1 << 8;

/**
 * MOV Ev, Sw (8C): the selector. To a register, zero-extended to the operand size (the upper
 * bytes of a 32-bit destination are zeroed, as current processors do, and then RAX's upper half
 * as for any 32-bit write); to memory, always 16 bits.
 */
export function movFromSreg(c: CpuCore, i: Insn): void {
  const selector = c.seg[i.reg]!.selector & 0xffff;
  if (i.rm >= 0) writeReg(c, i.rm, i.osize, selector, 0);
  else write16(c, linearAddress(c, i), selector);
}

/** Sets a descriptor's accessed bit in its table, if it is clear. */
function markAccessed(c: CpuCore, d: Descriptor): void {
  if ((d.high & ACCESSED) === 0) writeImplicit32(c, d.address + 4, d.high | ACCESSED);
}

/**
 * MOV SS, r/m: a null selector only in 64-bit mode below CPL 3 with RPL = CPL; otherwise RPL =
 * CPL, a writable data segment with DPL = CPL, present (#SS otherwise).
 */
function loadStackSegment(c: CpuCore, sel: number): void {
  if ((sel & 0xfffc) === 0) {
    if (c.cpl === 3 || (sel & 3) !== c.cpl) raiseGP(c, 0);
    loadSegment(c, SEG_SS, nullStackSegment(sel, c.cpl));
    return;
  }
  const err = sel & 0xfffc;
  const d = readDescriptor(c, sel, 0);
  if ((sel & 3) !== c.cpl || !isWritableData(d) || d.dpl !== c.cpl) raiseGP(c, err);
  if (!d.present) raiseSS(c, err);
  markAccessed(c, d);
  loadSegment(c, SEG_SS, segmentFromDescriptor(d, sel));
}

/**
 * MOV DS/ES/FS/GS, r/m: null loads an unusable segment; otherwise a data or readable code
 * segment, which (data or non-conforming code) neither RPL nor CPL may exceed the DPL of;
 * present (#NP otherwise). FS and GS take their base from the descriptor (32 bits).
 */
function loadDataSegment(c: CpuCore, n: number, sel: number): void {
  if ((sel & 0xfffc) === 0) {
    loadSegment(c, n, { ...c.seg[n]!, selector: sel, base: 0n, unusable: true, present: false });
    return;
  }
  const err = sel & 0xfffc;
  const d = readDescriptor(c, sel, 0);
  const code = isCode(d);
  const readable = code ? (d.type & 2) !== 0 : d.s;
  if (!readable) raiseGP(c, err);
  const conforming = code && (d.type & 4) !== 0;
  if (!conforming && ((sel & 3) > d.dpl || c.cpl > d.dpl)) raiseGP(c, err);
  if (!d.present) raiseNP(c, err);
  markAccessed(c, d);
  loadSegment(c, n, segmentFromDescriptor(d, sel));
}

/** MOV Sw, Ev (8E): the low 16 bits of the operand (CS cannot be loaded: 8E /1 is #UD). */
export function movToSreg(c: CpuCore, i: Insn): void {
  const sel = readE(c, i, 2) & 0xffff;
  if (i.reg === SEG_SS) loadStackSegment(c, sel);
  else loadDataSegment(c, i.reg, sel);
  if (i.reg === SEG_FS || i.reg === SEG_GS) updateTlbContext(c);
}

/**
 * RETF / RETF Iw (CB, CA): pops RIP and CS at the operand size (32 by default, 64 with REX.W),
 * checks the code segment, and returns to the same level, or to an outer one popping RSP and SS
 * too (after releasing Iw bytes of parameters on each stack). A 16- or 32-bit code segment
 * enters compatibility mode, which this core does not run: the next run() stops with
 * invalid_guest_state.
 */
export function farRet(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const release = i.entry.operands.length > 0 ? i.imm & 0xffff : 0;
  const sp = rspValue(c);
  const pop = (offset: number): [number, number] => {
    const lo = readMem(c, checkCanonical(c, sp + offset, true), size);
    return [lo, size === 8 ? c.vhi : 0];
  };
  const [ripLo, ripHi] = pop(0);
  const csSel = pop(size)[0] & 0xffff;
  if ((csSel & 0xfffc) === 0) raiseGP(c, 0);
  const err = csSel & 0xfffc;
  const rpl = csSel & 3;
  const cs = readDescriptor(c, csSel, 0);
  if (!isCode(cs) || rpl < c.cpl) raiseGP(c, err);
  const conforming = (cs.type & 4) !== 0;
  if (conforming ? cs.dpl > rpl : cs.dpl !== rpl) raiseGP(c, err);
  if (!cs.present) raiseNP(c, err);
  if (cs.l && cs.db) raiseGP(c, err);
  const rip = size === 8 ? ripHi * TWO32 + (ripLo >>> 0) : ripLo >>> 0;
  if (cs.l && (rip >= 140737488355328 || rip < -140737488355328 || ripHi !== (ripHi << 16) >> 16)) raiseGP(c, 0);

  let outer: { ss: Descriptor | null; ssSel: number; rspLo: number; rspHi: number } | null = null;
  if (rpl > c.cpl) {
    const [rspLo, rspHi] = pop(2 * size + release);
    const ssSel = pop(3 * size + release)[0] & 0xffff;
    outer = { ss: returnStackSegment(c, ssSel, rpl, cs.l), ssSel, rspLo, rspHi };
  }

  // Commit.
  markAccessed(c, cs);
  loadSegment(c, SEG_CS, segmentFromDescriptor(cs, csSel));
  if (outer === null) {
    addRsp(c, 2 * size + release);
  } else {
    loadSegment(c, SEG_SS, outer.ss === null ? nullStackSegment(outer.ssSel, rpl) : segmentFromDescriptor(outer.ss, outer.ssSel));
    c.cpl = rpl;
    c.lo[4] = outer.rspLo;
    c.hi[4] = size === 8 ? outer.rspHi : 0;
    addRsp(c, release);
    dropInaccessibleDataSegments(c, rpl);
  }
  c.rip = rip;
  if (!cs.l) c.stateChecked = false;
  updateTlbContext(c);
}
