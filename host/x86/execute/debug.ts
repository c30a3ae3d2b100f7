/**
 * MOV to and from the debug registers (0F 21, 0F 23; SDM vol. 2 "MOV—Move to/from Debug
 * Registers", vol. 3B §18.2). Checks in the SDM's order: CPL > 0 is #GP(0); DR4/DR5 are #UD
 * with CR4.DE and aliases of DR6/DR7 without it; DR7.GD makes the access a #DB fault with DR6.BD
 * (and clears GD, so that the handler may use the registers); writing a 1 into bits 63:32 of
 * DR6 or DR7 is #GP(0).
 *
 * MODEL DECISION: the accesses run in the core, as they do on a VMX guest once KVM stops
 * intercepting them (KVM_DEBUGREG_WONT_EXIT); there is no MOV DR intercept. The guest reads and
 * writes its own view even while the hypervisor has its breakpoints in force (hostBreakpoints),
 * as KVM emulates the guest's accesses against vcpu->arch.db then.
 */
import { DB_VECTOR, DR6_ACTIVE_LOW, DR6_BD, DR6_BS, DR6_BT, DR6_TRAP_BITS, DR7_FIXED_1, DR7_GD, X86_CR4_DE } from '../../../protocol/abi.js';
import type { CpuCore } from '../core.js';
import { armBreakpoints } from '../debug.js';
import { raise, raiseGP, raiseUD } from '../fault.js';
import type { Insn } from '../decode/insn.js';
import { toBigInt } from '../registers.js';

/** DR7 bits 11, 12, 14 and 15 read as 0 (reserved). */
const DR7_RESERVED_ZERO = 0xd800;

/** The register a MOV DR names after the checks every access makes (4/5 → 6/7). */
function accessed(c: CpuCore, i: Insn): number {
  if (c.cpl !== 0) raiseGP(c, 0);
  let n = i.reg;
  if (n === 4 || n === 5) {
    if ((c.cr4 & X86_CR4_DE) !== 0n) raiseUD(c);
    n += 2;
  }
  if ((c.dr7 & DR7_GD) !== 0) {
    // The processor clears GD as it raises the #DB, so that the handler can use the registers.
    c.dr7 &= ~DR7_GD;
    c.debugTrapBits = DR6_BD;
    raise(c, DB_VECTOR);
  }
  return n;
}

/** MOV r64, DRn (0F 21). */
export function movFromDr(c: CpuCore, i: Insn): void {
  const n = accessed(c, i);
  let v: bigint;
  if (n < 4) v = c.dr[n]!;
  else if (n === 6) v = BigInt(c.dr6 >>> 0);
  else v = BigInt((c.dr7 | DR7_FIXED_1) >>> 0);
  const u = BigInt.asUintN(64, v);
  c.lo[i.rm] = Number(u & 0xffffffffn) | 0;
  c.hi[i.rm] = Number(u >> 32n) | 0;
}

/** MOV DRn, r64 (0F 23). */
export function movToDr(c: CpuCore, i: Insn): void {
  const n = accessed(c, i);
  const lo = c.lo[i.rm]!, hi = c.hi[i.rm]!;
  if (n >= 6 && hi !== 0) raiseGP(c, 0);
  if (n < 4) c.dr[n] = toBigInt(lo, hi);
  else if (n === 6) c.dr6 = ((lo & (DR6_TRAP_BITS | DR6_BD | DR6_BS | DR6_BT)) | DR6_ACTIVE_LOW) >>> 0;
  else c.dr7 = ((lo & ~DR7_RESERVED_ZERO) | DR7_FIXED_1) >>> 0;
  armBreakpoints(c);
}
