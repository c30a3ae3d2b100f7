/**
 * A user-space exit as the VMM sees it when KVM_RUN returns — kvm_run before the VMM answers —
 * and as operation results report it (the protocol's Exit: names, not numbers).
 */
import type { Exit } from '../../../protocol/messages/index.js';
import {
  HV_CR_INTERCEPT_BIT_NAMES, KVM_EXIT_IO_IN, KVM_HEKI_EXIT_REASON_CR0, KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC,
  KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID, KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE, KVM_MSR_EXIT_REASON_FILTER, KVM_MSR_EXIT_REASON_INVAL,
  KVM_MSR_EXIT_REASON_UNKNOWN, PINBOX_ANSWER_ALLOW, PINBOX_ANSWER_DENY, PINBOX_ANSWER_VALUE, PINBOX_CR_ACCESS_CLTS,
  PINBOX_CR_ACCESS_LMSW, type HvCrInterceptName,
} from '../../../protocol/abi.js';
import type { VcpuExit } from '../../kvm/api/exits.js';

/** kvm_run as KVM filled it, before user space answered. Numbers are the kernel's. */
export interface UserSpaceExit {
  /** The kernel's name: KVM_EXIT_X86_RDMSR, KVM_EXIT_HEKI_DENIAL… */
  readonly reason: VcpuExit['reason'];
  /** kvm_run.exit_reason (the Heki ones per the VM's ABI profile). */
  readonly exitReason: number;
  /** KVM_EXIT_X86_RDMSR/WRMSR: reason is the single KVM_MSR_EXIT_REASON_* bit; data 0 for a read. */
  readonly msr?: { readonly reason: number; readonly index: number; readonly data: bigint };
  /** KVM_EXIT_HEKI_CONFIGURE (value = cr_pinned) or KVM_EXIT_HEKI_DENIAL (value = cr_value); reason 1 = CR0, 2 = CR4. */
  readonly heki?: { readonly reason: number; readonly value: bigint };
  readonly io?: { readonly port: number; readonly size: 1 | 2 | 4; readonly direction: 'in' | 'out'; readonly value: number };
  /** KVM_EXIT_PINBOX_CR_FILTER: the register, how it was written, its value before and the value the write would load. */
  readonly cr?: CrFilterExit;
  /** KVM_EXIT_MEMORY_FAULT: the refused page, the access, the guest linear address when valid, the qualification (pinbox's). */
  readonly memory?: MemoryFaultExit;
  /** KVM_EXIT_PINBOX_REG_INTERCEPT: the intercept by its TLFS name, the MSR (MSR intercepts), the values (limits for GDTR/IDTR). */
  readonly intercept?: RegisterInterceptExit;
}

export type CrAccess = 'mov' | 'clts' | 'lmsw';

export type MemoryAccess = 'read' | 'write' | 'fetch';

export interface MemoryFaultExit {
  /** kvm_run.memory_fault.gpa: the page. */
  readonly gpa: bigint;
  readonly size: bigint;
  readonly flags: bigint;
  /** From flags: pinbox's access bits (an upstream kernel sets none: "read"). */
  readonly access: MemoryAccess;
  /** kvm_run.memory_fault.gva when KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID is set. */
  readonly gva?: bigint;
  readonly qualification: number;
}

export interface CrFilterExit {
  readonly cr: 0 | 4;
  readonly access: CrAccess;
  readonly old: bigint;
  readonly new: bigint;
}

export interface RegisterInterceptExit {
  readonly name: HvCrInterceptName;
  readonly msr: number;
  readonly old: bigint;
  readonly new: bigint;
  readonly oldLimit: number;
  readonly newLimit: number;
}

/**
 * How user space answers a CR-filter exit or a register intercept (pinbox's extensions): the
 * access goes on, is refused with #GP(0), or goes on with this value (a CR filter's substitute,
 * a monitor's emulation; `limit` too for GDTR/IDTR).
 */
export interface PinboxExitAnswer {
  readonly action: 'allow' | 'deny' | 'value';
  readonly value?: bigint;
  readonly limit?: number;
}

/** What the in-process caller of a guest action may answer: an MSR exit's answer, or a CR-filter/intercept one. */
export type ExitChoice = MsrExitChoice | PinboxExitAnswer;

export function isPinboxAnswer(choice: ExitChoice): choice is PinboxExitAnswer {
  return typeof choice === 'object' && choice !== null && 'action' in choice;
}

export const PINBOX_ANSWER_NUMBERS: Readonly<Record<PinboxExitAnswer['action'], number>> = {
  allow: PINBOX_ANSWER_ALLOW,
  deny: PINBOX_ANSWER_DENY,
  value: PINBOX_ANSWER_VALUE,
};

const CR_ACCESS_NAMES: Readonly<Record<number, CrAccess>> = {
  [PINBOX_CR_ACCESS_CLTS]: 'clts',
  [PINBOX_CR_ACCESS_LMSW]: 'lmsw',
};

/** How user space answers an MSR exit: kvm_run.msr.error (non-zero: #GP) and, for a read, data. */
export interface MsrExitAnswer {
  readonly error: number;
  readonly data: bigint;
}

/** An answer, or 'untouched': re-enter without writing kvm_run.msr (the guest reads what KVM left: 0, no error). */
export type MsrExitChoice = MsrExitAnswer | 'untouched';

