/**
 * Heki's memory hypercalls as the VM's profile selects them, run with real VMCALLs. Expectations
 * from the RFC patches (docs/memory-protection.md §4, §5):
 *   v1 KVM_HC_LOCK_MEM_PAGE_RANGES = 13 (20230505152046.6575-5/-9-mic@digikod.net): a0 = GPA of
 *     struct heki_pa_range[] {gfn_start, gfn_end (inclusive), attributes}, a1 = its size in bytes,
 *     a2 = 0; NOWRITE 1, EXEC 2 (needs MBEC, else -KVM_EOPNOTSUPP); 16 ranges of each kind for
 *     the VM's life, 384 bytes per call (-KVM_E2BIG); permanent; not transactional.
 *   v2 KVM_HC_PROTECT_MEMORY = 14 (20231113022326.24388-12-mic@digikod.net): a0 = GPA of a
 *     heki_page_list {next, next_pa, npages, pages[] {pa, epa (exclusive), permissions}};
 *     READ 1, WRITE 2, EXEC 4, IMMUTABLE 8; EXEC put back without MBEC; -EPERM on an immutable
 *     page; READ never enforced; not transactional.
 * A protected page stays protected with CR0.WP cleared and through any alias the guest maps.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { KvmError } from '../../host/kvm/api/errors.js';
import { Guest, neg } from './guest.js';

const DATA = 0x50_0000; // supervisor RW, NX, identity-mapped
const ARGS = 0x60_0000; // where the hypercall arguments go
const EINVAL = neg(22), E2BIG = neg(7), EFAULT = neg(14), EOPNOTSUPP = neg(95), EPERM = neg(1), ENOSYS = neg(1000);
const STORE = ['48 89 03 | mov [rbx], rax', 'f4 | hlt'];

function hypercall(g: Guest, nr: number, a0: bigint, a1 = 0n, a2 = 0n): bigint {
  g.start('vmcall', { rax: BigInt(nr), rbx: a0, rcx: a1, rdx: a2 });
  const out = g.finish();
  if (out.fault !== null) throw new Error(`the hypercall faulted: vector ${out.fault.vector}`);
  return out.regs.rax;
}

/** struct heki_pa_range[] at ARGS; returns its size in bytes. */
function paRanges(g: Guest, ranges: readonly (readonly [bigint, bigint, bigint])[]): bigint {
  ranges.forEach(([start, end, attributes], k) => {
    g.vm.memory.write64(ARGS + 24 * k, start);
    g.vm.memory.write64(ARGS + 24 * k + 8, end);
    g.vm.memory.write64(ARGS + 24 * k + 16, attributes);
  });
  return BigInt(24 * ranges.length);
}

function lockV1(g: Guest, ranges: readonly (readonly [bigint, bigint, bigint])[]): bigint {
  return hypercall(g, abi.KVM_HC_LOCK_MEM_PAGE_RANGES, BigInt(ARGS), paRanges(g, ranges));
}

/** One heki_page_list node at `at`: header then entries. */
function pageList(g: Guest, at: number, nextPa: bigint, pages: readonly (readonly [bigint, bigint, bigint])[], npages = pages.length): void {
  const m = g.vm.memory;
  m.write64(at, 0xffff_8880_dead_0000n); // the guest's own `next` pointer: meaningless to KVM
  m.write64(at + 8, nextPa);
  m.write64(at + 16, BigInt(npages));
  pages.forEach(([pa, epa, perms], k) => {
    m.write64(at + 24 + 24 * k, pa);
    m.write64(at + 24 + 24 * k + 8, epa);
    m.write64(at + 24 + 24 * k + 16, perms);
  });
}

function protect(g: Guest, pages: readonly (readonly [bigint, bigint, bigint])[]): bigint {
  pageList(g, ARGS, 0n, pages);
  return hypercall(g, abi.KVM_HC_PROTECT_MEMORY, BigInt(ARGS));
}

/**
 * Stores RAX at `gva` from CPL0: 'refused' when KVM_RUN fails EFAULT with KVM_EXIT_MEMORY_FAULT
 * (a v3-profile VM), '#PF' when a #PF was injected (a v2-profile VM), 'stored' when it retired.
 */
