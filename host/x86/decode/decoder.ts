/**
 * The x86-64 decoder (64-bit mode only), driven by the instruction table: legacy prefixes
 * (66, 67, F2, F3, LOCK, segment overrides), REX, one- and two-byte opcode maps, ModRM, SIB,
 * RIP-relative addressing, every displacement and immediate size, and the 15-byte limit
 * (SDM vol. 2 ch. 2).
 *
 * An encoding the table does not have — invalid, or valid but outside the supported set —
 * decodes to DECODE_INVALID, which the core turns into #UD. An instruction longer than 15 bytes
 * is DECODE_TOO_LONG (#GP(0), SDM vol. 2 §2.3.11). DECODE_NEED_MORE asks the caller for bytes
 * beyond `end` (an instruction that crosses a page).
 */
import { SEG_FS, SEG_GS } from '../core.js';
import { BYTE_HIGH } from '../registers.js';
import {
  AMODE_ABS, AMODE_BASE_DISP, AMODE_BASE_INDEX, AMODE_GENERAL, AMODE_RIP, BASE_RIP, Insn, NONE,
} from './insn.js';
import { OPCODE_TABLE } from './table.js';
import { PREFIX_NONE, type OpcodeEntry } from './table-types.js';

export const DECODE_INVALID = 1;
export const DECODE_TOO_LONG = 2;
export const DECODE_NEED_MORE = 3;
export type DecodeStatus = typeof DECODE_INVALID | typeof DECODE_TOO_LONG | typeof DECODE_NEED_MORE;

export const MAX_INSN_LENGTH = 15;

/** Candidates per (map, opcode), in table order (more specific entries first). */
const CANDIDATES: (OpcodeEntry[] | undefined)[] = new Array(512);
for (const e of OPCODE_TABLE) {
  const k = e.map * 256 + e.opcode;
  (CANDIDATES[k] ??= []).push(e);
}

/** Control registers MOV CR accepts in 64-bit mode; others are #UD (SDM vol. 2 MOV CR). */
const VALID_CR = new Set([0, 2, 3, 4, 8]);

// The cursor: decode() is not re-entrant, so module state is enough and allocates nothing.
let buf: Uint8Array = new Uint8Array(0);
let pos = 0;
let first = 0;
let lim = 0;
let limIsLength = false;

function next(): number {
  if (pos >= lim) throw limIsLength ? DECODE_TOO_LONG : DECODE_NEED_MORE;
  return buf[pos++]!;
}

function nextI8(): number {
  return (next() << 24) >> 24;
}

function nextU16(): number {
  const a = next();
  return a | (next() << 8);
}

function nextI32(): number {
  const a = next(), b = next(), c = next();
  return a | (b << 8) | (c << 16) | (next() << 24);
}

function sizeOf(e: OpcodeEntry, rexW: boolean, o16: boolean): number {
  switch (e.size) {
    case 'b': return 1;
    case 'w': return 2;
    case 'd': return 4;
    case 'q': return 8;
    case 'f64': return 8;
    case 'd64': return rexW ? 8 : o16 ? 2 : 8;
    case 'vw': return rexW ? 4 : o16 ? 2 : 4;
    default: return rexW ? 8 : o16 ? 2 : 4;
  }
}

/** Whether an operand form names an 8-bit register (for the AH..BH rule). */
function isByteForm(f: string | undefined): boolean {
  return f === 'Eb' || f === 'Gb' || f === 'Zb';
}

/**
 * Decodes one instruction from bytes[start, end). Returns the record or a DecodeStatus.
 */
export function decode(bytes: Uint8Array, start: number, end: number): Insn | DecodeStatus {
  buf = bytes;
  pos = start;
  first = start;
  limIsLength = end - start >= MAX_INSN_LENGTH;
  lim = limIsLength ? start + MAX_INSN_LENGTH : end;
  try {
    return decodeOne();
  } catch (e) {
    if (e === DECODE_TOO_LONG || e === DECODE_NEED_MORE || e === DECODE_INVALID) return e;
    throw e;
  }
}