export const MSR_REASON_NAMES: Readonly<Record<number, 'INVAL' | 'UNKNOWN' | 'FILTER'>> = {
  [KVM_MSR_EXIT_REASON_INVAL]: 'INVAL',
  [KVM_MSR_EXIT_REASON_UNKNOWN]: 'UNKNOWN',
  [KVM_MSR_EXIT_REASON_FILTER]: 'FILTER',
};

export function hekiRegister(reason: number): 'CR0' | 'CR4' {
  return reason === KVM_HEKI_EXIT_REASON_CR0 ? 'CR0' : 'CR4';
}

/** Reads kvm_run into a UserSpaceExit (a copy: kvm_run is rewritten by the next run()). */
export function userSpaceExit(exit: VcpuExit): UserSpaceExit {
  const base = { reason: exit.reason, exitReason: exit.exit_reason };
  switch (exit.reason) {
    case 'KVM_EXIT_X86_RDMSR':
    case 'KVM_EXIT_X86_WRMSR':
      return { ...base, msr: { reason: exit.msr.reason, index: exit.msr.index, data: exit.msr.data } };
    case 'KVM_EXIT_HEKI_CONFIGURE':
      return { ...base, heki: { reason: exit.heki_configure.reason, value: exit.heki_configure.cr_pinned } };
    case 'KVM_EXIT_HEKI_DENIAL':
      return { ...base, heki: { reason: exit.heki_denial.reason, value: exit.heki_denial.cr_value } };
    case 'KVM_EXIT_PINBOX_CR_FILTER': {
      const f = exit.cr_filter;
      return { ...base, cr: { cr: f.cr === 4 ? 4 : 0, access: CR_ACCESS_NAMES[f.access] ?? 'mov', old: f.old_value, new: f.new_value } };
    }
    case 'KVM_EXIT_PINBOX_REG_INTERCEPT': {
      const r = exit.reg_intercept;
      const intercept = {
        name: HV_CR_INTERCEPT_BIT_NAMES[r.intercept] ?? 'Cr0Write', msr: r.msr, old: r.old_value, new: r.new_value,
        oldLimit: r.old_limit, newLimit: r.new_limit,
      };
      return { ...base, intercept };
    }
    case 'KVM_EXIT_MEMORY_FAULT': {
      const m = exit.memory_fault;
      const access: MemoryAccess = (m.flags & KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE) !== 0n ? 'write' : (m.flags & KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC) !== 0n ? 'fetch' : 'read';
      const gva = (m.flags & KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID) !== 0n ? { gva: m.gva } : {};
      return { ...base, memory: { gpa: m.gpa, size: m.size, flags: m.flags, access, ...gva, qualification: m.qualification } };
    }
    case 'KVM_EXIT_IO':
      return {
        ...base,
        io: {
          port: exit.io.port,
          size: exit.io.size as 1 | 2 | 4,
          direction: exit.io.direction === KVM_EXIT_IO_IN ? 'in' : 'out',
          value: exit.io.data,
        },
      };
    default:
      return base;
  }
}

/** The protocol's Exit for a CR-filter exit or register intercept, with the answer user space gave. */
export function protocolPinboxExit(exit: UserSpaceExit, answer: PinboxExitAnswer): Exit {
  const answered = { action: answer.action, ...(answer.action === 'value' && { value: answer.value ?? 0n }) };
  if (exit.cr !== undefined) return { reason: exit.reason, cr: { ...exit.cr, ...answered } };
  const i = exit.intercept!;
  const tables = i.name === 'GdtrWrite' || i.name === 'IdtrWrite';
  return {
    reason: exit.reason,
    intercept: {
      name: i.name, old: i.old, new: i.new,
      ...(i.msr !== 0 && { msr: i.msr }),
      ...(tables && { oldLimit: i.oldLimit, newLimit: i.newLimit }),
      ...answered,
      ...(tables && answer.action === 'value' && { limit: answer.limit ?? 0 }),
    },
  };
}

/** The protocol's Exit for a user-space exit the VMM has answered. */
export function protocolExit(exit: UserSpaceExit, answered?: { error: number; data: bigint }, ioValue?: number): Exit {
  if (exit.msr !== undefined) {
    const m = exit.msr;
    const msr: NonNullable<Exit['msr']> = {
      reason: MSR_REASON_NAMES[m.reason] ?? 'FILTER', index: m.index, data: answered?.data ?? m.data, error: answered?.error ?? 0,
    };
    // What KVM put in kvm_run.msr.data (0 for a read) travels too when the answer replaced it
    // (PROTOCOL.md §5): a conformance check compares the exit as KVM presented it.
    if (msr.data !== m.data) msr.exitData = m.data;
    return { reason: exit.reason, msr };
  }
  if (exit.heki !== undefined) return { reason: exit.reason, heki: { reason: hekiRegister(exit.heki.reason), value: exit.heki.value } };
  if (exit.io !== undefined) return { reason: exit.reason, io: { ...exit.io, value: ioValue ?? exit.io.value } };
  if (exit.memory !== undefined) {
    const m = exit.memory;
    return { reason: exit.reason, memory: { gpa: m.gpa, access: m.access, qualification: m.qualification, ...(m.gva !== undefined && { gva: m.gva }) } };
  }
  return { reason: exit.reason };
}
