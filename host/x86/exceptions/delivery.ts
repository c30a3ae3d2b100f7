/**
 * Event delivery through the 64-bit IDT (SDM vol. 3A §6.12, §6.14 "Exception and interrupt
 * handling in 64-bit mode") and double-fault escalation (§6.15, interrupt 8).
 *
 * Delivery reads the 16-byte gate, checks it (type 0xE interrupt / 0xF trap gate, gate DPL for
 * software interrupts, present), checks the target code segment (64-bit code, DPL ≤ CPL,
 * present), picks the stack (IST entry when the gate names one, else TSS.RSPn on a privilege
 * change, else the current stack), aligns it to 16 bytes and pushes SS, RSP, RFLAGS, CS, RIP and
 * the error code. All of it is checked before any state changes, so a fault during delivery
 * leaves the guest as it was. Table and stack accesses are implicit supervisor-mode accesses.
 *
 * A fault while delivering is delivered instead (benign pairs) or becomes #DF (contributory
 * after contributory, or contributory/#PF after #PF); a fault while delivering #DF shuts the
 * processor down: the triple_fault intercept. Each exception passes the VMX exception bitmap
 * first; an event injected by the hypervisor does not (VM-entry injection is not intercepted),
 * but faults that occur while delivering it do. A second-stage violation is never delivered: it
 * stops the core with the `ept_violation` intercept (mmu/violation.ts).
 */
import { X86_EFLAGS_IF, X86_EFLAGS_NT, X86_EFLAGS_RF, X86_EFLAGS_TF, X86_EFLAGS_VM } from '../../../protocol/abi.js';
import { DESC_TYPE_INTERRUPT_GATE, DESC_TYPE_TRAP_GATE, ERRC_EXT, ERRC_IDT } from '../arch.js';
import { SEG_CS, SEG_SS, type CpuCore } from '../core.js';
import { isCode, readDescriptor, segmentFromDescriptor } from '../descriptors.js';
import { GUEST_FAULT, raiseGP, raiseNP, raiseSS, raiseTS } from '../fault.js';
import { readFlags } from '../flags.js';
import { prepareImplicitWrite, readImplicit32, readImplicit64, writePhysical64 } from '../mmu/access.js';
import { updateTlbContext } from '../mmu/tlb.js';
import { EPT_VIOLATION_VECTOR, eptViolationIntercept } from '../mmu/violation.js';
import { loadSegment } from '../segments.js';
import { noteDebugCondition, takeDebugCondition } from '../debug.js';
import { chainReport, noteException, startChain } from './chain.js';
import { isDoubleFault, isFaultClass } from './classes.js';

/** An exception detected by the processor, or injected by the hypervisor. */
export const EVENT_HARDWARE = 0;
/** INT n. */
export const EVENT_SOFTWARE_INT = 1;
/** INT3 (a software exception: gate DPL checked, trap). */
export const EVENT_SOFTWARE_EXCEPTION = 2;
/** INT1 / ICEBP (a privileged software exception: no gate DPL check). */
export const EVENT_PRIVILEGED_SOFTWARE_EXCEPTION = 3;

const TWO32 = 4294967296;
const CANONICAL_LIMIT = 140737488355328;
const DB_VECTOR = 1;
const DF_VECTOR = 8;
const PF_VECTOR = 14;

const pushAddresses = new Float64Array(6);

function rsp(c: CpuCore): number {
  return c.hi[4]! * TWO32 + (c.lo[4]! >>> 0);
}

/** Reads an 8-byte field of the 64-bit TSS (RSPn, ISTn), #TS(TR selector) beyond its limit. */
function readTss64(c: CpuCore, offset: number, ext: number): number {
  if (c.tr.unusable || offset + 7 > c.tr.limit) raiseTS(c, (c.tr.selector & 0xfffc) | ext);
  const base = Number(BigInt.asIntN(64, c.tr.base));
  const lo = readImplicit64(c, base + offset);
  return c.vhi * TWO32 + (lo >>> 0);
}

/**
 * Delivers one event through the IDT, or throws the fault that prevented it (with no guest
 * state changed). `returnRip` is the RIP pushed (the faulting instruction for faults, the next
 * one for traps and software interrupts).
 */
