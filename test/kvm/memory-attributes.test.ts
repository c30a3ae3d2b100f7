/**
 * KVM_SET_MEMORY_ATTRIBUTES with pinbox's out-of-tree RWX attributes, KVM_EXIT_MEMORY_FAULT and
 * the #PF-injection policy, on real guest instructions. Expectations from the sources of
 * docs/memory-protection.md: the upstream ioctl's checks and their order (kvm_main.c,
 * kvm_vm_ioctl_set_mem_attributes(): flags, mask, size/wrap, alignment), kvm_run.memory_fault
 * (exit 39: flags, gpa, size), KVM's qualification → #PF error code (read → U/S, write → W,
 * fetch → I/D, a permission → P) and CR2 = the linear address (Heki's vmx_fault_gva()).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import type { KvmRunMemoryFault } from '../../host/kvm/api/exits.js';
import { Guest } from './guest.js';

const NR = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR;
const NW = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW;
const NX = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX;
const NUX = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX;
/** A supervisor RW, NX page of the boot image's high memory (identity-mapped). */
const DATA = 0x50_0000;
const STORE = ['48 89 03 | mov [rbx], rax', 'f4 | hlt'];
const LOAD = ['48 8b 03 | mov rax, [rbx]', 'f4 | hlt'];

/** KVM_RUN failing EFAULT with KVM_EXIT_MEMORY_FAULT in kvm_run (api.rst); returns the member. */
function memoryFault(t: { throws: (f: () => void, e: object) => unknown; is: (a: unknown, b: unknown) => void }, g: Guest): KvmRunMemoryFault {
  t.throws(() => g.run(), { instanceOf: KvmError, message: /EFAULT/ });
  const run = g.vcpu().kvmRun;
  t.is(run.reason, 'KVM_EXIT_MEMORY_FAULT');
  t.is(run.exit_reason, 39);
  return run.memory_fault;
}

/** A VM whose profile has KVM_EXIT_MEMORY_FAULT (v3; under v2, 39 is Heki's and violations are #PF). */
function v3(): Guest {
  return new Guest({ profile: 'v3' });
}

function einval(t: { throws: (f: () => void, e: object) => unknown }, f: () => void): void {
  t.throws(f, { instanceOf: KvmError, message: /EINVAL/ });
}

test('KVM_CHECK_EXTENSION: the attributes a VM supports (NUX once MBEC is on), the pinbox caps', (t) => {
  const g = new Guest();
  t.is(g.vm.checkExtension(abi.KVM_CAP_MEMORY_ATTRIBUTES), Number(NR | NW | NX));
  t.is(g.vm.checkExtension(abi.KVM_CAP_MEMORY_FAULT_INFO), 1);
  t.is(g.vm.checkExtension(abi.KVM_CAP_PINBOX_MBEC), 1);
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1]);
  t.is(g.vm.checkExtension(abi.KVM_CAP_MEMORY_ATTRIBUTES), Number(NR | NW | NX | NUX));
  t.true(Number(NR | NW | NX | NUX) < 2 ** 31, 'the mask fits the int KVM_CHECK_EXTENSION returns');
});

test('refusals in the upstream order, then pinbox\'s; nothing is applied by a refused call', (t) => {
  const g = new Guest();
  const set = (address: bigint, size: bigint, attributes: bigint, flags = 0n) =>
    () => g.vm.setMemoryAttributes({ address, size, attributes, flags });
  einval(t, set(0n, 0n, 1n << 40n, 1n)); // flags first, even with everything else wrong
  einval(t, set(BigInt(DATA), 4096n, abi.KVM_MEMORY_ATTRIBUTE_PRIVATE)); // not supported here
  einval(t, set(BigInt(DATA), 4096n, NUX)); // NUX needs MBEC
  einval(t, set(BigInt(DATA), 0n, NW)); // size 0
  einval(t, set(0xffff_ffff_ffff_f000n, 0x2000n, NW)); // wraps
  // An end of exactly 2^64 wraps to 0 in u64 (kvm_vm_ioctl_set_mem_attributes(): address + size < address).
  t.throws(set(0xffff_ffff_ffff_f000n, 0x1000n, NW), { instanceOf: KvmError, message: /wraps/ });
  einval(t, set(BigInt(DATA) + 8n, 4096n, NW)); // unaligned address
  einval(t, set(BigInt(DATA), 100n, NW)); // unaligned size
  einval(t, set(BigInt(g.vm.memory.size), 4096n, NW)); // beyond guest memory (model decision)
  einval(t, set(BigInt(DATA), 4096n, NR | NW)); // unreadable but executable
  t.deepEqual(g.vm.getMemoryAttributes(), []);
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 0x3000n, attributes: NW });
  g.vm.setMemoryAttributes({ address: BigInt(DATA) + 0x1000n, size: 0x1000n, attributes: NR | NW | NX });
  t.deepEqual(g.vm.getMemoryAttributes(), [
    { address: BigInt(DATA), size: 0x1000n, attributes: NW },
    { address: BigInt(DATA) + 0x1000n, size: 0x1000n, attributes: NR | NW | NX },
    { address: BigInt(DATA) + 0x2000n, size: 0x1000n, attributes: NW },
  ]);
  t.deepEqual(g.vm.memoryPermissions(BigInt(DATA), 0x2000n), [
    { address: BigInt(DATA), size: 0x1000n, read: true, write: false, exec: true, userExec: true },
    { address: BigInt(DATA) + 0x1000n, size: 0x1000n, read: false, write: false, exec: false, userExec: false },
  ]);
});

