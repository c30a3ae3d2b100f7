/**
 * Shifts and rotates: ROL, ROR, RCL, RCR, SHL/SAL, SHR, SAR (sub-operation = ModRM.reg of the
 * C0/C1/D0..D3 group) by 1, CL or an immediate, and SHLD/SHRD. SDM vol. 2 "SAL/SAR/SHL/SHR",
 * "RCL/RCR/ROL/ROR", "SHLD", "SHRD".
 *
 * The count is masked to 5 bits (6 with a 64-bit operand); a masked count of 0 changes nothing,
 * flags included. OF is defined for 1-bit shifts only; for longer counts we compute the 1-bit
 * formula (the flag is architecturally undefined, and the tests mask it). AF is undefined after
 * shifts; we clear it.
 */
import { X86_EFLAGS_CF, X86_EFLAGS_OF } from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { getCF, materializeFlags, setFlagsResult, setFlagsResult64 } from '../flags.js';
import type { Insn } from '../decode/insn.js';
import { readReg } from '../registers.js';
import { addressForUpdate, readUpdate, writeUpdate } from './operands.js';

export const SH_ROL = 0;
export const SH_ROR = 1;
export const SH_RCL = 2;
export const SH_RCR = 3;
export const SH_SHL = 4;
export const SH_SHR = 5;
export const SH_SAL = 6;
export const SH_SAR = 7;

/** Where the count comes from, per opcode: D0/D1 → 1, D2/D3 → CL, C0/C1 → imm8. */
function shiftCount(c: CpuCore, i: Insn): number {
  const op = i.entry.opcode;
  const raw = op === 0xd0 || op === 0xd1 ? 1 : op === 0xd2 || op === 0xd3 ? c.lo[1]! : i.imm;
  return raw & (i.osize === 8 ? 0x3f : 0x1f);
}

function flagBits(cf: number, of: boolean): number {
  return (cf ? X86_EFLAGS_CF : 0) | (of ? X86_EFLAGS_OF : 0);
}

/** The group-2 shift/rotate. */
export function shiftGroup(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const count = shiftCount(c, i);
  const lin = addressForUpdate(c, i, size);
  const dLo = readUpdate(c, i, lin, size);
  const dHi = c.vhi;
  if (count === 0) {
    // No flags change, but the destination is still written: a 32-bit register is zero-extended.
    writeUpdate(c, i, lin, size, dLo, dHi);
    return;
  }
  const op = i.sub;
  if (op === SH_SHL || op === SH_SAL || op === SH_SHR || op === SH_SAR) {
    if (size === 8) shift64(c, i, lin, op, count, dLo, dHi);
    else shift32(c, i, lin, op, count, size, dLo);
  } else {
    rotate(c, i, lin, op, count, size, dLo, dHi);
  }
}

function shift32(c: CpuCore, i: Insn, lin: number, op: number, n: number, size: number, d: number): void {
  const bits = size * 8;
  const sh = 32 - bits;
  let r: number, cf: number, of: boolean;
  const dz = sh === 0 ? d >>> 0 : d; // zero-extended operand
  if (op === SH_SHR) {
    r = dz >>> n;
    cf = (dz >>> (n - 1)) & 1;
    of = (dz >>> (bits - 1)) !== 0;
  } else if (op === SH_SAR) {
    const s = (dz << sh) >> sh;
    r = s >> n;
    cf = (s >> (n - 1)) & 1;
    of = false;
  } else {
    r = dz << n;
    cf = n <= bits ? (dz >>> (bits - n)) & 1 : 0;
    of = (((r << sh) >>> 31) ^ cf) !== 0;
  }
  const rs = r << sh;
  setFlagsResult(c, size, rs, flagBits(cf, of));
  writeUpdate(c, i, lin, size, sh === 0 ? rs : rs >>> sh, 0);
}

function shift64(c: CpuCore, i: Insn, lin: number, op: number, n: number, lo: number, hi: number): void {
  let rl: number, rh: number, cf: number, of: boolean;
  if (op === SH_SHR || op === SH_SAR) {
    const sar = op === SH_SAR;
    if (n < 32) {
      rl = (lo >>> n) | (hi << (32 - n));
      rh = sar ? hi >> n : hi >>> n;
      cf = (lo >>> (n - 1)) & 1;
    } else {
      rl = sar ? hi >> (n - 32) : n === 32 ? hi : hi >>> (n - 32);
      rh = sar ? hi >> 31 : 0;
      cf = n === 32 ? lo >>> 31 : (hi >>> (n - 33)) & 1;
    }
    of = sar ? false : hi < 0;
  } else {
    if (n < 32) {
      rh = (hi << n) | (lo >>> (32 - n));
      rl = lo << n;
      cf = (hi >>> (32 - n)) & 1;
    } else {
      rh = lo << (n - 32);
      rl = 0;
      cf = n === 32 ? hi & 1 : (lo >>> (64 - n)) & 1;
    }
    of = ((rh >>> 31) ^ cf) !== 0;
  }
  rl |= 0;
  rh |= 0;
  setFlagsResult64(c, rl, rh, flagBits(cf, of));
  writeUpdate(c, i, lin, 8, rl, rh);
}