export function deliverThroughIdt(c: CpuCore, vector: number, errorCode: number, kind: number, returnRip: number): void {
  const ext = kind === EVENT_HARDWARE ? ERRC_EXT : 0;
  const gateError = vector * 8 + ERRC_IDT + ext;
  if (vector * 16 + 15 > c.idtLimit) raiseGP(c, gateError);
  const gate = Number(BigInt.asIntN(64, c.idtBase)) + vector * 16;
  const w0 = readImplicit32(c, gate);
  const w1 = readImplicit32(c, gate + 4);
  const w2 = readImplicit32(c, gate + 8);
  const type = (w1 >> 8) & 0xf;
  const gateDpl = (w1 >> 13) & 3;
  if (type !== DESC_TYPE_INTERRUPT_GATE && type !== DESC_TYPE_TRAP_GATE) raiseGP(c, gateError);
  if ((kind === EVENT_SOFTWARE_INT || kind === EVENT_SOFTWARE_EXCEPTION) && c.cpl > gateDpl) {
    raiseGP(c, vector * 8 + ERRC_IDT);
  }
  if ((w1 & 0x8000) === 0) raiseNP(c, gateError);

  const selector = w0 >>> 16;
  if ((selector & 0xfffc) === 0) raiseGP(c, ext);
  const cs = readDescriptor(c, selector, ext);
  const csError = (selector & 0xfffc) | ext;
  if (!isCode(cs) || cs.dpl > c.cpl) raiseGP(c, csError);
  if (!cs.present) raiseNP(c, csError);
  if (!cs.l || cs.db) raiseGP(c, csError);
  const conforming = (cs.type & 4) !== 0;
  const newCpl = conforming ? c.cpl : cs.dpl;

  const offLo = (w0 & 0xffff) | (w1 & 0xffff0000);
  const target = w2 * TWO32 + (offLo >>> 0);
  if (w2 !== (w2 << 16) >> 16) raiseGP(c, ext);

  const ist = w1 & 7;
  const oldRsp = rsp(c);
  let top: number;
  if (ist !== 0) top = readTss64(c, 0x24 + (ist - 1) * 8, ext);
  else if (newCpl < c.cpl) top = readTss64(c, 4 + newCpl * 8, ext);
  else top = oldRsp;
  if (top >= CANONICAL_LIMIT || top < -CANONICAL_LIMIT) raiseSS(c, ext);
  top -= ((top % 16) + 16) % 16;

  const count = errorCode >= 0 ? 6 : 5;
  for (let k = 0; k < count; k++) {
    const lin = top - 8 * (k + 1);
    if (lin < -CANONICAL_LIMIT) raiseSS(c, ext);
    pushAddresses[k] = prepareImplicitWrite(c, lin);
  }

  // Nothing can fault from here on.
  let flags = readFlags(c);
  if (kind === EVENT_HARDWARE && isFaultClass(vector)) flags |= X86_EFLAGS_RF;
  const ss = c.seg[SEG_SS]!;
  const oldCs = c.seg[SEG_CS]!;
  const values = [ss.selector, 0, flags, oldCs.selector, 0, errorCode];
  for (let k = 0; k < count; k++) {
    let lo: number, hi: number;
    if (k === 1 || k === 4) {
      const v = k === 1 ? oldRsp : returnRip;
      const h = Math.floor(v / TWO32);
      lo = (v - h * TWO32) | 0;
      hi = h | 0;
    } else {
      lo = values[k]! | 0;
      hi = 0;
    }
    writePhysical64(c, pushAddresses[k]!, lo, hi);
  }

  if (newCpl !== c.cpl) {
    loadSegment(c, SEG_SS, {
      base: 0n, limit: 0, selector: newCpl, type: 0, present: false, dpl: newCpl,
      db: false, s: false, l: false, g: false, avl: false, unusable: true,
    });
  }
  loadSegment(c, SEG_CS, segmentFromDescriptor(cs, (selector & 0xfffc) | newCpl));
  c.cpl = newCpl;
  const newRsp = top - 8 * count;
  const h = Math.floor(newRsp / TWO32);
  c.lo[4] = (newRsp - h * TWO32) | 0;
  c.hi[4] = h | 0;
  let clear = X86_EFLAGS_TF | X86_EFLAGS_NT | X86_EFLAGS_RF | X86_EFLAGS_VM;
  if (type === DESC_TYPE_INTERRUPT_GATE) clear |= X86_EFLAGS_IF;
  c.flags = (readFlags(c) & ~clear) >>> 0;
  c.ccOp = 0;
  c.rip = target;
  c.idtDeliveries++;
  updateTlbContext(c);
}

