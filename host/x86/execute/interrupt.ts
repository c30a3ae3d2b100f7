/**
 * Software interrupts and privilege transitions: INT n, INT3, INT1, IRET/IRETD/IRETQ, SYSCALL,
 * SYSRET (SDM vol. 2 per instruction; vol. 3A §6.14).
 */
import {
  EFER_SCE, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_NT, X86_EFLAGS_RF,
  X86_EFLAGS_VIF, X86_EFLAGS_VIP, X86_EFLAGS_VM,
} from '../../../protocol/abi.js';
import { RFLAGS_DEFINED } from '../arch.js';
import { SEG_CS, SEG_DS, SEG_ES, SEG_FS, SEG_GS, SEG_SS, type CpuCore } from '../core.js';
import {
  flatCode64, flatData, isCode, isWritableData, readDescriptor, segmentFromDescriptor, type Descriptor,
} from '../descriptors.js';
import { needsStepping } from '../debug.js';
import type { Segment } from '../state.js';
import {
  EVENT_PRIVILEGED_SOFTWARE_EXCEPTION, EVENT_SOFTWARE_EXCEPTION, EVENT_SOFTWARE_INT, raiseEvent,
} from '../exceptions/delivery.js';
import { raiseGP, raiseNP, raiseSS, raiseUD } from '../fault.js';
import { materializeFlags, readFlags } from '../flags.js';
import type { Insn } from '../decode/insn.js';
import { readMem } from '../mmu/access.js';
import { updateTlbContext } from '../mmu/tlb.js';
import { loadSegment } from '../segments.js';
import { checkCanonical } from './address.js';
import { rspValue } from './stack.js';

const TWO32 = 4294967296;

function softwareEvent(c: CpuCore, i: Insn, vector: number, kind: number): void {
  if (!raiseEvent(c, vector, -1, 0, kind, c.rip + i.len, false)) c.interceptedLength = i.len;
}

/** INT Ib (CD). */
export function intN(c: CpuCore, i: Insn): void {
  softwareEvent(c, i, i.imm & 0xff, EVENT_SOFTWARE_INT);
}

/** INT3 (CC). */
export function int3(c: CpuCore, i: Insn): void {
  softwareEvent(c, i, 3, EVENT_SOFTWARE_EXCEPTION);
}

/** INT1 / ICEBP (F1): a #DB trap without the gate DPL check. */
export function int1(c: CpuCore, i: Insn): void {
  softwareEvent(c, i, 1, EVENT_PRIVILEGED_SOFTWARE_EXCEPTION);
}

/**
 * The value `size` bytes wide at RSP + offset, zero-extended: low half returned, high half in
 * c.vhi (0 for sizes below 8).
 */
function popped(c: CpuCore, base: number, offset: number, size: number): number {
  const lin = checkCanonical(c, base + offset, true);
  const lo = readMem(c, lin, size);
  if (size !== 8) c.vhi = 0;
  return lo;
}

/**
 * IRET in IA-32e mode (SDM vol. 2 IRET, "IA-32e-MODE" path): pops RIP, CS, RFLAGS, RSP, SS
 * (always, even without a privilege change), checks the code and stack segments, then loads
 * them. Returning to a 16/32-bit code segment enters compatibility mode, which this core does
 * not run (the next run() stops with invalid_guest_state).
 */
export function iret(c: CpuCore, i: Insn): void {
  const size = i.osize;
  materializeFlags(c);
  if ((c.flags & X86_EFLAGS_NT) !== 0) raiseGP(c, 0); // task return: #GP(0) in IA-32e mode
  const sp = rspValue(c);
  const ripLo = popped(c, sp, 0, size);
  const ripHi = c.vhi;
  const csSel = popped(c, sp, size, size) & 0xffff;
  const newFlags = popped(c, sp, 2 * size, size);
  const rspLo = popped(c, sp, 3 * size, size);
  const rspHi = c.vhi;
  const ssSel = popped(c, sp, 4 * size, size) & 0xffff;

  if ((csSel & 0xfffc) === 0) raiseGP(c, 0);
  const rpl = csSel & 3;
  const cs = readDescriptor(c, csSel, 0);
  const csErr = csSel & 0xfffc;
  if (!isCode(cs) || rpl < c.cpl) raiseGP(c, csErr);
  const conforming = (cs.type & 4) !== 0;
  if (conforming ? cs.dpl > rpl : cs.dpl !== rpl) raiseGP(c, csErr);
  if (!cs.present) raiseNP(c, csErr);
  if (cs.l && cs.db) raiseGP(c, csErr);

  const ss = returnStackSegment(c, ssSel, rpl, cs.l);
  if (cs.l && ripHi !== (ripHi << 16) >> 16) raiseGP(c, 0); // non-canonical return address

  // Commit.
  const oldCpl = c.cpl;
  const old = c.flags;
  const iopl = (old & X86_EFLAGS_IOPL) >> 12;
  let changeable = RFLAGS_DEFINED & ~X86_EFLAGS_VM;
  if (oldCpl > 0) changeable &= ~(X86_EFLAGS_IOPL | X86_EFLAGS_VIF | X86_EFLAGS_VIP);
  if (oldCpl > iopl) changeable &= ~X86_EFLAGS_IF;
  if (size === 2) changeable &= 0xffff;
  c.flags = (((old & ~changeable) | (newFlags & changeable)) | 2) >>> 0;
  c.rfLoaded = (c.flags & X86_EFLAGS_RF) !== 0;

  loadSegment(c, SEG_CS, segmentFromDescriptor(cs, csSel));
  loadSegment(c, SEG_SS, ss === null ? nullStackSegment(ssSel, rpl) : segmentFromDescriptor(ss, ssSel));
  c.cpl = rpl;
  c.lo[4] = rspLo;
  c.hi[4] = rspHi;
  if (rpl > oldCpl) dropInaccessibleDataSegments(c, rpl);
  c.rip = ripHi * TWO32 + (ripLo >>> 0);
  // Compatibility mode: the core stops before running it. TF or RF from the frame: the next
  // instructions are single-stepped (debug.ts), which runBlocks leaves to run().
  if (!cs.l || needsStepping(c)) c.stateChecked = false;
  updateTlbContext(c);
}

