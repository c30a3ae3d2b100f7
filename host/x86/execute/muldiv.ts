/**
 * MUL, IMUL (one, two and three operands), DIV, IDIV (SDM vol. 2 per instruction).
 *
 * MUL/IMUL set CF=OF when the product does not fit the destination (the upper half is not zero
 * for MUL, not the sign-extension of the lower half for IMUL); SF/ZF/AF/PF are undefined — we
 * derive SF/ZF/PF from the low result and clear AF. DIV/IDIV leave every flag undefined — we
 * leave them unchanged — and raise #DE on a zero divisor or a quotient that does not fit.
 * Products and quotients wider than a double's mantissa go through BigInt (docs/x86-model.md §7:
 * BigInt only at the edges and on these rare wide paths).
 */
import { X86_EFLAGS_CF, X86_EFLAGS_OF } from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { raiseDE } from '../fault.js';
import { setFlagsResult, setFlagsResult64 } from '../flags.js';
import type { Insn } from '../decode/insn.js';
import { readReg, toBigInt, writeReg16, writeReg32, writeReg64 } from '../registers.js';
import { immediate, readE } from './operands.js';

const CF_OF = X86_EFLAGS_CF | X86_EFLAGS_OF;

/** High 32 bits of the unsigned 64-bit product of two uint32 values (exact, via 16-bit limbs). */
export function mulHighU32(a: number, b: number): number {
  a >>>= 0;
  b >>>= 0;
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
  const mid = (p00 >>> 16) + (p01 & 0xffff) + (p10 & 0xffff);
  return (p11 + (p01 >>> 16) + (p10 >>> 16) + Math.floor(mid / 65536)) | 0;
}

function u64(lo: number, hi: number): bigint {
  return toBigInt(lo, hi);
}

function s64(lo: number, hi: number): bigint {
  return BigInt.asIntN(64, toBigInt(lo, hi));
}

/** MUL E (sub 4) and IMUL E (sub 5): the accumulator times E, double-width result. */
export function mulAcc(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const signed = i.sub === 5;
  const sLo = readE(c, i, size);
  const sHi = c.vhi;
  switch (size) {
    case 1: {
      const a = c.lo[0]! & 0xff;
      const p = signed ? ((a << 24) >> 24) * ((sLo << 24) >> 24) : a * sLo;
      writeReg16(c, 0, p);
      const over = signed ? p !== (p << 24) >> 24 : p > 0xff;
      setFlagsResult(c, 1, p << 24, over ? CF_OF : 0);
      break;
    }
    case 2: {
      const a = c.lo[0]! & 0xffff;
      const p = signed ? ((a << 16) >> 16) * ((sLo << 16) >> 16) : a * sLo;
      writeReg16(c, 0, p);
      writeReg16(c, 2, p >> 16);
      const over = signed ? p !== (p << 16) >> 16 : p > 0xffff;
      setFlagsResult(c, 2, p << 16, over ? CF_OF : 0);
      break;
    }
    case 4: {
      const a = c.lo[0]!;
      const lo = Math.imul(a, sLo);
      let hi = mulHighU32(a, sLo);
      if (signed) hi = (hi - (a < 0 ? sLo : 0) - (sLo < 0 ? a : 0)) | 0;
      writeReg32(c, 0, lo);
      writeReg32(c, 2, hi);
      const over = signed ? hi !== lo >> 31 : hi !== 0;
      setFlagsResult(c, 4, lo, over ? CF_OF : 0);
      break;
    }
    default: {
      const a = signed ? s64(c.lo[0]!, c.hi[0]!) : u64(c.lo[0]!, c.hi[0]!);
      const b = signed ? s64(sLo, sHi) : u64(sLo, sHi);
      const p = BigInt.asUintN(128, a * b);
      const lo = BigInt.asUintN(64, p), hi = p >> 64n;
      const over = signed ? BigInt.asIntN(64, lo) !== BigInt.asIntN(128, p) : hi !== 0n;
      const rl = Number(lo & 0xffffffffn) | 0, rh = Number(lo >> 32n) | 0;
      writeReg64(c, 0, rl, rh);
      writeReg64(c, 2, Number(hi & 0xffffffffn) | 0, Number(hi >> 32n) | 0);
      setFlagsResult64(c, rl, rh, over ? CF_OF : 0);
      break;
    }
  }
}