/**
 * Raises an event with double-fault escalation and the exception bitmap. Returns true when the
 * guest can continue (the event was delivered); false when c.stop holds an intercept
 * (exception bitmap or triple fault).
 */
export function raiseEvent(
  c: CpuCore, vector: number, errorCode: number, address: number, kind: number, returnRip: number, injected: boolean,
): boolean {
  if (vector === EPT_VIOLATION_VECTOR) {
    c.stop = eptViolationIntercept(c);
    return false;
  }
  if (!injected && stoppedByBitmap(c, vector, errorCode, address, kind)) return false;
  if (vector === PF_VECTOR && kind === EVENT_HARDWARE) c.cr2 = BigInt.asUintN(64, BigInt(address));
  startChain(c);
  noteException(c, vector, errorCode, address);
  for (;;) {
    try {
      if (vector === DB_VECTOR && kind === EVENT_HARDWARE) noteDebugCondition(c);
      deliverThroughIdt(c, vector, errorCode, kind, returnRip);
      return true;
    } catch (e) {
      if (e !== GUEST_FAULT) throw e;
      // A fault while delivering: it meets the exception bitmap first, and a #PF loads CR2 even
      // when it goes on to become a double fault (SDM vol. 3A §6.15, interrupt 14, note 1).
      if (c.faultVector === EPT_VIOLATION_VECTOR) {
        // The second stage refused a table or stack access of the delivery: the event is handed
        // back as IDT-vectoring information, for the hypervisor to inject again (a fault-like
        // hardware event; a software one recurs when its instruction runs again).
        const vectoring = kind === EVENT_HARDWARE && returnRip === c.rip ? { vector, errorCode, address } : undefined;
        c.stop = eptViolationIntercept(c, vectoring);
        return false;
      }
      const second = c.faultVector;
      const secondCode = c.faultErrorCode;
      const secondAddress = c.faultAddress;
      if (stoppedByBitmap(c, second, secondCode, secondAddress, EVENT_HARDWARE)) return false;
      if (second === PF_VECTOR) c.cr2 = BigInt.asUintN(64, BigInt(secondAddress));
      noteException(c, second, secondCode, secondAddress);
      if (vector === DF_VECTOR && kind === EVENT_HARDWARE) {
        c.stop = { kind: 'triple_fault', chain: chainReport(c) };
        return false;
      }
      if (kind === EVENT_HARDWARE && isDoubleFault(vector, second)) {
        if (stoppedByBitmap(c, DF_VECTOR, 0, 0, EVENT_HARDWARE)) return false;
        noteException(c, DF_VECTOR, 0, 0);
        vector = DF_VECTOR;
        errorCode = 0;
      } else {
        vector = second;
        errorCode = secondCode;
      }
      kind = EVENT_HARDWARE;
      returnRip = c.rip;
    }
  }
}

/** VMX exception bitmap: an exception whose bit is set stops the core before delivery. */
function stoppedByBitmap(c: CpuCore, vector: number, errorCode: number, address: number, kind: number): boolean {
  if (kind === EVENT_SOFTWARE_INT || ((c.exceptionBitmap >>> vector) & 1) === 0) return false;
  const code = errorCode >= 0 ? errorCode : undefined;
  if (vector === PF_VECTOR) c.stop = { kind: 'exception', vector, errorCode: code, address: BigInt.asUintN(64, BigInt(address)) };
  else if (vector === DB_VECTOR && kind === EVENT_HARDWARE) c.stop = { kind: 'exception', vector, errorCode: code, dr6: takeDebugCondition(c) };
  else c.stop = { kind: 'exception', vector, errorCode: code };
  return true;
}
