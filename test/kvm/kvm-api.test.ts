/**
 * The ioctl-shaped API without a CPU: KVM_CHECK_EXTENSION, KVM_CREATE_VM options,
 * KVM_ENABLE_CAP argument rules, KVM_CREATE_VCPU limits, and the exit-reason numbers.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { exitReasonNumber } from '../../host/kvm/api/exits.js';
import { Kvm } from '../../host/kvm/kvm.js';
import { type VmOptions } from '../../host/kvm/api/system.js';

test('KVM_CHECK_EXTENSION: the MSR caps answer 1, Heki caps 3 under the profile, unknown caps 0', (t) => {
  const kvm = new Kvm();
  t.is(kvm.checkExtension(abi.KVM_CAP_X86_USER_SPACE_MSR), 1);
  t.is(kvm.checkExtension(abi.KVM_CAP_X86_MSR_FILTER), 1);
  t.is(kvm.checkExtension(abi.KVM_CAP_IMMEDIATE_EXIT), 1);
  t.is(kvm.checkExtension(abi.KVM_CAP_ENFORCE_PV_FEATURE_CPUID), 1);
  t.is(kvm.checkExtension(235), 3);
  t.is(kvm.checkExtension(236), 3);
  t.is(kvm.checkExtension(237), 0);
  t.is(kvm.checkExtension(99999), 0);
  const v3 = new Kvm({ profile: 'v3' });
  t.is(v3.checkExtension(235), 0);
  t.is(v3.checkExtension(237), 3);
  t.is(kvm.createVm({ maxVcpus: 4 }).checkExtension(abi.KVM_CAP_MAX_VCPUS), 4);
  t.is(kvm.checkExtension(abi.KVM_CAP_MAX_VCPUS), 64);
});

test('KVM_CREATE_VM: defaults, and each bad option is EINVAL naming it', (t) => {
  const kvm = new Kvm();
  const vm = kvm.createVm();
  t.is(vm.memory.size, 16 * 1024 * 1024);
  t.is(vm.profile.name, 'v2');
  t.is(vm.maxVcpus, 64);
  const bad: [VmOptions, RegExp][] = [
    [{ profile: 'v4' as never }, /profile/],
    [{ hostCr0: 0x80050033 as never }, /hostCr0/],
    [{ hostCr4: -1n }, /hostCr4/],
    [{ cr4PinnableMask: 1n << 64n }, /cr4PinnableMask/],
    [{ memorySize: 1000 }, /memorySize/],
    [{ ignoreMsrs: 1 as never }, /ignoreMsrs/],
    [{ maxVcpus: 65 }, /maxVcpus/],
    [{ maxVcpus: 0 }, /maxVcpus/],
    [{ guestCpuid: { nx: 'yes' as never } }, /guestCpuid.nx/],
    [{ hostCR0: 1n } as never, /unknown option "hostCR0"/],
  ];
  for (const [options, message] of bad) {
    t.throws(() => kvm.createVm(options), { instanceOf: KvmError, code: 'EINVAL', message }, JSON.stringify(options, (_k, v) => (typeof v === 'bigint' ? `${v}n` : v)));
  }
});

test('KVM_ENABLE_CAP: flags must be 0, args are at most four u64s, unknown caps are EINVAL', (t) => {
  const vm = new Kvm().createVm();
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [1], 1), { code: 'EINVAL', message: /flags must be 0/ });
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [-1]), { code: 'EINVAL', message: /args\[0\]/ });
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [0.5]), { code: 'EINVAL' });
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [1, 2, 3, 4, 5]), { code: 'EINVAL' });
  t.throws(() => vm.enableCap(abi.KVM_CAP_X86_MSR_FILTER, [1]), { code: 'EINVAL', message: /KVM_ENABLE_CAP\(189\)/ });
  t.notThrows(() => vm.enableCap(abi.KVM_CAP_X86_USER_SPACE_MSR, [4n, 0, 0, 0]));
});

test('KVM_CREATE_VCPU: ids and counts are checked before a CPU is made; by default the CPU is host/x86\'s', (t) => {
  const made: number[] = [];
  const kvm = new Kvm({
    createCpu: (_memory, id) => {
      made.push(id);
      throw new Error('stop here');
    },
  });
  const vm = kvm.createVm({ maxVcpus: 1 });
  t.throws(() => vm.createVcpu(-1), { code: 'EINVAL' });
  t.throws(() => vm.createVcpu(4096), { code: 'EINVAL' });
  t.throws(() => vm.createVcpu(1.5), { code: 'EINVAL' });
  t.deepEqual(made, []);
  t.throws(() => vm.createVcpu(0), { message: /stop here/ });
  t.deepEqual(made, [0]);
  // The default core, in the RESET state (real mode), which it cannot run.
  const vcpu = new Kvm().createVm().createVcpu(0);
  t.is(vcpu.run().reason, 'KVM_EXIT_FAIL_ENTRY');
});

test('exit_reason numbers: mainline ones fixed, Heki ones per profile (39/40 in v2, 40/41 in v3)', (t) => {
  const { v2, v3 } = abi.HEKI_PROFILES;
  t.is(exitReasonNumber('KVM_EXIT_X86_RDMSR', v2), 29);
  t.is(exitReasonNumber('KVM_EXIT_X86_WRMSR', v3), 30);
  t.is(exitReasonNumber('KVM_EXIT_IO', v2), 2);
  t.is(exitReasonNumber('KVM_EXIT_HLT', v2), 5);
  t.is(exitReasonNumber('KVM_EXIT_SHUTDOWN', v2), 8);
  t.is(exitReasonNumber('KVM_EXIT_FAIL_ENTRY', v2), 9);
  t.is(exitReasonNumber('KVM_EXIT_INTR', v2), 10);
  t.deepEqual([exitReasonNumber('KVM_EXIT_HEKI_CONFIGURE', v2), exitReasonNumber('KVM_EXIT_HEKI_DENIAL', v2)], [39, 40]);
  t.deepEqual([exitReasonNumber('KVM_EXIT_HEKI_CONFIGURE', v3), exitReasonNumber('KVM_EXIT_HEKI_DENIAL', v3)], [40, 41]);
});

test('tracepoints: listeners see events by name; active falls back once the last one leaves', (t) => {
  const kvm = new Kvm();
  t.false(kvm.tracepoints.active);
  const seen: number[] = [];
  const off = kvm.tracepoints.on('kvm_msr', (e) => seen.push(e.ecx));
  t.true(kvm.tracepoints.active);
  t.true(kvm.tracepoints.enabled('kvm_msr'));
  t.false(kvm.tracepoints.enabled('kvm_cr'));
  kvm.tracepoints.emit('kvm_msr', { vcpu_id: 0, write: false, ecx: 0x10, data: 0n, exception: false });
  kvm.tracepoints.emit('kvm_cr', { vcpu_id: 0, rw: 'write', cr: 0, val: 0n });
  off();
  kvm.tracepoints.emit('kvm_msr', { vcpu_id: 0, write: false, ecx: 0x11, data: 0n, exception: false });
  t.deepEqual(seen, [0x10]);
  t.false(kvm.tracepoints.active);
});

test('KVM_CREATE_VM: a VM takes the Heki profile of the Kvm it comes from unless told otherwise', (t) => {
  const kvm = new Kvm({ profile: 'v3' });
  // docs/heki.md §3: v3 numbers KVM_CAP_HEKI_CONFIGURE 236 and KVM_CAP_HEKI_DENIAL 237.
  t.is(kvm.checkExtension(237), 3);
  const vm = kvm.createVm();
  t.is(vm.checkExtension(237), 3);
  t.is(vm.checkExtension(235), 0, '235 is v2\'s CONFIGURE and means nothing in v3');
  t.is(kvm.createVm({ profile: 'v2' }).checkExtension(235), 3);
});
