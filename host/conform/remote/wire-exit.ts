/**
 * An exit as a guest result carries it over the protocol (PROTOCOL.md §5: names) as the runner
 * compares it (target.ts TargetExit: the kernel's numbers, per the VM's profile), with
 * `msr.data` as KVM filled kvm_run — `exitData` where the server says the answer replaced it.
 */
import {
  KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC, KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID, KVM_MEMORY_EXIT_FLAG_PINBOX_READ, KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE,
  type HekiProfileName,
} from '../../../protocol/abi.js';
import type { Exit } from '../../../protocol/messages/index.js';
import { exitReasonNames, HEKI_EXIT_REASONS, MSR_EXIT_REASONS } from '../abi-names.js';
import type { TargetExit } from '../target.js';

const PAGE_SIZE = 0x1000n;

function numberOf(table: Readonly<Record<string, number>>, name: string, what: string): number {
  const n = Object.hasOwn(table, name) ? table[name] : undefined;
  if (n === undefined) throw new Error(`the server reported ${what} ${JSON.stringify(name)}, which has no number the runner knows`);
  return n;
}

/**
 * kvm_run.memory_fault from the protocol's names: the flags KVM sets are the access kind's one
 * bit and GVA_VALID with a GVA (handle_ept_violation(), docs/memory-protection.md §3.3); the size
 * is the page the gpa names — the protocol carries the page and not the size, which KVM always
 * reports as one page.
 */
function memoryFaultOfWire(m: NonNullable<Exit['memory']>): NonNullable<TargetExit['memory']> {
  const access = { read: KVM_MEMORY_EXIT_FLAG_PINBOX_READ, write: KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE, fetch: KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC }[m.access];
  return { flags: access | (m.gva !== undefined ? KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID : 0n), gpa: m.gpa, size: PAGE_SIZE, gva: m.gva ?? 0n };
}

export function targetExitOfWire(exit: Exit, profile: HekiProfileName): TargetExit {
  const { msr, heki, io, cr, intercept: i, memory: m } = exit;
  return {
    reason: numberOf(exitReasonNames(profile), exit.reason, 'the exit reason'),
    ...(msr !== undefined && {
      msr: { reason: numberOf(MSR_EXIT_REASONS, msr.reason, 'the MSR exit reason'), index: msr.index, data: msr.exitData ?? msr.data },
    }),
    ...(heki !== undefined && { heki: { reason: numberOf(HEKI_EXIT_REASONS, heki.reason, 'the Heki exit reason'), value: heki.value } }),
    ...(io !== undefined && { io: { port: io.port, size: io.size, direction: io.direction, value: io.value } }),
    ...(cr !== undefined && { cr: { cr: cr.cr, access: cr.access, old: cr.old, new: cr.new } }),
    ...(i !== undefined && {
      intercept: { name: i.name, msr: i.msr ?? 0, old: i.old, new: i.new, oldLimit: i.oldLimit ?? 0, newLimit: i.newLimit ?? 0 },
    }),
    ...(m !== undefined && { memory: memoryFaultOfWire(m) }),
  };
}
