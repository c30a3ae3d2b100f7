/**
 * Generated code for memory operands: the linear address (with the canonical check), and loads
 * and stores with the data-TLB hit path inline (tag compare, DataView access) and the slow path
 * through mmu/access.ts. Names used by the generated code (L, Hi, TR, TW, TV, base, c, I and the
 * helpers) are bound by compile.ts.
 */
import { TLB_MASK } from '../core.js';
import { AMODE_ABS, AMODE_BASE_DISP, AMODE_RIP, type Insn } from '../decode/insn.js';
import type { Emitter } from './emitter.js';

const LIMIT = 140737488355328; // 2^47

/**
 * Emits the computation of the instruction's memory operand address; returns a local (or a
 * literal) that holds it. May fault (#GP/#SS on a non-canonical address).
 */
export function emitAddress(e: Emitter, i: Insn): string {
  switch (i.amode) {
    case AMODE_ABS:
      return String(i.disp);
    case AMODE_BASE_DISP: {
      const a = e.local('a');
      e.emit(`${a} = Hi[${i.base}] * 4294967296 + (L[${i.base}] >>> 0) + ${i.disp};`);
      e.emit(`if (${a} >= ${LIMIT} || ${a} < -${LIMIT}) nonCanonical(c, ${i.stackAddress});`);
      return a;
    }
    case AMODE_RIP: {
      const a = e.local('a');
      e.emit(`${a} = base + ${i.offset + i.len + i.disp};`);
      e.emit(`if (${a} >= ${LIMIT} || ${a} < -${LIMIT}) nonCanonical(c, false);`);
      return a;
    }
    default: {
      const a = e.local('a');
      e.emit(`c.rip = base + ${i.offset}; ${a} = linearAddress(c, I[${e.index}]);`);
      return a;
    }
  }
}

const VIEW_GET: Record<number, string> = { 1: 'getUint8(o)', 2: 'getUint16(o, true)', 4: 'getInt32(o, true)' };
const VIEW_SET: Record<number, string> = { 1: 'setUint8', 2: 'setUint16', 4: 'setInt32' };
const SLOW_READ: Record<number, string> = { 1: 'read8', 2: 'read16', 4: 'read32', 8: 'read64' };
const SLOW_WRITE: Record<number, string> = { 1: 'write8', 2: 'write16', 4: 'write32', 8: 'write64' };

/** Loads `size` bytes at address expression `a` into `lo` (and `hi` for size 8). */
export function emitLoad(e: Emitter, a: string, size: number, lo: string, hi: string): void {
  const fits = 4096 - size;
  const probe = `const o = ${a} & 4095, x = (${a} >>> 12) & ${TLB_MASK};`;
  if (size === 8) {
    e.emit(`{ ${probe} if (TR[x] === ${a} - o && o <= ${fits}) { const v = TV[x]; ${lo} = v.getInt32(o, true); ${hi} = v.getInt32(o + 4, true); } else { ${lo} = read64(c, ${a}); ${hi} = c.vhi; } }`);
  } else {
    e.emit(`{ ${probe} ${lo} = TR[x] === ${a} - o && o <= ${fits} ? TV[x].${VIEW_GET[size]} : ${SLOW_READ[size]}(c, ${a}); }`);
  }
}

/** Stores `size` bytes of `lo` (and `hi`) at address expression `a`. */
export function emitStore(e: Emitter, a: string, size: number, lo: string, hi: string): void {
  const fits = 4096 - size;
  const probe = `const o = ${a} & 4095, x = (${a} >>> 12) & ${TLB_MASK};`;
  if (size === 8) {
    e.emit(`{ ${probe} if (TW[x] === ${a} - o && o <= ${fits}) { const v = TV[x]; v.setInt32(o, ${lo}, true); v.setInt32(o + 4, ${hi}, true); } else write64(c, ${a}, ${lo}, ${hi}); }`);
  } else {
    const args = size === 1 ? `o, ${lo}` : `o, ${lo}, true`;
    e.emit(`{ ${probe} if (TW[x] === ${a} - o && o <= ${fits}) TV[x].${VIEW_SET[size]}(${args}); else ${SLOW_WRITE[size]}(c, ${a}, ${lo}); }`);
  }
}

/** RSP as a number (exact for canonical values), with the #SS check for an access at `delta`. */
export function emitStackAddress(e: Emitter, delta: number): string {
  const a = e.local('sp');
  e.emit(`${a} = Hi[4] * 4294967296 + (L[4] >>> 0) + ${delta};`);
  e.emit(`if (${a} >= ${LIMIT} || ${a} < -${LIMIT}) nonCanonical(c, true);`);
  return a;
}

/** RSP += delta with exact 64-bit wrap-around. */
export function emitAdjustRsp(e: Emitter, delta: number): void {
  const t = e.local('t');
  e.emit(`${t} = (L[4] >>> 0) + ${delta}; L[4] = ${t} | 0; Hi[4] = (Hi[4] + (${t} < 0 ? -1 : ${t} >= 4294967296 ? 1 : 0)) | 0;`);
}

/** Splits a number holding a canonical address into int32 halves. */
export function emitSplit(e: Emitter, value: string, lo: string, hi: string): void {
  e.emit(`${hi} = Math.floor(${value} / 4294967296); ${lo} = (${value} - ${hi} * 4294967296) | 0; ${hi} |= 0;`);
}
