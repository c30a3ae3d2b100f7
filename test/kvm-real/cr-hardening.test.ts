/**
 * pinbox's CR-hardening extensions on the real kernel (docs/pinbox-abi.md): no kernel has the CR
 * filter or the register intercepts, so KVM_CHECK_EXTENSION at their numbers answers 0 — the
 * kernel's own answer for a capability it does not know, since the numbers are out of
 * mainline's range — and the real backend offers no method for them. Andersen's ABI, never
 * merged, is refused at KVM_CREATE_VM. Where real KVM is unusable each test shows as "not run".
 */
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { realTest } from './real-guest.js';

realTest('KVM_CHECK_EXTENSION answers 0 for the CR filter and the register intercepts, on the system and VM fds', (t, kvm) => {
  t.is(kvm.checkExtension(abi.KVM_CAP_PINBOX_CR_FILTER), 0);
  t.is(kvm.checkExtension(abi.KVM_CAP_PINBOX_REG_INTERCEPTS), 0);
  const vm = kvm.createVm();
  t.teardown(() => vm.close());
  t.is(vm.checkExtension(abi.KVM_CAP_PINBOX_CR_FILTER), 0);
  t.is(vm.checkExtension(abi.KVM_CAP_PINBOX_REG_INTERCEPTS), 0);
  t.is((vm as { setCrFilter?: unknown }).setCrFilter, undefined);
  const vcpu = vm.createVcpu(0);
  t.is((vcpu as { setRegisterIntercepts?: unknown }).setRegisterIntercepts, undefined);
});

realTest('the andersen option is the model\'s only: KVM_CREATE_VM refuses it, naming it', (t, kvm) => {
  t.throws(() => kvm.createVm({ andersen: true }), { instanceOf: KvmError, code: 'EINVAL', message: /andersen/ });
});