test('the profile decides: v3 exits by default, v2 (whose 39 is Heki\'s) injects #PF and refuses the exit', (t) => {
  const g = new Guest();
  t.throws(() => g.vm.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [abi.PINBOX_MEMORY_FAULT_EXIT]), { instanceOf: KvmError, message: /EINVAL/ });
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NW });
  g.startCode(STORE, { rbx: BigInt(DATA) }, 0, 3);
  t.is(g.finish().fault?.vector, 14);
  const h = v3();
  h.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NW });
  h.startCode(STORE, { rbx: BigInt(DATA) }, 0, 3);
  memoryFault(t, h);
});

test('a refused store: KVM_RUN fails EFAULT with KVM_EXIT_MEMORY_FAULT (39): flags, page, size, GVA; re-entry retries it', (t) => {
  const g = v3();
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NW });
  const code = g.startCode(STORE, { rax: 0x1234n, rbx: BigInt(DATA + 8) });
  const exit = { memory_fault: memoryFault(t, g) };
  t.is(exit.memory_fault.flags, abi.KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE | abi.KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID);
  t.is(exit.memory_fault.gpa, BigInt(DATA));
  t.is(exit.memory_fault.size, 4096n);
  t.is(exit.memory_fault.gva, BigInt(DATA + 8));
  t.is(g.regs().rip, BigInt(code.base), 'RIP on the store');
  t.is(g.vm.memory.read64(DATA + 8), 0n, 'nothing written');
  t.is(memoryFault(t, g).gva, BigInt(DATA + 8), 'the same store, tried again');
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: 0n });
  t.is(g.finish().fault, null);
  t.is(g.vm.memory.read64(DATA + 8), 0x1234n, 'user space lifted the attribute; the retried store went through');
});

test('inject policy: #PF with KVM\'s error code and CR2 = the linear address, as Heki did', (t) => {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [abi.PINBOX_MEMORY_FAULT_INJECT_PF]);
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NW });
  g.vm.setMemoryAttributes({ address: BigInt(DATA) + 0x1000n, size: 4096n, attributes: NR | NW | NX });
  const store = g.startCode(STORE, { rax: 1n, rbx: BigInt(DATA + 0x10) }, 0, 3);
  t.deepEqual(g.finish().fault, { vector: 14, errorCode: abi.PFERR_WRITE | abi.PFERR_PRESENT, rip: BigInt(store.base) });
  t.is(g.vcpu().getSregs().cr2, BigInt(DATA + 0x10));
  const load = g.startCode(LOAD, { rbx: BigInt(DATA + 0x1020) }, 0, 3);
  // A read becomes U/S (KVM's quirk); the page has no permission left, so P is clear.
  t.deepEqual(g.finish().fault, { vector: 14, errorCode: abi.PFERR_USER, rip: BigInt(load.base) });
  t.is(g.vcpu().getSregs().cr2, BigInt(DATA + 0x1020));
  t.throws(() => g.vm.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [2]), { instanceOf: KvmError, message: /EINVAL/ });
});

test('denials are traced whatever the policy, with GPA, GVA, access and RIP', (t) => {
  const g = v3();
  const seen: { access: string; gpa: bigint; gva: bigint | undefined; rip: bigint; delivery: string }[] = [];
  g.kvm.tracepoints.on('kvm_memory_denial', (e) => seen.push({ access: e.access, gpa: e.gpa, gva: e.gva, rip: e.rip, delivery: e.delivery }));
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NW });
  const a = g.startCode(STORE, { rbx: BigInt(DATA + 8) });
  memoryFault(t, g);
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [1]);
  g.startCode(STORE, { rbx: BigInt(DATA + 8) }, 0, 3);
  g.finish();
  t.deepEqual(seen, [
    { access: 'write', gpa: BigInt(DATA + 8), gva: BigInt(DATA + 8), rip: BigInt(a.base), delivery: 'exit' },
    { access: 'write', gpa: BigInt(DATA + 8), gva: BigInt(DATA + 8), rip: BigInt(a.base), delivery: 'inject' },
  ]);
});

test('MBEC changes only while no protection is in place; NUX then refuses user-mode execution', (t) => {
  const g = new Guest();
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NW });
  t.throws(() => g.vm.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1]), { instanceOf: KvmError, message: /EBUSY/ });
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: 0n });
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1]);
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: NUX });
  t.deepEqual(g.vm.memoryPermissions(BigInt(DATA), 4096n), [
    { address: BigInt(DATA), size: 4096n, read: true, write: true, exec: true, userExec: false },
  ]);
});

test('the boot page tables write-locked at the second stage still translate (boot writes them accessed and dirty, as Linux does); a store to an entry is refused', (t) => {
  // docs/memory-protection.md §2.3: an accessed/dirty update needs write on the table's frame.
  // The boot image's entries already have A and D (docs/boot.md §2), so nothing is updated.
  const g = v3();
  g.vm.setMemoryAttributes({ address: 0x1000n, size: 0x7000n, attributes: NW }); // PML4, PDPT, PDs, PT0
  g.startCode(STORE, { rax: 5n, rbx: 0x9_0000n }); // kernel scratch: a page no one wrote
  t.is(g.finish().fault, null, 'the walk needed no update');
  t.is(g.vm.memory.read64(0x9_0000), 5n);
  g.startCode(STORE, { rax: 0n, rbx: 0x7000n + 8n * 0x90n }); // PT0's entry for 0x90000
  const m = memoryFault(t, g);
  t.is(m.gpa, 0x7000n);
  t.is(m.flags, abi.KVM_MEMORY_EXIT_FLAG_PINBOX_WRITE | abi.KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID);
});
