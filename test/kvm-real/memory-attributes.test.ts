/**
 * pinbox's RWX memory attributes are out of tree (docs/memory-protection.md §3.1, §3.2): the real
 * backend passes KVM_SET_MEMORY_ATTRIBUTES to the kernel as given, and a mainline kernel refuses
 * them — EINVAL, attributes outside its supported mask (kvm_vm_ioctl_set_mem_attributes()), or
 * ENOTTY where it has no such ioctl — and knows none of pinbox's capabilities (0).
 */
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { RealGuest, realTest } from './real-guest.js';

realTest('the real kernel refuses pinbox\'s attributes and capabilities', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  t.is(g.vm.checkExtension(abi.KVM_CAP_PINBOX_MBEC), 0);
  t.is(g.vm.checkExtension(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY), 0);
  t.is(BigInt(g.vm.checkExtension(abi.KVM_CAP_MEMORY_ATTRIBUTES)) & abi.KVM_MEMORY_ATTRIBUTES_PINBOX_MASK, 0n);
  const e = t.throws(() => g.vm.setMemoryAttributes!({ address: 0x50_0000n, size: 0x1000n, attributes: abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW }), { instanceOf: KvmError });
  t.true(e?.code === 'EINVAL' || e?.code === 'ENOTTY', `the kernel said ${e?.code}`);
  t.throws(() => g.vm.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1]), { instanceOf: KvmError });
});
