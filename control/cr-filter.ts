/**
 * The control side of pinbox's CR filter (docs/cr-filter.md), over a greeted control session:
 * install a VM's filter, and say how the VMM answers its exits. Small on purpose, so that a
 * typed control client (pinbox/control) can take these as methods.
 *
 *   await setCrFilter(session, 'harden', { cr0: X86_CR0_WP, cr4: X86_CR4_SMEP | X86_CR4_SMAP });
 *   await setCrExitReply(session, 'harden', { action: 'deny' });
 */
import type { ClientSession, PinboxAnswer } from '../protocol/index.js';

export interface CrFilterMasks {
  /** CR0 bits whose change by a guest write exits first (default none). */
  readonly cr0?: bigint;
  /** CR4 bits, likewise. */
  readonly cr4?: bigint;
}

/** PINBOX_SET_CR_FILTER on VM `vm`: both masks 0 (or none given) clears it. KVM refusals reject with kvm_error. */
export async function setCrFilter(session: ClientSession, vm: string, masks: CrFilterMasks): Promise<void> {
  await session.request('setCrFilter', { vm, cr0Mask: masks.cr0 ?? 0n, cr4Mask: masks.cr4 ?? 0n });
}

/** How the VMM answers VM `vm`'s CR-filter exits from now on; null: the policy's crFilter.answer again. */
export async function setCrExitReply(session: ClientSession, vm: string, reply: PinboxAnswer | null): Promise<void> {
  await session.request('setCrExitReply', { vm, reply });
}