function store(g: Guest, gva: number, value = 0x4242n): 'refused' | '#PF' | 'stored' {
  g.startCode(STORE, { rax: value, rbx: BigInt(gva) }, 0, 3);
  try {
    const out = g.finish();
    return out.fault === null ? 'stored' : out.fault.vector === 14 ? '#PF' : 'stored';
  } catch (e) {
    if (e instanceof KvmError && e.errno === 14 && g.vcpu().kvmRun.reason === 'KVM_EXIT_MEMORY_FAULT') return 'refused';
    throw e;
  }
}

const gfn = (gpa: number) => BigInt(gpa / 4096);

test('v1: the profile decides the numbers — 13 locks memory, the v2 profile\'s CR lock is not there', (t) => {
  const g = new Guest({ hekiMemory: 'v1' });
  t.is(hypercall(g, 13, neg(1), neg(1), neg(1)), EINVAL, 'the guest\'s probe: a2 ≠ 0 is -KVM_EINVAL (anything but -KVM_ENOSYS means a Heki host)');
  t.is(hypercall(g, 14, 0n, abi.X86_CR0_WP), ENOSYS, 'v1\'s CR lock (14) is not modelled');
  const v2 = new Guest();
  t.is(hypercall(v2, 13, 0n, abi.X86_CR0_WP), 0n, 'under v2, 13 is KVM_HC_LOCK_CR_UPDATE');
  t.is(new Guest({ profile: 'v3' }).vm.profile.memory, 'none');
  t.is(hypercall(new Guest({ profile: 'v3' }), 14, BigInt(ARGS)), ENOSYS, 'v3 has no memory hypercall');
});

test('v1: argument checks in the patch\'s order', (t) => {
  const g = new Guest({ hekiMemory: 'v1' });
  const one = paRanges(g, [[gfn(DATA), gfn(DATA), abi.HEKI_ATTR_MEM_NOWRITE]]);
  t.is(hypercall(g, 13, BigInt(ARGS), 17n * 24n, 0n), E2BIG, 'more than 16 ranges');
  t.is(hypercall(g, 13, BigInt(ARGS), 25n, 0n), EINVAL, 'not a whole number of ranges');
  t.is(hypercall(g, 13, BigInt(g.vm.memory.size - 8), one, 0n), EFAULT, 'the array is not in guest memory');
  t.is(hypercall(g, 13, BigInt(ARGS), 0n, 0n), 0n, 'an empty array locks nothing');
  t.is(lockV1(g, [[2n, 1n, abi.HEKI_ATTR_MEM_NOWRITE]]), EINVAL, 'start after end');
  t.is(lockV1(g, [[1n << 52n, 1n << 52n, abi.HEKI_ATTR_MEM_NOWRITE]]), EINVAL, 'beyond gpa_to_gfn(~0)');
  t.is(lockV1(g, [[1n, 1n, 0n]]), EINVAL, 'no attribute');
  t.is(lockV1(g, [[1n, 1n, 4n]]), EINVAL, 'an unknown attribute');
  t.is(lockV1(g, [[1n, 1n, abi.HEKI_ATTR_MEM_EXEC]]), EOPNOTSUPP, 'EXEC without MBEC');
  t.deepEqual(g.vm.hekiMemoryLocks.v1, { nowrite: [], exec: [] });
});

