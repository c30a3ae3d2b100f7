/**
 * The real backend behind the KVM API both backends implement (host/kvm/api): loaded by
 * loadBackend('kvm'), it takes the VMM's VMs; what only the model can do it refuses as a kernel
 * would (an instruction budget: EINVAL; Heki's state, which has no ioctl: ENOTTY). Where real KVM
 * is unusable each test shows as "not run: <why>".
 */
import { readdirSync } from 'node:fs';
import { MSR_IA32_SYSENTER_CS, MSR_STAR } from '../../protocol/abi.js';
import { loadBackend } from '../../host/kvm/api/backend.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { parsePolicy, takeSnapshot, Vmm } from '../../host/vmm/index.js';
import { RealGuest, realTest } from './real-guest.js';

const EFER = 0xc0000080;

realTest('the VMM on loadBackend(\'kvm\'): a VM from a policy runs a guest RDMSR on the real kernel', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}), backend: await loadBackend('kvm') });
  t.teardown(() => vmm.close());
  t.is(vmm.backend.name, 'kvm');
  const vm = vmm.vm();
  t.is(vm.kvm.model, undefined, 'no model extensions on a real kernel');
  // SCE|LME|LMA|NXE, as the boot state loads EFER (host/vmm/boot).
  t.like(await vm.perform(0, { op: 'rdmsr', index: EFER }), { value: 0xd01n });
  t.like(await vm.perform(0, { op: 'wrmsr', index: MSR_STAR, value: 0x0023_0010_0000_0000n }), { exits: [] });
  t.like(await vm.perform(0, { op: 'rdmsr', index: MSR_STAR }), { value: 0x0023_0010_0000_0000n });
  t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: 0n }, 'no view of Heki\'s pins');
  t.throws(() => takeSnapshot(vm), { instanceOf: KvmError, code: 'ENOTTY', message: /only the KVM model/ });
});

realTest('a policy that describes a host of its own is refused on the real kernel, naming the option, and leaves no fd open', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({ hostModel: { cr0: '0x80050033' } }), backend: await loadBackend('kvm') });
  t.teardown(() => vmm.close());
  const fds = readdirSync('/proc/self/fd').length;
  t.throws(() => vmm.vm(), { instanceOf: KvmError, code: 'EINVAL', message: /hostCr0/ });
  t.is(readdirSync('/proc/self/fd').length, fds, 'the /dev/kvm opened for the VM was closed');
});

realTest('RunOptions.budget is the model\'s: a real vCPU refuses it (EINVAL) and the guest does not run', (t, kvm) => {
  const g = new RealGuest(t, kvm);
  const code = g.startCode(['f4 | hlt']);
  t.throws(() => g.vcpu.run({ budget: 10 }), { instanceOf: KvmError, code: 'EINVAL', message: /budget/ });
  t.is(g.regs().rip, BigInt(code.base));
});

realTest('KVM_GET_MSR_INDEX_LIST lists the MSRs the kernel saves (x86.c msrs_to_save_base has SYSENTER_CS and STAR)', (t, kvm) => {
  const list = kvm.getMsrIndexList();
  t.true(list.length > 10, `${list.length} MSRs`);
  t.true(list.every((i) => Number.isInteger(i) && i >= 0 && i <= 0xffff_ffff));
  t.true(list.includes(MSR_IA32_SYSENTER_CS));
  t.true(list.includes(MSR_STAR));
});
