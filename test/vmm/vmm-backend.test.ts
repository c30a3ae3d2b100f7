/**
 * The VMM is handed its KVM as a backend (host/kvm/api/backend.ts): the model by default, the
 * model over another core for tests, or the machine's /dev/kvm (test/kvm-real/real-backend.test.ts).
 */
import test from 'ava';
import { loadBackend, modelBackend } from '../../host/kvm/api/backend.js';
import type { GuestMemory } from '../../host/kvm/api/guest-memory.js';
import { Cpu } from '../../host/x86/cpu.js';
import type { PhysicalMemory } from '../../host/x86/memory.js';
import { parsePolicy, Vmm } from '../../host/vmm/index.js';

const EFER = 0xc0000080;

test('without a backend the VMM runs on the model, whose extensions it finds', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}) });
  t.is(vmm.backend.name, 'model');
  const vm = vmm.vm();
  t.not(vm.kvm.model, undefined);
  t.not(vm.vm.model, undefined);
  t.not(vm.vcpu(0).vcpu.model, undefined);
  t.like(await vm.perform(0, { op: 'rdmsr', index: EFER }), { value: 0xd01n });
});

test('a model backend over a core of the caller\'s: one core per vCPU, over the VM\'s memory', async (t) => {
  const made: { memory: PhysicalMemory; vcpu: number }[] = [];
  const backend = modelBackend({
    createCpu: (memory, vcpu) => {
      made.push({ memory, vcpu });
      return new Cpu(memory);
    },
  });
  const vmm = new Vmm({ policy: parsePolicy({ vcpus: 2 }), backend });
  const vm = vmm.vm();
  t.deepEqual(made.map((m) => m.vcpu), [0, 1]);
  const memory: GuestMemory = vm.memory;
  t.true(made.every((m) => m.memory === memory));
  t.like(await vm.perform(1, { op: 'rdmsr', index: EFER }), { value: 0xd01n });
});

test('loadBackend: the model by name; an unknown name is refused', async (t) => {
  t.is((await loadBackend('model')).name, 'model');
  await t.throwsAsync(loadBackend('qemu' as 'model'), { instanceOf: RangeError, message: /unknown KVM backend qemu/ });
});
