/**
 * Generated code for memory operands: the linear address as two int32 halves, and loads and
 * stores with the data-TLB hit path inline and the slow path through mmu/access.ts. Names used
 * by the generated code (TT, TV, base, c, I and the helpers) are bound by compile.ts. The caller
 * marks the fault point (Emitter.faultPoint) first.
 *
 * The hit path stays in 32-bit integers: the slot and offset come from the low half, and the
 * page is compared with the TLB's tags in halves (CpuCore.tlbTags32), then a DataView access on
 * the frame. Only the miss path builds the address as a number for mmu/access.ts. It also
 * holds the canonical check (#GP(0), or #SS(0) for a stack access): a TLB tag is always a
 * canonical page base, so a hit proves the address canonical.
 */
import { TLB_MASK } from '../core.js';
import { AMODE_ABS, AMODE_BASE_DISP, AMODE_BASE_INDEX, AMODE_RIP, NONE, type Insn } from '../decode/insn.js';
import type { Emitter } from './emitter.js';

const LIMIT = 140737488355328; // 2^47

/** A memory operand's linear address (locals or literals: bits 31:0 and 63:32), and how a non-canonical one faults. */
export interface Address {
  readonly lo: string;
  readonly hi: string;
  readonly fault: 'gp' | 'ss' | null;
}

/**
 * Emits lo/hi = (the 64-bit value in halves bl/bh) + d (an int32 constant), wrapping at 64 bits.
 * Returns the halves (the operands themselves when d is 0).
 */
export function emitAddConstant(e: Emitter, bl: string, bh: string, d: number): [string, string] {
  if (d === 0) return [bl, bh];
  const lo = e.local('al'), hi = e.local('ah');
  // d > 0: a carry when the low half wrapped; d < 0: a borrow when the low half was below -d.
  const carry = d > 0 ? `((${lo} >>> 0) < ${d} ? 1 : 0)` : `((${bl} >>> 0) < ${-d} ? -1 : 0)`;
  e.emit(`${lo} = (${bl} + ${d}) | 0; ${hi} = (${bh} + ${carry}) | 0;`);
  return [lo, hi];
}

/** The halves of a number holding a linear address. */
function splitNumber(e: Emitter, a: string): [string, string] {
  const lo = e.local('al'), hi = e.local('ah');
  e.emit(`${lo} = ${a} | 0; ${hi} = Math.floor(${a} / 4294967296) | 0;`);
  return [lo, hi];
}

/** Emits the computation of the instruction's memory operand address. */
export function emitAddress(e: Emitter, i: Insn): Address {
  switch (i.amode) {
    case AMODE_ABS:
      return { lo: String(i.disp), hi: String(i.disp >> 31), fault: null }; // a sign-extended disp32 is canonical
    case AMODE_BASE_DISP: {
      const [lo, hi] = emitAddConstant(e, e.lo(i.base), e.hi(i.base), i.disp);
      return { lo, hi, fault: i.stackAddress ? 'ss' : 'gp' };
    }
    case AMODE_BASE_INDEX: {
      // Sum of the low halves (exact in a double: below 2^36), its carries into the high half.
      const t = e.local('t'), lo = e.local('al'), hi = e.local('ah'), m = 1 << i.scale;
      const baseLo = i.base === NONE ? '0' : `(${e.lo(i.base)} >>> 0)`, baseHi = i.base === NONE ? '0' : e.hi(i.base);
      e.emit(`${t} = ${baseLo} + (${e.lo(i.index)} >>> 0) * ${m} + ${i.disp >>> 0};`);
      e.emit(`${lo} = ${t} | 0; ${hi} = (${baseHi} + ${e.hi(i.index)} * ${m} + ${i.dispHi} + Math.floor(${t} / 4294967296)) | 0;`);
      return { lo, hi, fault: i.stackAddress ? 'ss' : 'gp' };
    }
    case AMODE_RIP: {
      const off = e.at + i.len + i.disp;
      if (e.onPage(off)) {
        const [lo, hi] = e.onPageHalves(off);
        return { lo, hi, fault: null };
      }
      const a = e.local('a');
      e.emit(`${a} = base + ${off};`);
      const [lo, hi] = splitNumber(e, a);
      return { lo, hi, fault: 'gp' };
    }
    default: {
      // FS/GS or a 32-bit address: linearAddress() computes and checks it.
      const a = e.local('a');
      e.emit(`c.rip = base + ${e.at}; ${e.storeRegisters()} ${a} = linearAddress(c, I[${e.index}]);`);
      const [lo, hi] = splitNumber(e, a);
      return { lo, hi, fault: null };
    }
  }
}

