/**
 * Every guest op kind, at CPL0 and CPL3, run as the real instruction on the boot image: the
 * expected values are architectural (SDM) or KVM's (docs/heki.md, docs/msr-filter.md), never
 * read back from the implementation. Each runs on both backends (test/support/backends.ts); where
 * a host departs from upstream KVM by a documented quirk (docs/real-kvm.md §10), the test expects
 * the quirk on that host only.
 */
import test from 'ava';
import {
  GP_VECTOR, KVM_EPERM, KVM_HC_LOCK_CR_UPDATE, KVM_LOCK_CR_UPDATE_VERSION, MSR_EFER, MSR_KERNEL_GS_BASE, X86_CR0_TS,
  X86_CR4_PCE, X86_CR4_SMEP, X86_CR4_UMIP,
} from '../../protocol/abi.js';
import { backendTest, HEKI_V2, realBackend } from '../support/backends.js';
import { testVmm } from './vmm-support.js';

/** EFER after boot: SCE|LME|LMA|NXE. */
const BOOT_EFER = 0xd01n;
const GP0 = { vector: GP_VECTOR, errorCode: 0 };
/** "GenuineIntel" in EBX, EDX, ECX (CPUID leaf 0): the modelled host is Intel (a real host's vendor is its own: docs/real-kvm.md §9). */
const GENU = 0x756e6547;
const INEI = 0x49656e69;
const NTEL = 0x6c65746e;

await backendTest('rdmsr and wrmsr at CPL0 run RDMSR/WRMSR through KVM: EFER reads 0xd01, KERNEL_GS_BASE round-trips 64 bits', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR_EFER }), { value: BOOT_EFER, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'wrmsr', index: MSR_KERNEL_GS_BASE, value: 0xffff_8000_1234_5678n }), { exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR_KERNEL_GS_BASE }), { value: 0xffff_8000_1234_5678n, exits: [] });
});

await backendTest('at CPL3, RDMSR, WRMSR and MOV CR take #GP(0) (SDM: privileged instructions), CPUID does not', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR_EFER, cpl: 3 }), { fault: GP0, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'wrmsr', index: MSR_KERNEL_GS_BASE, value: 0n, cpl: 3 }), { fault: GP0, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'readCr', cr: 0, cpl: 3 }), { fault: GP0, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: 0n, cpl: 3 }), { fault: GP0, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'clts', cpl: 3 }), { fault: GP0, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'lmsw', value: 1, cpl: 3 }), { fault: GP0, exits: [] });
  const id = await vm.perform(0, { op: 'cpuid', leaf: 0, cpl: 3 });
  if (b.name === 'model') t.like(id, { ebx: GENU, edx: INEI, ecx: NTEL, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'cpuid', leaf: 0 }), id, 'the same at CPL0');
  // The kernel stays usable after the CPL3 faults.
  t.deepEqual(await vm.perform(0, { op: 'rdmsr', index: MSR_EFER }), { value: BOOT_EFER, exits: [] });
});

await backendTest('readCr and writeCr move CR4; a reserved or unsupported CR4 bit is #GP(0) and leaves CR4 unchanged', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  const cr4 = (await vm.perform(0, { op: 'readCr', cr: 4 })) as { value: bigint };
  t.is(cr4.value & X86_CR4_SMEP, X86_CR4_SMEP, 'boot turns on SMEP, which the default guest CPUID has');
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4.value | X86_CR4_PCE }), { exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'readCr', cr: 4 }), { value: cr4.value | X86_CR4_PCE, exits: [] });
  // kvm_is_valid_cr4(): bits 63:32 are reserved; a PVM host's emulator drops them instead (the lower half is loaded).
  const upper = b.quirk('pvm-cr-upper-bits-dropped') ? { exits: [] } : { fault: GP0, exits: [] };
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4.value | X86_CR4_PCE | (1n << 63n) }), upper);
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4.value | X86_CR4_PCE | (1n << 32n) }), upper);
  t.deepEqual(await vm.perform(0, { op: 'readCr', cr: 4 }), { value: cr4.value | X86_CR4_PCE, exits: [] });
  // Bit 15 is reserved on every host (__cr4_reserved_bits).
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4.value | (1n << 15n) }), { fault: GP0, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'readCr', cr: 4 }), { value: cr4.value | X86_CR4_PCE, exits: [] });
});

await backendTest('the boot CR4 has only the features the guest CPUID has (no UMIP for a guest without it)', async (t, b) => {
  const { vm } = testVmm({ guestCpuid: { umip: false } }, b.vmm);
  const cr4 = (await vm.perform(0, { op: 'readCr', cr: 4 })) as { value: bigint };
  t.is(cr4.value & X86_CR4_UMIP, 0n);
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4.value | X86_CR4_UMIP }), { fault: GP0, exits: [] }, 'kvm_set_cr4: reserved for this guest');
}, { needs: (b) => b.support.clearsCpuid('umip') });

await backendTest('LMSW sets CR0.TS, CLTS clears it', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  const cr0 = ((await vm.perform(0, { op: 'readCr', cr: 0 })) as { value: bigint }).value;
  t.is(cr0 & X86_CR0_TS, 0n);
  // LMSW loads CR0[3:0] from the operand (PE|MP|TS here; PE cannot be cleared by LMSW).
  t.deepEqual(await vm.perform(0, { op: 'lmsw', value: 0b1011 }), { exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'readCr', cr: 0 }), { value: cr0 | X86_CR0_TS, exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'clts' }), { exits: [] });
  t.deepEqual(await vm.perform(0, { op: 'readCr', cr: 0 }), { value: cr0, exits: [] });
});