/**
 * The stack segment a return to an outer or the same level loads (IRET, far RET in IA-32e mode:
 * SDM vol. 2 IRET and RET): a null selector only for 64-bit code below CPL 3; otherwise RPL =
 * the new CPL, a writable data segment of that DPL, present. Null: returns null.
 */
export function returnStackSegment(c: CpuCore, ssSel: number, rpl: number, to64: boolean): Descriptor | null {
  if ((ssSel & 0xfffc) === 0) {
    if (!to64 || rpl === 3) raiseGP(c, 0);
    return null;
  }
  const ssErr = ssSel & 0xfffc;
  if ((ssSel & 3) !== rpl) raiseGP(c, ssErr);
  const ss = readDescriptor(c, ssSel, 0);
  if (!isWritableData(ss) || ss.dpl !== rpl) raiseGP(c, ssErr);
  if (!ss.present) raiseSS(c, ssErr);
  return ss;
}

/** A null SS as 64-bit mode loads it: unusable, DPL the new CPL. */
export function nullStackSegment(selector: number, dpl: number): Segment {
  return { base: 0n, limit: 0, selector, type: 0, present: false, dpl, db: false, s: false, l: false, g: false, avl: false, unusable: true };
}

/**
 * On a return to an outer level, a data or non-conforming code segment in ES, DS, FS or GS that
 * the new CPL may not use is loaded with the null selector (SDM vol. 2 IRET, RET).
 */
export function dropInaccessibleDataSegments(c: CpuCore, cpl: number): void {
  for (const n of [SEG_ES, SEG_DS, SEG_FS, SEG_GS]) {
    const s = c.seg[n]!;
    const dataOrNonConforming = !(s.s && (s.type & 8) !== 0 && (s.type & 4) !== 0);
    if (!s.unusable && s.dpl < cpl && dataOrNonConforming) loadSegment(c, n, { ...s, selector: 0, unusable: true });
  }
}

/** SYSCALL (0F 05), SDM vol. 2: to CPL 0 at LSTAR, RCX ← RIP, R11 ← RFLAGS, RFLAGS &= ~SFMASK. */
export function syscall(c: CpuCore, i: Insn): void {
  if ((c.efer & EFER_SCE) === 0n) raiseUD(c);
  const target = Number(BigInt.asIntN(64, c.lstar));
  if (target >= 140737488355328 || target < -140737488355328) raiseGP(c, 0);
  const next = c.rip + i.len;
  const h = Math.floor(next / TWO32);
  c.lo[1] = (next - h * TWO32) | 0;
  c.hi[1] = h | 0;
  const flags = readFlags(c);
  c.lo[11] = flags;
  c.hi[11] = 0;
  const sel = Number((c.star >> 32n) & 0xffffn);
  loadSegment(c, SEG_CS, flatCode64(sel & 0xfffc, 0));
  loadSegment(c, SEG_SS, flatData((sel + 8) & 0xffff, 0));
  c.cpl = 0;
  c.flags = ((flags & ~Number(c.sfmask & 0xffffffffn) & ~X86_EFLAGS_RF) | 2) >>> 0;
  c.ccOp = 0;
  c.rip = target;
  updateTlbContext(c);
}

/**
 * SYSRET (0F 07): #UD without EFER.SCE, #GP(0) at CPL > 0 or (Intel) with a non-canonical RCX
 * before any state changes. REX.W returns to 64-bit code; without it, to compatibility mode
 * (which this core does not run: the next run() stops with invalid_guest_state).
 */
export function sysret(c: CpuCore, i: Insn): void {
  if ((c.efer & EFER_SCE) === 0n) raiseUD(c);
  if (c.cpl !== 0) raiseGP(c, 0);
  const hi = c.hi[1]!;
  const to64 = i.rexW;
  if (to64 && hi !== (hi << 16) >> 16) raiseGP(c, 0);
  const sel = Number((c.star >> 48n) & 0xffffn);
  if (to64) {
    loadSegment(c, SEG_CS, flatCode64(((sel + 16) & 0xfffc) | 3, 3));
    c.rip = hi * TWO32 + (c.lo[1]! >>> 0);
  } else {
    loadSegment(c, SEG_CS, { ...flatCode64((sel & 0xfffc) | 3, 3), l: false, db: true });
    c.rip = c.lo[1]! >>> 0;
  }
  loadSegment(c, SEG_SS, flatData(((sel + 8) & 0xfffc) | 3, 3));
  c.cpl = 3;
  const r11 = c.lo[11]!;
  c.flags = (((r11 & 0x3c7fd7) | 2) & ~(X86_EFLAGS_RF | X86_EFLAGS_VM)) >>> 0;
  c.ccOp = 0;
  c.stateChecked = c.stateChecked && to64 && !needsStepping(c);
  updateTlbContext(c);
}