test('v1: NOWRITE is permanent, survives CR0.WP cleared and any alias; not transactional; 16 for life', (t) => {
  const g = new Guest({ profile: 'v3', hekiMemory: 'v1' });
  t.is(lockV1(g, [[gfn(DATA), gfn(DATA), abi.HEKI_ATTR_MEM_NOWRITE], [3n, 2n, abi.HEKI_ATTR_MEM_NOWRITE]]), EINVAL);
  t.deepEqual(g.vm.hekiMemoryLocks.v1.nowrite, [{ start: gfn(DATA), end: gfn(DATA) }], 'the range before the bad one stays locked');
  // CR0.WP off (it is not pinned here), then the store.
  g.start('writeCr0', { rax: g.cr(0) & ~abi.X86_CR0_WP });
  g.finish();
  t.is(g.cr(0) & abi.X86_CR0_WP, 0n);
  t.is(store(g, DATA), 'refused');
  t.is(g.vm.memory.read64(DATA), 0n);
  // An alias the guest maps itself: PML4[1] → PDPT → PD with a writable 2 MiB leaf over DATA.
  const m = g.vm.memory, pdpt = 0x61_0000, pd = 0x61_1000, rwp = 0x3n;
  m.write64(0x1000 + 8, BigInt(pdpt) | rwp);
  m.write64(pdpt, BigInt(pd) | rwp);
  m.write64(pd, BigInt(DATA & ~0x1f_ffff) | rwp | 0x80n);
  t.is(store(g, 0x80_0000_0000 + (DATA & 0x1f_ffff)), 'refused', 'the second stage is by GPA');
  t.is(g.vm.memory.read64(DATA), 0n);
  // User space cannot loosen it either: attributes only add restrictions.
  g.vm.setMemoryAttributes({ address: BigInt(DATA), size: 4096n, attributes: 0n });
  t.false(g.vm.memoryPermissions(BigInt(DATA), 4096n)[0]!.write);
  // INIT keeps it (per VM).
  g.vcpu().model.init();
  g.reboot();
  t.is(store(g, DATA), 'refused');
  // 16 NOWRITE ranges for the VM's life: one is used, 15 more fit, the 17th is -KVM_E2BIG.
  const fifteen = Array.from({ length: 15 }, (_, k) => [BigInt(0x700 + k), BigInt(0x700 + k), abi.HEKI_ATTR_MEM_NOWRITE] as const);
  t.is(lockV1(g, fifteen), 0n);
  t.is(lockV1(g, [[0x800n, 0x800n, abi.HEKI_ATTR_MEM_NOWRITE]]), E2BIG);
});

test('v1: EXEC (with MBEC) leaves kernel execute only in the EXEC ranges', (t) => {
  const g = new Guest({ profile: 'v3', hekiMemory: 'v1' });
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1]);
  // Stubs, kernel text, stacks, scratch: GFNs 0xe..0xff stay executable; the exec area (0x100) does not.
  t.is(lockV1(g, [[0xen, 0xffn, abi.HEKI_ATTR_MEM_EXEC]]), 0n);
  const code = g.startCode(['90 | nop', 'f4 | hlt']);
  t.throws(() => g.run(), { instanceOf: KvmError, message: /EFAULT/ });
  const exit = g.vcpu().kvmRun;
  t.is(exit.reason, 'KVM_EXIT_MEMORY_FAULT');
  t.is(exit.memory_fault.flags & abi.KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC, abi.KVM_MEMORY_EXIT_FLAG_PINBOX_EXEC);
  t.is(exit.memory_fault.gva, BigInt(code.base));
  t.deepEqual(g.vm.memoryPermissions(0xf000n, 4096n)[0], { address: 0xf000n, size: 4096n, read: true, write: true, exec: true, userExec: true });
  t.is(g.vm.memoryPermissions(0x20_0000n, 4096n)[0]!.userExec, true, 'user execute is untouched');
});

test('v2: checks per entry, EXEC put back without MBEC, READ not enforced, not transactional', (t) => {
  const g = new Guest();
  const page = BigInt(DATA);
  t.is(protect(g, [[page + 8n, page + 4096n, 1n]]), EINVAL, 'unaligned pa');
  t.is(protect(g, [[page, page + 4096n, 0n]]), EINVAL, 'no permission');
  t.is(protect(g, [[page, page + 4096n, 0x10n]]), EINVAL, 'an unknown permission');
  t.is(protect(g, [[page, page, 1n]]), EINVAL, 'epa <= pa');
  t.is(protect(g, [[page, page + 4096n, abi.MEM_ATTR_READ], [page, page, 1n]]), EINVAL);
  t.deepEqual(g.vm.hekiMemoryLocks.v2, [{ address: page, size: 4096n, permissions: abi.MEM_ATTR_READ | abi.MEM_ATTR_EXEC }],
    'the first entry stays, with EXEC put back (no MBEC)');
  t.is(store(g, DATA), '#PF', 'the v2 profile injects #PF, as Heki v2 did');
  t.is(protect(g, [[page, page + 4096n, abi.MEM_ATTR_WRITE]]), 0n, 'mutable without IMMUTABLE');
  t.deepEqual(g.vm.memoryPermissions(page, 4096n)[0], { address: page, size: 4096n, read: true, write: true, exec: true, userExec: true },
    'READ is never enforced');
});