const MASKS = [0n, 0xffn, 0xffffn, 0n, 0xffffffffn, 0n, 0n, 0n, 0xffffffffffffffffn];

/** ROL/ROR/RCL/RCR: rare in compiled code, done on BigInts for clarity. */
function rotate(c: CpuCore, i: Insn, lin: number, op: number, n: number, size: number, lo: number, hi: number): void {
  const bits = size * 8;
  const B = BigInt(bits);
  const mask = MASKS[size]!;
  const d = size === 8 ? (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0) : BigInt(lo >>> 0) & mask;
  const msb = (v: bigint): number => Number((v >> (B - 1n)) & 1n);
  let r: bigint, cf: number, of: boolean;
  if (op === SH_ROL || op === SH_ROR) {
    const t = BigInt(n % bits);
    r = op === SH_ROL ? ((d << t) | (d >> ((B - t) % B))) & mask : ((d >> t) | (d << ((B - t) % B))) & mask;
    if (op === SH_ROL) {
      cf = Number(r & 1n);
      of = (msb(r) ^ cf) !== 0;
    } else {
      cf = msb(r);
      of = (msb(r) ^ Number((r >> (B - 2n)) & 1n)) !== 0;
    }
    materializeFlags(c);
    c.flags = (c.flags & ~(X86_EFLAGS_CF | X86_EFLAGS_OF)) | flagBits(cf, of);
  } else {
    const t = BigInt(size <= 2 ? n % (bits + 1) : n);
    if (t === 0n) {
      // A rotate by a multiple of 9 or 17: nothing moves and no flag changes (host CPU behaviour).
      writeUpdate(c, i, lin, size, lo, hi);
      return;
    }
    const cin = BigInt(getCF(c));
    const wide = (cin << B) | d; // bits+1 bits: carry above the operand
    const W = B + 1n;
    const wmask = (1n << W) - 1n;
    let w: bigint;
    if (op === SH_RCL) w = ((wide << t) | (wide >> (W - t))) & wmask;
    else w = ((wide >> t) | (wide << (W - t))) & wmask;
    r = w & mask;
    cf = Number(w >> B);
    of = op === SH_RCL ? (msb(r) ^ cf) !== 0 : (msb(d) ^ Number(cin)) !== 0;
    materializeFlags(c);
    c.flags = (c.flags & ~(X86_EFLAGS_CF | X86_EFLAGS_OF)) | flagBits(cf, of);
  }
  writeUpdate(c, i, lin, size, Number(r & 0xffffffffn) | 0, Number(r >> 32n) | 0);
}

/** SHLD/SHRD E,G,Ib / E,G,CL (sub 0 = SHLD, 1 = SHRD). */
export function shiftDouble(c: CpuCore, i: Insn): void {
  const size = i.osize;
  const op = i.entry.opcode;
  const raw = op === 0xa5 || op === 0xad ? c.lo[1]! : i.imm;
  const n = raw & (size === 8 ? 0x3f : 0x1f);
  const lin = addressForUpdate(c, i, size);
  const dLo = readUpdate(c, i, lin, size);
  const dHi = c.vhi;
  if (n === 0) {
    writeUpdate(c, i, lin, size, dLo, dHi);
    return;
  }
  const sLo = readReg(c, i.reg, size);
  const sHi = c.vhi;
  const bits = size * 8;
  const B = BigInt(bits);
  const mask = MASKS[size]!;
  const big = (l: number, h: number): bigint =>
    size === 8 ? (BigInt(h >>> 0) << 32n) | BigInt(l >>> 0) : BigInt(l >>> 0) & mask;
  const d = big(dLo, dHi), s = big(sLo, sHi);
  const N = BigInt(n);
  let r: bigint, cf: number;
  if (i.sub === 0) {
    r = (((d << B) | s) << N >> B) & mask;
    cf = Number((((d << B) | s) >> (2n * B - N)) & 1n);
  } else {
    r = (((s << B) | d) >> N) & mask;
    cf = Number((((s << B) | d) >> (N - 1n)) & 1n);
  }
  const of = ((r >> (B - 1n)) & 1n) !== ((d >> (B - 1n)) & 1n);
  const rl = Number(r & 0xffffffffn) | 0, rh = Number(r >> 32n) | 0;
  if (size === 8) setFlagsResult64(c, rl, rh, flagBits(cf, of));
  else setFlagsResult(c, size, rl << (32 - bits), flagBits(cf, of));
  writeUpdate(c, i, lin, size, rl, rh);
}
