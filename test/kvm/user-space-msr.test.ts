/**
 * KVM_CAP_X86_USER_SPACE_MSR and the exit-or-#GP choice: docs/msr-filter.md §2.4, §2.5,
 * §3, selftest user_exit_msr_flags (§4.4) and §7 cases 1, 2, 7, 8, 25, 27.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KVM_MSR_RET_FILTERED, KVM_MSR_RET_UNSUPPORTED } from '../../host/kvm/msrs/msr-vcpu.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Kvm } from '../../host/kvm/kvm.js';
import { kvmMsrReason, kvmMsrUserSpace, userSpaceMsrMask } from '../../host/kvm/user-space-msr.js';
import { completeFastRdmsr } from '../../host/kvm/handle-msr.js';
import type { VcpuArch } from '../../host/kvm/vcpu-arch.js';
import type { VmArch } from '../../host/kvm/vm-arch.js';

const I = abi.KVM_MSR_EXIT_REASON_INVAL;
const U = abi.KVM_MSR_EXIT_REASON_UNKNOWN;
const F = abi.KVM_MSR_EXIT_REASON_FILTER;
const FILTERED = KVM_MSR_RET_FILTERED;
const UNSUPPORTED = KVM_MSR_RET_UNSUPPORTED;

test('the exit reason follows the failure code alone: UNSUPPORTED→UNKNOWN, FILTERED→FILTER, else INVAL', (t) => {
  t.is(kvmMsrReason(UNSUPPORTED), U);
  t.is(kvmMsrReason(FILTERED), F);
  t.is(kvmMsrReason(1), I);
  t.is(kvmMsrReason(-14), I, 'negative errno');
});

/** kvm_msr_user_space() for failure `r` of a RDMSR on a vCPU whose VM has `mask`: the exit's reason, or 0 for none. */
function msrUserSpaceExitReason(mask: number, r: number): number {
  const vm = new Kvm().createVm();
  vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [BigInt(mask)]);
  const v = vm.createVcpu(0)['arch'] as VcpuArch;
  if (!kvmMsrUserSpace(v, 0x10, 'KVM_EXIT_X86_RDMSR', 0n, completeFastRdmsr, r)) return 0;
  return v.run.reason === 'KVM_EXIT_X86_RDMSR' && v.run.msr.index === 0x10 && v.completeUserspaceIo === completeFastRdmsr ? v.run.msr.reason : -1;
}

test('cases 1, 2, 7, 8, 27: an exit only for a reason in the mask; a denied access never falls back to another reason', (t) => {
  t.is(msrUserSpaceExitReason(U, UNSUPPORTED), U, 'case 1');
  t.is(msrUserSpaceExitReason(0, UNSUPPORTED), 0, 'case 2: #GP');
  t.is(msrUserSpaceExitReason(0, FILTERED), 0, 'case 7: #GP');
  t.is(msrUserSpaceExitReason(U | I, FILTERED), 0, 'case 8: no fallback');
  t.is(msrUserSpaceExitReason(F, FILTERED), F);
  t.is(msrUserSpaceExitReason(I, 1), I, 'case 27: bad PAT with M=I');
  t.is(msrUserSpaceExitReason(U, 1), 0, 'case 27: bad PAT with M=U is #GP');
  t.is(msrUserSpaceExitReason(I | U | F, -14), I);
});

test('selftest user_exit_msr_flags: args[0] = 1<<i succeeds for i = 0..2 and is EINVAL for 3..63', (t) => {
  const vm = new Kvm().createVm();
  for (let i = 0; i < 64; i++) {
    const arg = 1n << BigInt(i);
    if (i < 3) t.notThrows(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [arg]), `bit ${i}`);
    else t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [arg]), { instanceOf: KvmError, code: 'EINVAL' }, `bit ${i}`);
  }
});

test('case 25: a refused mask leaves the old one; 7 enables all; 0 disables; the value is assigned, not ORed', (t) => {
  const vm = new Kvm().createVm();
  const mask = (): number => (vm['arch'] as VmArch).userSpaceMsrMask;
  vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [F]);
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [8]), { code: 'EINVAL' });
  t.is(mask(), F);
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [1n << 40n]), { code: 'EINVAL' });
  t.is(mask(), F);
  vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [7]);
  t.is(mask(), I | U | F);
  vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [U]);
  t.is(mask(), U);
  vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [0]);
  t.is(mask(), 0);
});

test('userSpaceMsrMask refuses bits above VALID_MASK with the cap named', (t) => {
  t.is(userSpaceMsrMask(5n), 5);
  t.throws(() => userSpaceMsrMask(0x10n), { message: /^KVM_ENABLE_CAP\(KVM_CAP_X86_USER_SPACE_MSR\): EINVAL/ });
});
