/**
 * The two exits of pinbox's CR-hardening extensions (protocol/abi/pinbox-ext.ts): how a handler
 * fills kvm_run.cr_filter or kvm_run.reg_intercept, and how the completion reads user space's
 * answer — checked whole before anything changes, as every reply is (complete-userspace-io.ts).
 * KVM presets the answer to PINBOX_ANSWER_ALLOW, so user space that writes nothing lets the
 * access go on to KVM's own checks.
 */
import { PINBOX_ANSWER_ALLOW, PINBOX_ANSWER_DENY, PINBOX_ANSWER_VALUE } from '../../protocol/abi.js';
import { KvmError } from './api/errors.js';
import type { CompleteUserspaceIo } from './complete-userspace-io.js';
import { U64_MAX } from './u64.js';
import type { VcpuArch } from './vcpu-arch.js';

export type PinboxAnswer = typeof PINBOX_ANSWER_ALLOW | typeof PINBOX_ANSWER_DENY | typeof PINBOX_ANSWER_VALUE;

/** kvm_run.<member>.action and .value as C fields: a u32 of the three answers and a u64. */
function checkAnswer(member: string, action: unknown, value: unknown): void {
  if (action !== PINBOX_ANSWER_ALLOW && action !== PINBOX_ANSWER_DENY && action !== PINBOX_ANSWER_VALUE) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.${member}.action must be 0 (allow), 1 (deny) or 2 (value), got ${String(action)}`);
  }
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.${member}.value must be a u64 bigint, got ${String(value)}`);
  }
}

/** The CR filter exit: the register, how it was written, its value before and the value the write would load. */
export function crFilterExit(v: VcpuArch, cr: 0 | 4, access: number, oldValue: bigint, newValue: bigint, completion: CompleteUserspaceIo): true {
  const f = v.run.cr_filter;
  f.cr = cr;
  f.access = access;
  f.old_value = oldValue;
  f.new_value = newValue;
  f.rip = v.cpu.getRip();
  f.action = PINBOX_ANSWER_ALLOW;
  f.value = 0n;
  return v.exitToUserSpace('KVM_EXIT_PINBOX_CR_FILTER', completion);
}

export function checkCrFilterReply(v: VcpuArch): void {
  checkAnswer('cr_filter', v.run.cr_filter.action, v.run.cr_filter.value);
}

/** What a register intercept carries beside its bit: the MSR, and the values (limits for GDTR/IDTR). */
export interface InterceptedAccess {
  readonly msr: number;
  readonly oldValue: bigint;
  readonly newValue: bigint;
  readonly oldLimit: number;
  readonly newLimit: number;
}

/** The register-intercept exit for bit `intercept` of HV_REGISTER_CR_INTERCEPT_CONTROL. */
export function regInterceptExit(v: VcpuArch, intercept: number, a: InterceptedAccess, completion: CompleteUserspaceIo): true {
  const r = v.run.reg_intercept;
  r.intercept = intercept;
  r.msr = a.msr;
  r.old_value = a.oldValue;
  r.new_value = a.newValue;
  r.old_limit = a.oldLimit;
  r.new_limit = a.newLimit;
  r.rip = v.cpu.getRip();
  r.action = PINBOX_ANSWER_ALLOW;
  r.value = 0n;
  r.limit = 0;
  return v.exitToUserSpace('KVM_EXIT_PINBOX_REG_INTERCEPT', completion);
}

export function checkRegInterceptReply(v: VcpuArch): void {
  const r = v.run.reg_intercept;
  checkAnswer('reg_intercept', r.action, r.value);
  const limit: unknown = r.limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 0 || limit > 0xffff) {
    throw new KvmError('EINVAL', 'KVM_RUN', `kvm_run.reg_intercept.limit must be a u16, got ${String(limit)}`);
  }
}
