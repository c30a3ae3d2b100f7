/**
 * The run-time mode check: this core runs 64-bit long mode only (CR0.PE|PG, CR4.PAE,
 * EFER.LME|LMA, CS.L=1 with CS.D=0). Anything else stops run() with invalid_guest_state naming
 * the field, in the role of VMX's "VM-entry failure due to invalid guest state" (SDM vol. 3C
 * §26.3.1), whose checks on canonical bases and RFLAGS are mirrored too.
 */
import {
  EFER_LMA, EFER_LME, X86_CR0_PE, X86_CR0_PG, X86_CR4_PAE, X86_EFLAGS_FIXED, X86_EFLAGS_VM,
} from '../../protocol/abi.js';
import { RFLAGS_DEFINED } from './arch.js';
import { SEG_CS, SEG_FS, SEG_GS, type CpuCore } from './core.js';
import { isCanonicalBase } from './descriptors.js';

const CANONICAL_LIMIT = 140737488355328;

/** The first problem with the state, or null when it can run. */
export function checkGuestState(c: CpuCore, rflagsHigh: bigint): string | null {
  if ((c.cr0 & X86_CR0_PE) === 0n) return 'CR0.PE is clear: only 64-bit long mode is supported';
  if ((c.cr0 & X86_CR0_PG) === 0n) return 'CR0.PG is clear: only 64-bit long mode with paging is supported';
  if ((c.cr4 & X86_CR4_PAE) === 0n) return 'CR4.PAE is clear: long mode needs PAE paging';
  if ((c.efer & EFER_LME) === 0n) return 'EFER.LME is clear: only 64-bit long mode is supported';
  if ((c.efer & EFER_LMA) === 0n) return 'EFER.LMA is clear: only 64-bit long mode is supported';
  const cs = c.seg[SEG_CS]!;
  if (!cs.l) return 'CS.L is clear: compatibility mode is not supported, only 64-bit code';
  if (cs.db) return 'CS.L and CS.D are both set (reserved combination)';
  if (!Number.isFinite(c.rip) || c.rip >= CANONICAL_LIMIT || c.rip < -CANONICAL_LIMIT) return 'RIP is not canonical';
  if (rflagsHigh !== 0n || (c.flags & ~(RFLAGS_DEFINED | X86_EFLAGS_FIXED)) !== 0) return 'RFLAGS has reserved bits set';
  if ((c.flags & X86_EFLAGS_VM) !== 0) return 'RFLAGS.VM is set: virtual-8086 mode is not supported';
  if (!isCanonicalBase(c.seg[SEG_FS]!.base)) return 'FS.base is not canonical';
  if (!isCanonicalBase(c.seg[SEG_GS]!.base)) return 'GS.base is not canonical';
  if (!isCanonicalBase(c.gdtBase)) return 'GDTR.base is not canonical';
  if (!isCanonicalBase(c.idtBase)) return 'IDTR.base is not canonical';
  if (!isCanonicalBase(c.tr.base)) return 'TR.base is not canonical';
  return null;
}