/** The miss path: the address as a number, in `a`, checked for canonical form. */
function missAddress(m: Address): string {
  const check = m.fault === null ? '' : ` if (a >= ${LIMIT} || a < -${LIMIT}) nonCanonical(c, ${m.fault === 'ss'});`;
  return `const a = ${m.hi} * 4294967296 + (${m.lo} >>> 0);${check}`;
}

/** The TLB probe: slot x, page offset o, and whether tag `which` (0: read, 2: write) hits for `size` bytes. */
function probe(m: Address, which: 0 | 2, size: number): [string, string] {
  const decl = `const x = (${m.lo} >>> 12) & ${TLB_MASK}, o = ${m.lo} & 4095, y = x << 2;`;
  const hit = `TT[y + ${which}] === (${m.lo} & -4096) && TT[y + ${which + 1}] === ${m.hi} && o <= ${4096 - size}`;
  return [decl, hit];
}

const VIEW_GET: Record<number, string> = { 1: 'getUint8(o)', 2: 'getUint16(o, true)', 4: 'getInt32(o, true)' };
const VIEW_SET: Record<number, string> = { 1: 'setUint8', 2: 'setUint16', 4: 'setInt32' };
const SLOW_READ: Record<number, string> = { 1: 'read8', 2: 'read16', 4: 'read32', 8: 'read64' };
const SLOW_WRITE: Record<number, string> = { 1: 'write8', 2: 'write16', 4: 'write32', 8: 'write64' };

/** Loads `size` bytes at `m` into `lo` (and `hi` for size 8). */
export function emitLoad(e: Emitter, m: Address, size: number, lo: string, hi: string): void {
  const [decl, hit] = probe(m, 0, size);
  if (size === 8) {
    e.emit(`{ ${decl} if (${hit}) { const v = TV[x]; ${lo} = v.getInt32(o, true); ${hi} = v.getInt32(o + 4, true); } else { ${missAddress(m)} ${lo} = read64(c, a); ${hi} = c.vhi; } }`);
  } else {
    e.emit(`{ ${decl} if (${hit}) ${lo} = TV[x].${VIEW_GET[size]}; else { ${missAddress(m)} ${lo} = ${SLOW_READ[size]}(c, a); } }`);
  }
}

/**
 * Stores `size` bytes of `lo` (and `hi`) at `m`. Only the slow path can write a frame holding
 * decoded code (write tags never point at one, mmu/tlb.ts); it notes that in `w` for
 * Emitter.storeCheck.
 */
export function emitStore(e: Emitter, m: Address, size: number, lo: string, hi: string): void {
  const [decl, hit] = probe(m, 2, size);
  if (size === 8) {
    e.emit(`{ ${decl} if (${hit}) { const v = TV[x]; v.setInt32(o, ${lo}, true); v.setInt32(o + 4, ${hi}, true); } else { ${missAddress(m)} write64(c, a, ${lo}, ${hi}); ${e.noteSlowStore()} } }`);
  } else {
    const args = size === 1 ? `o, ${lo}` : `o, ${lo}, true`;
    e.emit(`{ ${decl} if (${hit}) TV[x].${VIEW_SET[size]}(${args}); else { ${missAddress(m)} ${SLOW_WRITE[size]}(c, a, ${lo}); ${e.noteSlowStore()} } }`);
  }
}

/** The address of a stack access at RSP + `delta`. */
export function emitStackAddress(e: Emitter, delta: number): Address {
  const [lo, hi] = emitAddConstant(e, e.lo(4), e.hi(4), delta);
  return { lo, hi, fault: 'ss' };
}

/** RSP += delta with exact 64-bit wrap-around. */
export function emitAdjustRsp(e: Emitter, delta: number): void {
  const [lo, hi] = emitAddConstant(e, e.lo(4), e.hi(4), delta);
  e.setReg(4, lo, hi);
}

/** Splits a number holding a canonical address into int32 halves. */
export function emitSplit(e: Emitter, value: string, lo: string, hi: string): void {
  e.emit(`${hi} = Math.floor(${value} / 4294967296); ${lo} = (${value} - ${hi} * 4294967296) | 0; ${hi} |= 0;`);
}