test('v2: IMMUTABLE pages never change (-EPERM), even with CR0.WP cleared', (t) => {
  const g = new Guest();
  const page = BigInt(DATA);
  t.is(protect(g, [[page, page + 0x2000n, abi.MEM_ATTR_READ | abi.MEM_ATTR_IMMUTABLE]]), 0n);
  t.is(protect(g, [[page + 0x1000n, page + 0x3000n, abi.MEM_ATTR_READ | abi.MEM_ATTR_WRITE]]), EPERM);
  g.start('writeCr0', { rax: g.cr(0) & ~abi.X86_CR0_WP });
  g.finish();
  t.is(store(g, DATA + 0x1008), '#PF');
  t.is(g.vm.memory.read64(DATA + 0x1008), 0n);
  const h = new Guest({ profile: 'v3', hekiMemory: 'v2' });
  t.is(protect(h, [[page, page + 0x1000n, abi.MEM_ATTR_READ | abi.MEM_ATTR_IMMUTABLE]]), 0n);
  t.is(store(h, DATA), 'refused', 'a v3-profile VM with the v2 hypercall: the exit reaches user space');
});

test('v2: the chain is followed through next_pa; pinbox bounds npages (169) and the chain length', (t) => {
  const g = new Guest();
  const a = BigInt(DATA), b = BigInt(DATA) + 0x1000n;
  pageList(g, ARGS, BigInt(ARGS + 0x1000), [[a, a + 4096n, abi.MEM_ATTR_READ]]);
  pageList(g, ARGS + 0x1000, 0n, [[b, b + 4096n, abi.MEM_ATTR_READ]]);
  t.is(hypercall(g, abi.KVM_HC_PROTECT_MEMORY, BigInt(ARGS)), 0n);
  t.is(g.vm.hekiMemoryLocks.v2.length, 1);
  t.is(g.vm.hekiMemoryLocks.v2[0]!.size, 0x2000n, 'both nodes applied');
  pageList(g, ARGS, 0n, [], 170);
  t.is(hypercall(g, abi.KVM_HC_PROTECT_MEMORY, BigInt(ARGS)), E2BIG, 'more entries than a node page holds');
  pageList(g, ARGS, BigInt(ARGS), [[a, a + 4096n, abi.MEM_ATTR_READ]]);
  t.is(hypercall(g, abi.KVM_HC_PROTECT_MEMORY, BigInt(ARGS)), E2BIG, 'a chain that loops on itself ends at pinbox\'s bound');
  t.is(hypercall(g, abi.KVM_HC_PROTECT_MEMORY, BigInt(g.vm.memory.size)), EFAULT, 'a list outside guest memory');
});

test('v2 with MBEC: a page without EXEC loses kernel execute; with inject policy the fetch is a #PF', (t) => {
  const g = new Guest();
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1]);
  g.vm.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [1]);
  const slot = g.boot.kernelExecSlot(0).base;
  const page = BigInt(slot - (slot % 4096));
  t.is(protect(g, [[page, page + 4096n, abi.MEM_ATTR_READ | abi.MEM_ATTR_WRITE]]), 0n);
  const code = g.startCode(['90 | nop', 'f4 | hlt']);
  g.run(); // the #PF's stub records it and, with no fix-up, halts
  const rec = g.faultRecord();
  t.is(rec.vector, 14);
  t.is(rec.errorCode, abi.PFERR_FETCH | abi.PFERR_PRESENT, 'I/D and P: the page is readable and writable');
  t.is(rec.rip, BigInt(code.base));
});
