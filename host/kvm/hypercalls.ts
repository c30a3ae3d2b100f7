/**
 * __kvm_emulate_hypercall() (arch/x86/kvm/x86.h, over ____kvm_emulate_hypercall() in x86.c): the
 * hypercall itself, for VMCALL and VMMCALL — nr in RAX, a0..a3 in RBX, RCX, RDX, RSI, the result
 * for RAX; docs/heki.md §1.3 for KVM_HC_LOCK_CR_UPDATE. Its caller, kvm_emulate_hypercall()
 * (handle-hypercall.ts), reads the registers and completes the call.
 */
import {
  KVM_EINVAL,
  KVM_ENOSYS,
  KVM_EOPNOTSUPP,
  KVM_EPERM,
  KVM_FEATURE_PV_SCHED_YIELD,
  KVM_FEATURE_PV_SEND_IPI,
  KVM_FEATURE_PV_UNHALT,
  KVM_HC_CLOCK_PAIRING,
  KVM_HC_KICK_CPU,
  KVM_HC_LOCK_CR_UPDATE,
  KVM_HC_LOCK_MEM_PAGE_RANGES,
  KVM_HC_MAP_GPA_RANGE,
  KVM_HC_PROTECT_MEMORY,
  KVM_HC_SCHED_YIELD,
  KVM_HC_SEND_IPI,
  KVM_HC_VAPIC_POLL_IRQ,
} from '../../protocol/abi.js';
import type { HekiMemoryAbi } from '../../protocol/abi.js';
import type { HekiState } from './heki.js';
import { hekiLockMemPageRanges, hekiProtectMemory } from './heki-memory.js';
import type { MemoryProtection } from './memory-protection.js';

/** The registers a hypercall reads, as the guest left them. */
export interface HypercallRegs {
  readonly nr: bigint;
  readonly a0: bigint;
  readonly a1: bigint;
  readonly a2: bigint;
  readonly a3: bigint;
}

export interface HypercallEnv {
  readonly heki: HekiState;
  /**
   * The VM's memory protections and which Heki memory hypercall it answers (absent: none). Under
   * 'v1', nr 13 is KVM_HC_LOCK_MEM_PAGE_RANGES and KVM_HC_LOCK_CR_UPDATE is not offered (v1's
   * own CR hypercall, nr 14, is not modelled: -KVM_ENOSYS); under 'v2', nr 14 is KVM_HC_PROTECT_MEMORY.
   */
  readonly memory?: { readonly abi: HekiMemoryAbi; readonly protection: MemoryProtection };
  /** guest_pv_has() */
  pvHas(feature: number): boolean;
}

/** The value for RAX, or a Heki CONFIGURE exit (RAX is then written by its completion). */
export interface HypercallResult {
  /** The u64 to load into RAX (truncated to 32 bits for a 32-bit caller). */
  readonly rax: bigint;
  readonly hekiConfigure?: { readonly reason: number; readonly crPinned: bigint };
}

const U32 = 0xffff_ffffn;

/**
 * Runs hypercall `regs` for a caller at `cpl`. A caller at CPL > 0 gets -KVM_EPERM and no
 * fault; an unknown nr gets -KVM_ENOSYS. MODEL DECISIONS for the hypercalls other than 13,
 * none of which has anything to act on in pinbox: VAPIC_POLL_IRQ, KICK_CPU and SCHED_YIELD
 * return 0 (the last two only with their PV feature, as upstream); SEND_IPI returns 0 (no
 * vCPU takes the IPI: pinbox delivers no interrupts); CLOCK_PAIRING returns -KVM_EOPNOTSUPP
 * (the modelled host clock is not TSC-based); MAP_GPA_RANGE returns -KVM_ENOSYS
 * (KVM_CAP_EXIT_HYPERCALL is not offered).
 */
export function __kvmEmulateHypercall(regs: HypercallRegs, cpl: number, op64Bit: boolean, env: HypercallEnv): HypercallResult {
  let { nr, a0, a1, a2, a3 } = regs;
  if (!op64Bit) {
    nr &= U32;
    a0 &= U32;
    a1 &= U32;
    a2 &= U32;
    a3 &= U32;
  }
  let ret: bigint;
  if (cpl !== 0) {
    ret = -BigInt(KVM_EPERM);
  } else {
    ret = -BigInt(KVM_ENOSYS);
    const memory = env.memory;
    if (memory !== undefined && memory.abi === 'v1' && nr === BigInt(KVM_HC_LOCK_MEM_PAGE_RANGES)) {
      ret = hekiLockMemPageRanges(memory.protection, a0, a1, a2);
    } else if (memory !== undefined && memory.abi === 'v1' && nr === BigInt(KVM_HC_LOCK_CR_UPDATE)) {
      // v1 numbering: 13 is the memory lock above; v1's CR lock (14) is not modelled.
    } else if (memory !== undefined && memory.abi === 'v2' && nr === BigInt(KVM_HC_PROTECT_MEMORY)) {
      ret = hekiProtectMemory(memory.protection, a0);
    } else switch (nr) {
      case BigInt(KVM_HC_VAPIC_POLL_IRQ):
        ret = 0n;
        break;
      case BigInt(KVM_HC_KICK_CPU):
        if (env.pvHas(KVM_FEATURE_PV_UNHALT)) ret = 0n;
        break;
      case BigInt(KVM_HC_CLOCK_PAIRING):
        ret = -BigInt(KVM_EOPNOTSUPP);
        break;
      case BigInt(KVM_HC_SEND_IPI):
        if (env.pvHas(KVM_FEATURE_PV_SEND_IPI)) ret = 0n;
        break;
      case BigInt(KVM_HC_SCHED_YIELD):
        if (env.pvHas(KVM_FEATURE_PV_SCHED_YIELD)) ret = 0n;
        break;
      case BigInt(KVM_HC_MAP_GPA_RANGE):
        break;
      case BigInt(KVM_HC_LOCK_CR_UPDATE): {
        // a0 is checked before heki_lock_cr() and is not truncated in 64-bit mode.
        if (a0 > U32) {
          ret = -BigInt(KVM_EINVAL);
          break;
        }
        const r = env.heki.lockCr(a0, a1, a2);
        if (r.configureExit !== 0) return { rax: 0n, hekiConfigure: { reason: r.configureExit, crPinned: r.crPinned } };
        ret = r.ret;
        break;
      }
    }
  }
  return { rax: op64Bit ? BigInt.asUintN(64, ret) : BigInt.asUintN(32, ret) };
}