const VERSION_QUERY = { op: 'hypercall', nr: BigInt(KVM_HC_LOCK_CR_UPDATE), args: [0n, 0n, BigInt(KVM_LOCK_CR_UPDATE_VERSION)] };
const EPERM = BigInt.asUintN(64, BigInt(-KVM_EPERM));

await backendTest('hypercall: the Heki version query answers 1 by VMCALL and by VMMCALL; a0 above U32_MAX is -KVM_EINVAL', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  t.deepEqual(await vm.perform(0, VERSION_QUERY), { ret: 1n, exits: [] });
  t.deepEqual(await vm.perform(0, { ...VERSION_QUERY, insn: 'vmmcall' }), { ret: 1n, exits: [] });
  // docs/heki.md §8 case 3: a0 above U32_MAX is -KVM_EINVAL, not truncated to 4 (all 64 bits of RBX arrive).
  t.deepEqual(await vm.perform(0, { op: 'hypercall', nr: 13n, args: [0x1_0000_0004n, X86_CR4_SMEP] }), { ret: BigInt.asUintN(64, -22n), exits: [] });
  if (b.name === 'model') t.deepEqual(vm.hekiPins, { cr0: 0n, cr4: 0n }, 'only the model shows its pins');
}, { needs: HEKI_V2 });

await backendTest('hypercall: at CPL3 every hypercall returns -KVM_EPERM without a fault, and pins nothing', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  t.deepEqual(await vm.perform(0, { ...VERSION_QUERY, insn: 'vmmcall', cpl: 3 }), { ret: EPERM, exits: [] });
  // kvm_emulate_hypercall(): CPL > 0 is -KVM_EPERM, whatever the number; a PVM host runs CPL3 code natively, and its VMCALL is #GP.
  const vmcall = b.quirk('pvm-cpl3-vmcall-gp') ? { fault: GP0, exits: [] } : { ret: EPERM, exits: [] };
  t.deepEqual(await vm.perform(0, { ...VERSION_QUERY, cpl: 3 }), vmcall);
  t.deepEqual(await vm.perform(0, { op: 'hypercall', nr: BigInt(KVM_HC_LOCK_CR_UPDATE), args: [4n, X86_CR4_SMEP], cpl: 3 }), vmcall);
  const cr4 = (await vm.perform(0, { op: 'readCr', cr: 4 })) as { value: bigint };
  t.deepEqual(await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4.value & ~X86_CR4_SMEP }), { exits: [] }, 'the CPL3 lock call pinned nothing');
});

// A host whose CPL0 hypercalls never complete (docs/real-kvm.md §10) answers them honestly: host_unsupported, never a hang.
if (realBackend !== undefined && !realBackend.support.hypercalls.complete) {
  const b = realBackend;
  test('hypercall: on a host that cannot complete CPL0 hypercalls, one fails with host_unsupported, and the vCPU goes on [kvm]', async (t) => {
    const { vm } = testVmm({}, b.vmm);
    await t.throwsAsync(vm.perform(0, VERSION_QUERY), { code: 'host_unsupported', message: /hypercall/ });
    t.like(await vm.perform(0, { op: 'rdmsr', index: MSR_EFER }), { value: BOOT_EFER });
  });
} else {
  test.todo(`hypercall: on a host that cannot complete CPL0 hypercalls, one fails with host_unsupported [kvm] — not run: ${realBackend === undefined ? 'no usable /dev/kvm here' : 'this host completes them'}`);
}

test('requests from in-process callers are checked against the protocol schema; a missing vCPU is not_found', async (t) => {
  const { vm } = testVmm();
  await t.throwsAsync(vm.perform(0, { op: 'rdmsr' }), { code: 'invalid_message', message: /index/ });
  await t.throwsAsync(vm.perform(0, { op: 'rdmsr', index: -1 }), { code: 'invalid_message' });
  await t.throwsAsync(vm.perform(0, { op: 'readCr', cr: 5 }), { code: 'invalid_message', message: /cr/ });
  await t.throwsAsync(vm.perform(0, { op: 'rdmsr', index: 0, extra: 1 }), { code: 'invalid_message', message: /extra/ });
  await t.throwsAsync(vm.perform(0, { op: 'hello' }), { code: 'unknown_op' });
  await t.throwsAsync(vm.perform(1, { op: 'clts' }), { code: 'not_found', message: /no vCPU 1/ });
});

await backendTest('requests on one vCPU run one at a time, in the order they came', async (t, b) => {
  const { vm } = testVmm({}, b.vmm);
  const results = await Promise.all([
    vm.perform(0, { op: 'wrmsr', index: MSR_KERNEL_GS_BASE, value: 1n }),
    vm.perform(0, { op: 'rdmsr', index: MSR_KERNEL_GS_BASE }),
    vm.perform(0, { op: 'wrmsr', index: MSR_KERNEL_GS_BASE, value: 2n }),
    vm.perform(0, { op: 'rdmsr', index: MSR_KERNEL_GS_BASE }),
  ]);
  t.deepEqual(results.map((r) => (r as { value?: bigint }).value), [undefined, 1n, undefined, 2n]);
});
