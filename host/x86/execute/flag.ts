/**
 * Flag instructions: CLC, STC, CMC, CLD, STD, CLI, STI, LAHF, SAHF (SDM vol. 2 per
 * instruction). CLI/STI need CPL ≤ IOPL (else #GP(0)); virtual-interrupt extensions (CR4.PVI)
 * do not apply in 64-bit mode. pinbox models no external interrupts, so STI's one-instruction
 * interrupt shadow has nothing to hold off.
 */
import {
  X86_EFLAGS_AF, X86_EFLAGS_CF, X86_EFLAGS_DF, X86_EFLAGS_IF, X86_EFLAGS_IOPL, X86_EFLAGS_PF, X86_EFLAGS_SF,
  X86_EFLAGS_ZF,
} from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { raiseGP } from '../fault.js';
import { materializeFlags, readFlags } from '../flags.js';
import type { Insn } from '../decode/insn.js';

export const FL_CLC = 0;
export const FL_STC = 1;
export const FL_CMC = 2;
export const FL_CLD = 3;
export const FL_STD = 4;
export const FL_CLI = 5;
export const FL_STI = 6;

/** CLC/STC/CMC/CLD/STD/CLI/STI (operation in i.sub). */
export function flagOp(c: CpuCore, i: Insn): void {
  const op = i.sub;
  if ((op === FL_CLI || op === FL_STI) && c.cpl > ((c.flags & X86_EFLAGS_IOPL) >> 12)) raiseGP(c, 0);
  materializeFlags(c);
  switch (op) {
    case FL_CLC: c.flags &= ~X86_EFLAGS_CF; break;
    case FL_STC: c.flags |= X86_EFLAGS_CF; break;
    case FL_CMC: c.flags ^= X86_EFLAGS_CF; break;
    case FL_CLD: c.flags &= ~X86_EFLAGS_DF; break;
    case FL_STD: c.flags |= X86_EFLAGS_DF; break;
    case FL_CLI: c.flags &= ~X86_EFLAGS_IF; break;
    default: c.flags |= X86_EFLAGS_IF; break;
  }
}

const SAHF_MASK = X86_EFLAGS_SF | X86_EFLAGS_ZF | X86_EFLAGS_AF | X86_EFLAGS_PF | X86_EFLAGS_CF;

/** LAHF (9F): AH ← SF:ZF:0:AF:0:PF:1:CF. */
export function lahf(c: CpuCore, _i: Insn): void {
  const f = (readFlags(c) & SAHF_MASK) | 2;
  c.lo[0] = (c.lo[0]! & ~0xff00) | (f << 8);
}

/** SAHF (9E): SF, ZF, AF, PF, CF ← AH. */
export function sahf(c: CpuCore, _i: Insn): void {
  materializeFlags(c);
  const ah = (c.lo[0]! >>> 8) & 0xff;
  c.flags = (c.flags & ~SAHF_MASK) | (ah & SAHF_MASK);
}
