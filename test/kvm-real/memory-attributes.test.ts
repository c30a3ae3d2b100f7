/**
 * pinbox's RWX memory attributes are out of tree (docs/memory-protection.md §3.1, §3.2): the real
 * backend passes KVM_SET_MEMORY_ATTRIBUTES to the kernel as given, and a mainline kernel refuses
 * them — EINVAL, attributes outside its supported mask (kvm_vm_ioctl_set_mem_attributes()), or
 * ENOTTY where it has no such ioctl — and knows none of pinbox's capabilities (0).
 */
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { loadBackend } from '../../host/kvm/api/backend.js';
import { EventLog, parsePolicy, Vmm } from '../../host/vmm/index.js';
import { applyMemoryPolicy } from '../../host/vmm/memory-protection.js';
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

realTest('a VMM cannot apply a policy\'s memory section on the real kernel: ENOTTY, naming the section, before any ioctl', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  const policy = parsePolicy({ profile: 'v3', memory: { protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } }).memory;
  t.throws(() => applyMemoryPolicy(g.vm, policy), { instanceOf: KvmError, code: 'ENOTTY', message: /memory section needs the KVM model/ });
  applyMemoryPolicy(g.vm, parsePolicy({ memory: '16MiB' }).memory);
  t.pass('a policy without protections applies nothing');
});

realTest('KVM_SET_VCPU_EVENTS: an injected #PF is delivered at the next KVM_RUN with its error code, and CR2 loaded', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}), log: new EventLog({ capacity: 0 }), backend: await loadBackend('kvm') });
  t.teardown(() => vmm.close());
  const vm = vmm.vm();
  vm.injectException(0, { vector: 14, errorCode: 3, payload: 0x12_3008n });
  const r = (await vm.perform(0, { op: 'exec', code: Uint8Array.of(0x90) })) as { stop: string; fault?: unknown; regs: { rip: bigint } };
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, { vector: 14, errorCode: 3 });
  t.is(r.regs.rip, 0x10_0000n, 'delivered before the first instruction');
  t.is(vm.getSregs(0).cr2, 0x12_3008n);
  t.throws(() => vm.injectException(0, { vector: 2 }), { instanceOf: KvmError, code: 'EINVAL', message: /not NMI/ });
});

realTest('KVM_GET_VCPU_EVENTS: a #PF reflected over a queued #PF becomes #DF(0), as kvm_multiple_exception() makes it', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}), log: new EventLog({ capacity: 0 }), backend: await loadBackend('kvm') });
  t.teardown(() => vmm.close());
  const vm = vmm.vm();
  vm.injectException(0, { vector: 14, errorCode: 2, payload: 0x12_3000n });
  vm.reflectException(0, { vector: 14, errorCode: 3, payload: 0x45_6000n });
  const r = (await vm.perform(0, { op: 'exec', code: Uint8Array.of(0x90) })) as { stop: string; fault?: unknown };
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, { vector: 8, errorCode: 0 });
});

realTest('KVM_SET_VCPU_EVENTS triple_fault.pending: refused without KVM_CAP_X86_TRIPLE_FAULT_EVENT; with it the next KVM_RUN is KVM_EXIT_SHUTDOWN', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  t.throws(() => g.vcpu.injectTripleFault(), { instanceOf: KvmError, code: 'EINVAL' });
  const KVM_CAP_X86_TRIPLE_FAULT_EVENT = 218; // include/uapi/linux/kvm.h
  if (g.vm.checkExtension(KVM_CAP_X86_TRIPLE_FAULT_EVENT) === 0) {
    t.log('not run: this kernel has no KVM_CAP_X86_TRIPLE_FAULT_EVENT');
    return;
  }
  g.vm.enableCap(KVM_CAP_X86_TRIPLE_FAULT_EVENT, [1]);
  g.vcpu.injectTripleFault();
  t.is(g.run().reason, 'KVM_EXIT_SHUTDOWN');
});