/** Signed product of G (or E) and a second factor, truncated to the operand size. */
function imulTruncated(c: CpuCore, i: Insn, aLo: number, aHi: number, bLo: number, bHi: number): void {
  const size = i.osize;
  if (size === 8) {
    const p = s64(aLo, aHi) * s64(bLo, bHi);
    const t = BigInt.asIntN(64, p);
    const rl = Number(t & 0xffffffffn) | 0, rh = Number((t >> 32n) & 0xffffffffn) | 0;
    writeReg64(c, i.reg, rl, rh);
    setFlagsResult64(c, rl, rh, t !== p ? CF_OF : 0);
  } else if (size === 4) {
    const r = Math.imul(aLo, bLo);
    writeReg32(c, i.reg, r);
    setFlagsResult(c, 4, r, (aLo | 0) * (bLo | 0) !== r ? CF_OF : 0);
  } else {
    const p = ((aLo << 16) >> 16) * ((bLo << 16) >> 16);
    writeReg16(c, i.reg, p);
    setFlagsResult(c, 2, p << 16, p !== (p << 16) >> 16 ? CF_OF : 0);
  }
}

/** IMUL Gv,Ev (0F AF). */
export function imulGE(c: CpuCore, i: Insn): void {
  const bLo = readE(c, i, i.osize);
  const bHi = c.vhi;
  const aLo = readReg(c, i.reg, i.osize);
  imulTruncated(c, i, aLo, c.vhi, bLo, bHi);
}

/** IMUL Gv,Ev,Iz / Gv,Ev,Ibs (69, 6B). */
export function imulGEI(c: CpuCore, i: Insn): void {
  const aLo = readE(c, i, i.osize);
  const aHi = c.vhi;
  imulTruncated(c, i, aLo, aHi, immediate(c, i, i.osize), i.immHi);
}

/** DIV E (sub 6) and IDIV E (sub 7). */
export function divAcc(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const signed = i.sub === 7;
  const dLo = readE(c, i, size);
  const dHi = c.vhi;
  switch (size) {
    case 1: {
      const n = c.lo[0]! & 0xffff;
      const d = signed ? (dLo << 24) >> 24 : dLo;
      if (d === 0) raiseDE(c);
      const nn = signed ? (n << 16) >> 16 : n;
      const q = Math.trunc(nn / d), r = nn % d;
      if (signed ? q !== (q << 24) >> 24 : q > 0xff) raiseDE(c);
      writeReg16(c, 0, (q & 0xff) | ((r & 0xff) << 8));
      return;
    }
    case 2: {
      const n = ((c.lo[2]! & 0xffff) * 65536) + (c.lo[0]! & 0xffff);
      const d = signed ? (dLo << 16) >> 16 : dLo;
      if (d === 0) raiseDE(c);
      const nn = signed ? n | 0 : n;
      const q = Math.trunc(nn / d), r = nn % d;
      if (signed ? q !== (q << 16) >> 16 : q > 0xffff) raiseDE(c);
      writeReg16(c, 0, q);
      writeReg16(c, 2, r);
      return;
    }
    case 4: {
      const lo = c.lo[0]!, hi = c.lo[2]!;
      if (dLo === 0) raiseDE(c);
      if (!signed && hi === 0) {
        const n = lo >>> 0, d = dLo >>> 0;
        writeReg32(c, 0, Math.floor(n / d) | 0);
        writeReg32(c, 2, (n % d) | 0);
        return;
      }
      if (signed && hi === lo >> 31) {
        if (lo === -2147483648 && dLo === -1) raiseDE(c);
        writeReg32(c, 0, Math.trunc(lo / dLo) | 0);
        writeReg32(c, 2, (lo % dLo) | 0);
        return;
      }
      const n = signed ? BigInt.asIntN(64, toBigInt(lo, hi)) : toBigInt(lo, hi);
      const d = signed ? BigInt(dLo | 0) : BigInt(dLo >>> 0);
      const q = n / d, r = n % d;
      if (signed ? BigInt.asIntN(32, q) !== q : q >= 1n << 32n) raiseDE(c);
      writeReg32(c, 0, Number(BigInt.asIntN(32, q)));
      writeReg32(c, 2, Number(BigInt.asIntN(32, r)));
      return;
    }
    default: {
      const d = signed ? s64(dLo, dHi) : u64(dLo, dHi);
      if (d === 0n) raiseDE(c);
      const nU = (u64(c.lo[2]!, c.hi[2]!) << 64n) | u64(c.lo[0]!, c.hi[0]!);
      const n = signed ? BigInt.asIntN(128, nU) : nU;
      const q = n / d, r = n % d;
      if (signed ? BigInt.asIntN(64, q) !== q : q >= 1n << 64n) raiseDE(c);
      const qu = BigInt.asUintN(64, q), ru = BigInt.asUintN(64, r);
      writeReg64(c, 0, Number(qu & 0xffffffffn) | 0, Number(qu >> 32n) | 0);
      writeReg64(c, 2, Number(ru & 0xffffffffn) | 0, Number(ru >> 32n) | 0);
      return;
    }
  }
}