function decodeOne(): Insn | DecodeStatus {
  let o16 = false, a32 = false, lock = false, rep = 0, seg = NONE, rex = 0;
  let b: number;
  for (;;) {
    b = next();
    if (b === 0x66) o16 = true;
    else if (b === 0x67) a32 = true;
    else if (b === 0xf2 || b === 0xf3) rep = b;
    else if (b === 0xf0) lock = true;
    else if (b === 0x2e || b === 0x36 || b === 0x3e || b === 0x26) { /* ignored in 64-bit mode, even after FS/GS */ }
    else if (b === 0x64) seg = SEG_FS;
    else if (b === 0x65) seg = SEG_GS;
    else if ((b & 0xf0) === 0x40) {
      rex = b;
      continue;
    } else break;
    rex = 0; // a REX prefix only counts immediately before the opcode
  }
  let map: 0 | 1 = 0;
  if (b === 0x0f) {
    map = 1;
    b = next();
  }
  const cands = CANDIDATES[map * 256 + b];
  if (cands === undefined) return DECODE_INVALID;

  const rexW = (rex & 8) !== 0, rexR = (rex & 4) << 1, rexX = (rex & 2) << 2, rexB = (rex & 1) << 3;
  let modrm = -1;
  if (cands[0]!.hasModrm) modrm = next();
  let entry: OpcodeEntry | undefined;
  for (const e of cands) {
    if (e.prefix === PREFIX_NONE ? rep !== 0 || o16 : e.prefix !== 0 && e.prefix !== rep) continue;
    if (e.rexB >= 0 && e.rexB !== (rex & 1)) continue;
    if (modrm >= 0) {
      if (e.modrm >= 0 && e.modrm !== modrm) continue;
      if (e.ext >= 0 && e.ext !== ((modrm >> 3) & 7)) continue;
      if (e.mod === 'reg' && modrm < 0xc0) continue;
      if (e.mod === 'mem' && modrm >= 0xc0) continue;
    }
    entry = e;
    break;
  }
  if (entry === undefined || entry.unsupported) return DECODE_INVALID;

  const i = new Insn(entry.exec, entry);
  i.osize = sizeOf(entry, rexW, o16);
  i.asize = a32 ? 4 : 8;
  i.rep = rep;
  i.lock = lock;
  i.rexW = rexW;
  i.sub = entry.sub;
  const ops = entry.operands;

  if (modrm >= 0) {
    const mod = modrm >> 6, regf = (modrm >> 3) & 7, rmf = modrm & 7;
    const gForm = ops.find((f) => f[0] === 'G' || f === 'C' || f === 'D' || f === 'Sw');
    const eForm = ops.find((f) => f[0] === 'E' || f === 'M' || f === 'R');
    if (gForm === 'C') {
      const cr = regf | rexR;
      if (!VALID_CR.has(cr)) return DECODE_INVALID;
      i.reg = cr;
    } else if (gForm === 'D') {
      // DR8-DR15 do not exist: REX.R makes MOV DR #UD (SDM vol. 2 MOV—Move to/from Debug Registers).
      if (rexR !== 0) return DECODE_INVALID;
      i.reg = regf;
    } else if (gForm === 'Sw') {
      // Six segment registers; REX.R is ignored (SDM vol. 2 MOV, "Sreg").
      if (regf > 5) return DECODE_INVALID;
      i.reg = regf;
    } else {
      i.reg = isByteForm(gForm) && rex === 0 && regf >= 4 ? BYTE_HIGH + regf - 4 : regf | rexR;
    }
    if (eForm === 'R' || mod === 3) {
      i.rm = isByteForm(eForm) && rex === 0 && rmf >= 4 ? BYTE_HIGH + rmf - 4 : rmf | rexB;
    } else {
      decodeMemory(i, mod, rmf, rexX, rexB, seg);
    }
  }

  if (modrm < 0 && (ops.includes('AL') || ops.includes('rAX'))) i.rm = 0; // accumulator forms act as E = rAX
  for (const f of ops) {
    switch (f) {
      case 'Zb':
        i.reg = rex === 0 && (b & 7) >= 4 ? BYTE_HIGH + (b & 7) - 4 : (b & 7) | rexB;
        break;
      case 'Zv':
      case 'Zq':
        i.reg = (b & 7) | rexB;
        break;
      case 'Ib':
        if (i.imm !== 0 || ops.indexOf('Iw') >= 0) i.imm2 = next(); // ENTER Iw,Ib
        else i.imm = next();
        break;
      case 'Ibs':
      case 'Jb':
        i.imm = nextI8();
        i.immHi = i.imm >> 31;
        break;
      case 'Iw':
        i.imm = nextU16();
        break;
      case 'Iz':
        i.imm = i.osize === 2 ? (nextU16() << 16) >> 16 : nextI32();
        i.immHi = i.imm >> 31;
        break;
      case 'Jz':
        i.imm = nextI32();
        i.immHi = i.imm >> 31;
        break;
      case 'Iv':
        if (i.osize === 2) i.imm = nextU16();
        else {
          i.imm = nextI32();
          if (i.osize === 8) i.immHi = nextI32();
        }
        break;
      case 'Mx':
        i.seg = seg;
        break;
      case 'Ob':
      case 'Ov':
        i.base = NONE;
        i.index = NONE;
        i.seg = seg;
        i.amode = AMODE_GENERAL;
        i.disp = nextI32();
        i.dispHi = a32 ? 0 : nextI32();
        if (a32) i.disp = i.disp | 0;
        break;
      default:
        break;
    }
  }

  if (lock && (!entry.lockable || i.rm !== NONE || modrm < 0)) return DECODE_INVALID;
  i.len = pos - first;
  i.selfRetiring = entry.family === 'string' && rep !== 0;
  return i;
}

function decodeMemory(i: Insn, mod: number, rmf: number, rexX: number, rexB: number, seg: number): void {
  let base = NONE, index = NONE, scale = 0, disp = 0;
  if (rmf === 4) {
    const sib = next();
    scale = sib >> 6;
    const x = ((sib >> 3) & 7) | rexX;
    if (x !== 4) index = x;
    if ((sib & 7) === 5 && mod === 0) disp = nextI32();
    else base = (sib & 7) | rexB;
  } else if (rmf === 5 && mod === 0) {
    base = BASE_RIP;
    disp = nextI32();
  } else {
    base = rmf | rexB;
  }
  if (mod === 1) disp = nextI8();
  else if (mod === 2) disp = nextI32();
  i.base = base;
  i.index = index;
  i.scale = scale;
  i.disp = disp;
  i.dispHi = disp >> 31;
  i.seg = seg;
  i.stackAddress = seg === NONE && (base === 4 || base === 5);
  if (seg !== NONE || i.asize === 4) i.amode = AMODE_GENERAL;
  else if (base === BASE_RIP) i.amode = AMODE_RIP;
  else if (index !== NONE) i.amode = AMODE_BASE_INDEX;
  else if (base === NONE) i.amode = AMODE_ABS;
  else i.amode = AMODE_BASE_DISP;
}
