/**
 * IN and OUT with an immediate or DX port (SDM vol. 2 IN, OUT; vol. 1 §19.5 I/O protection).
 * At CPL > IOPL the TSS I/O permission bitmap decides: every bit for the bytes accessed must be
 * clear; a TSS too short to hold the map base or the bits raises #GP(0). Then the access stops
 * the core with an `io` intercept (the hypervisor performs it; for IN it writes AL/AX/EAX).
 * The string forms INS/OUTS are outside the supported set.
 */
import { X86_EFLAGS_IOPL } from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { raiseGP } from '../fault.js';
import type { Insn } from '../decode/insn.js';
import { readImplicit16 } from '../mmu/access.js';

/** Offset of the I/O map base field in the 64-bit TSS (SDM vol. 3A figure 8-11). */
const TSS_IOMAP_BASE = 0x66;

function checkIoPermission(c: CpuCore, port: number, size: number): void {
  const iopl = (c.flags & X86_EFLAGS_IOPL) >> 12;
  if (c.cpl <= iopl) return;
  const tr = c.tr;
  if (tr.unusable || tr.limit < TSS_IOMAP_BASE + 1) raiseGP(c, 0);
  const base = Number(BigInt.asIntN(64, tr.base));
  const mapBase = readImplicit16(c, base + TSS_IOMAP_BASE);
  const offset = mapBase + (port >>> 3);
  if (offset + 1 > tr.limit) raiseGP(c, 0);
  const bits = readImplicit16(c, base + offset) >>> (port & 7);
  if ((bits & ((1 << size) - 1)) !== 0) raiseGP(c, 0);
}

/** IN AL/eAX, Ib / DX (E4, E5, EC, ED) and OUT Ib / DX, AL/eAX (E6, E7, EE, EF). */
export function io(c: CpuCore, i: Insn): void {
  const op = i.entry.opcode;
  const size = i.osize as 1 | 2 | 4;
  const port = op >= 0xec ? c.lo[2]! & 0xffff : i.imm & 0xff;
  const isIn = (op & 2) === 0;
  checkIoPermission(c, port, size);
  const a = c.lo[0]!;
  c.stop = {
    kind: 'io', port, size, in: isIn,
    value: isIn ? 0 : size === 1 ? a & 0xff : size === 2 ? a & 0xffff : a >>> 0,
  };
  c.interceptedLength = i.len;
}
