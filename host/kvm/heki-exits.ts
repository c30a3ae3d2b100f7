/**
 * Heki's user-space exits and their completions (Heki RFC v2 03/19, v3 3/5; docs/heki.md §3):
 * heki_exit_cr() fills kvm_run for a KVM_EXIT_HEKI_CONFIGURE (a pin was taken) or a
 * KVM_EXIT_HEKI_DENIAL (a CR write was refused) when user space asked for that register's
 * exits, and stores the completion the next KVM_RUN runs first.
 */
import { RAX } from '../x86/state.js';
import type { VcpuArch } from './vcpu-arch.js';

export type HekiExitReason = 'KVM_EXIT_HEKI_CONFIGURE' | 'KVM_EXIT_HEKI_DENIAL';

/**
 * heki_exit_cr(): whether the VM's KVM_CAP_HEKI_CONFIGURE / _DENIAL mask has `hekiReason`
 * (KVM_HEKI_EXIT_REASON_CR0 or _CR4); if it has, kvm_run carries the exit — `value` is the pin
 * (cr_pinned) or the refused value (cr_value) — and the completion is armed.
 */
export function hekiExitCr(v: VcpuArch, exitReason: HekiExitReason, hekiReason: number, value: bigint): boolean {
  const heki = v.vm.heki;
  const run = v.run;
  if (exitReason === 'KVM_EXIT_HEKI_CONFIGURE') {
    if ((heki.configureExitReason & hekiReason) === 0) return false;
    run.heki_configure.reason = hekiReason;
    run.heki_configure.cr_pinned = value;
    return v.exitToUserSpace(exitReason, completeHekiConfigureExit);
  }
  if ((heki.denialExitReason & hekiReason) === 0) return false;
  run.heki_denial.reason = hekiReason;
  run.heki_denial.cr_value = value;
  return v.exitToUserSpace(exitReason, completeHekiDenialExit);
}

/** complete_heki_configure_exit(): RAX = 0 whatever user space did, and the call retires. */
export function completeHekiConfigureExit(v: VcpuArch): boolean {
  v.cpu.writeGpr(RAX, 0n);
  v.stat.hypercalls++;
  v.skipEmulatedInstruction();
  return false;
}

/** complete_heki_denial_exit(): the fault user space was told about is always delivered. */
export function completeHekiDenialExit(v: VcpuArch): boolean {
  v.injectGp();
  return false;
}
