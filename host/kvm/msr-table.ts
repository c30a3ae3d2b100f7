/**
 * The MSR table: which MSRs the modelled KVM emulates, dispatched like
 * kvm_{get,set}_msr_common(), then the ignore_msrs / advertised-MSR rules of
 * kvm_do_msr_access() and the filter step of kvm_emulate_msr_{read,write}()
 * (arch/x86/kvm/msrs.c). Per-family rules live in msrs/.
 *
 * MODEL DECISION: an MSR that is not in this table is unknown (KVM_MSR_RET_UNSUPPORTED,
 * the UNKNOWN class), including MSRs real KVM emulates that a hardening test has no use
 * for: MTRRs, MCE banks, the PMU, Hyper-V and Xen MSRs, VMX capability MSRs, FEAT_CTL,
 * UCODE_REV, TSC_ADJUST, ARCH_CAPABILITIES, PRED_CMD, CET and the rest.
 */
import {
  KVM_MSR_FILTER_READ,
  KVM_MSR_FILTER_WRITE,
  X2APIC_MSR_FIRST,
  X2APIC_MSR_LAST,
} from '../../protocol/abi.js';
import { kvmMsrAllowed, type MsrAccessType, type MsrFilter } from './msr-filter.js';
import { ANDERSEN_MSRS } from './msrs/andersen-msrs.js';
import { APIC_MSRS } from './msrs/apic-msrs.js';
import { EFER_MSR } from './msrs/efer.js';
import { KVM_PV_MSRS } from './msrs/kvm-pv-msrs.js';
import { KVM_MSR_RET_FILTERED, KVM_MSR_RET_UNSUPPORTED, type MsrAccess, type MsrHandler, type MsrVcpu } from './msrs/msr-vcpu.js';
import { PLATFORM_MSRS } from './msrs/platform-msrs.js';
import { SYSCALL_MSRS } from './msrs/syscall-msrs.js';

const TABLE: ReadonlyArray<readonly [number, MsrHandler]> = [
  ...SYSCALL_MSRS, EFER_MSR, ...PLATFORM_MSRS, ...APIC_MSRS, ...KVM_PV_MSRS, ...ANDERSEN_MSRS,
];

/**
 * The handlers by index as a signed 32-bit key (`index | 0`): MSRs such as 0xc0000080 are
 * above 2^31, and as plain numbers they would be heap numbers that the Map hashes more slowly
 * than small integers on every RDMSR/WRMSR.
 */
const HANDLERS: ReadonlyMap<number, MsrHandler> = new Map(TABLE.map(([index, handler]) => [index | 0, handler]));

function handlerFor(index: number): MsrHandler | undefined {
  return HANDLERS.get(index | 0);
}

/** The MSR indices the table emulates, x2APIC range excluded (for documentation and tests). */
export const EMULATED_MSRS: readonly number[] = TABLE.map(([index]) => index).sort((a, b) => a - b);

function isX2apicMsr(index: number): boolean {
  return index >= X2APIC_MSR_FIRST && index <= X2APIC_MSR_LAST;
}

/** kvm_get_msr_common() and the vendor get_msr for one index. */
function getMsr(v: MsrVcpu, a: MsrAccess): number {
  if (isX2apicMsr(a.index)) {
    const value = v.lapic.x2apicRead(a.index);
    if (value === undefined) return 1;
    a.data = value;
    return 0;
  }
  const handler = handlerFor(a.index);
  return handler === undefined ? KVM_MSR_RET_UNSUPPORTED : handler.get(v, a);
}

/** kvm_set_msr_common() and the vendor set_msr for one index. */
function setMsr(v: MsrVcpu, a: MsrAccess): number {
  if (isX2apicMsr(a.index)) return v.lapic.x2apicWrite(a.index, a.data);
  const handler = handlerFor(a.index);
  return handler === undefined ? KVM_MSR_RET_UNSUPPORTED : handler.set(v, a);
}

/** kvm_is_advertised_msr() */
export function kvmIsAdvertisedMsr(index: number): boolean {
  return handlerFor(index)?.advertised ?? false;
}

/** Called for each access that ignore_msrs turned into a success (kvm_pr_unimpl). */
export type IgnoredMsrReporter = (write: boolean, index: number, data: bigint) => void;

/**
 * kvm_do_msr_access(): a failed read yields 0; UNSUPPORTED becomes success for a host
 * access that reads, or writes 0 to, an advertised MSR, and for any access when
 * ignore_msrs is set (a read then returns 0, a write is dropped). ignore_msrs never touches
 * INVAL (1) or FILTERED, which the filter step returns before this runs.
 */
export function kvmDoMsrAccess(v: MsrVcpu, a: MsrAccess, write: boolean, reportIgnored?: IgnoredMsrReporter): number {
  const ret = write ? setMsr(v, a) : getMsr(v, a);
  if (ret !== 0 && !write) a.data = 0n;
  if (ret !== KVM_MSR_RET_UNSUPPORTED) return ret;
  if (a.hostInitiated && a.data === 0n && kvmIsAdvertisedMsr(a.index)) return 0;
  if (!v.vm.ignoreMsrs) return ret;
  reportIgnored?.(write, a.index, a.data);
  return 0;
}

/**
 * kvm_emulate_msr_read/write(): a guest RDMSR/WRMSR, filter first, then the table with
 * host_initiated false. `a.index` (and `a.data` for a write) must be set by the caller.
 */
export function kvmEmulateMsrAccess(
  v: MsrVcpu,
  filter: MsrFilter | null,
  a: MsrAccess,
  write: boolean,
  reportIgnored?: IgnoredMsrReporter,
): number {
  a.hostInitiated = false;
  const type = (write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ) as MsrAccessType;
  if (!kvmMsrAllowed(filter, a.index, type)) return KVM_MSR_RET_FILTERED;
  return kvmDoMsrAccess(v, a, write, reportIgnored);
}

/**
 * __msr_io() for KVM_GET_MSRS / KVM_SET_MSRS: host-initiated, never filtered, stopping at
 * the first entry that fails. Returns how many entries were processed.
 */
export function kvmMsrIo(
  v: MsrVcpu,
  a: MsrAccess,
  entries: ReadonlyArray<{ index: number; data: bigint }>,
  write: boolean,
  out?: { index: number; data: bigint }[],
): number {
  let i = 0;
  for (; i < entries.length; i++) {
    const e = entries[i]!;
    a.index = e.index;
    a.data = e.data;
    a.hostInitiated = true;
    if (kvmDoMsrAccess(v, a, write) !== 0) break;
    out?.push({ index: e.index, data: a.data });
  }
  return i;
}
