/**
 * A hostile guest against the VMM's memory side (issue 15 review): what a guest kernel with code
 * execution can do to a memory protection, and to the VMM that answers its denials. Expectations
 * from the SDM (vol. 3A table 6-5, double faults; §6.15) and KVM's kvm_multiple_exception(): a
 * #PF whose delivery meets another #PF becomes #DF, and one that meets #DF a triple fault — on the
 * inject path KVM merges the events itself, and a VMM that answers KVM_EXIT_MEMORY_FAULT must
 * leave the guest in the same state (the contract of issue 15 §3).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { kvmMultipleException } from '../../host/kvm/api/memory-fault.js';
import { code, testVmm } from './vmm-support.js';

type ExecResult = { stop: string; regs: Record<string, bigint>; fault?: { vector: number; errorCode?: number }; exits: { reason: string }[] };

/** vCPU 0's IST1 stack page (boot/layout.ts EXCEPTION_STACKS): where every boot gate delivers. */
const IST1_PAGE = 0x50000n;
/** mov al, [0] — a #PF on the not-present null page. */
const NULL_READ = code(0x8a, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00);

for (const delivery of ['exit', 'inject'] as const) {
  test(`delivery "${delivery}": a #PF whose delivery pushes onto a write-denied stack becomes #DF, then a triple fault — not a loop`, async (t) => {
    const { vm, named } = testVmm({ profile: 'v3', memory: { delivery, protect: [{ gpa: '0x50000', size: '0x1000', deny: ['write'] }] } });
    const r = (await vm.perform(0, { op: 'exec', code: NULL_READ })) as ExecResult;
    t.is(r.stop, 'shutdown', JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v)).slice(0, 300));
    // Two refused pushes: the #PF's, then the #DF's (the triple fault needs no push).
    t.is(named('memory_denial').length, 2);
    t.true(named('memory_denial').every((e) => e.fields.gpa === IST1_PAGE && e.fields.access === 'write'));
  });
}

for (const delivery of ['exit', 'inject'] as const) {
  test(`delivery "${delivery}": a #GP whose push is refused is replaced by the #PF (contributory, then #PF: serial, SDM table 6-5), which then doubles`, async (t) => {
    const { vm, named } = testVmm({ profile: 'v3', memory: { delivery, protect: [{ gpa: '0x50000', size: '0x1000', deny: ['write'] }] } });
    // mov rax, 0x8000000000000000 ; mov al, [rax] — #GP(0) on a non-canonical address
    const r = (await vm.perform(0, { op: 'exec', code: code(0x48, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0x80, 0x8a, 0x00) })) as ExecResult;
    t.is(r.stop, 'shutdown');
    // The #GP's push, the #PF's that replaced it, the #DF's.
    t.is(named('memory_denial').length, 3);
  });
}

test('kvmMultipleException: SDM vol. 3A table 6-5 as KVM\'s kvm_multiple_exception() applies it', (t) => {
  const pf = { vector: 14, errorCode: 2, payload: 0x1000n };
  const df = { vector: 8, errorCode: 0 };
  t.deepEqual(kvmMultipleException(undefined, pf), pf, 'nothing queued');
  t.deepEqual(kvmMultipleException(14, pf), df, '#PF then #PF');
  t.deepEqual(kvmMultipleException(14, { vector: 13, errorCode: 0 }), df, '#PF then contributory');
  t.deepEqual(kvmMultipleException(13, { vector: 0 }), df, 'contributory then contributory');
  t.deepEqual(kvmMultipleException(13, pf), pf, 'contributory then #PF: serial');
  t.deepEqual(kvmMultipleException(3, pf), pf, 'benign then #PF: serial');
  t.deepEqual(kvmMultipleException(14, { vector: 6 }), { vector: 6 }, '#PF then benign: serial');
  t.is(kvmMultipleException(8, { vector: 6 }), 'triple_fault', 'anything during #DF');
});

test('reflectException merges with the exception queued (KVM_GET_VCPU_EVENTS): #PF over #PF is #DF(0), anything over #DF a shutdown', async (t) => {
  const { vm } = testVmm({});
  vm.injectException(0, { vector: 14, errorCode: 2, payload: 0x12_3000n });
  vm.reflectException(0, { vector: 14, errorCode: 3, payload: 0x45_6000n });
  t.like(await vm.perform(0, { op: 'exec', code: code(0x90) }), { stop: 'fault', fault: { vector: 8, errorCode: 0 } });
  // KVM_SET_VCPU_EVENTS takes triple_fault.pending only once the VM has KVM_CAP_X86_TRIPLE_FAULT_EVENT:
  // the VMM enables it when it needs it.
  t.is(vm.checkExtension(abi.KVM_CAP_X86_TRIPLE_FAULT_EVENT), 1);
  t.throws(() => vm.vcpu(0).vcpu.injectTripleFault(), { code: 'EINVAL', message: /KVM_CAP_X86_TRIPLE_FAULT_EVENT/ });
  vm.injectException(0, { vector: 8, errorCode: 0 });
  vm.reflectException(0, { vector: 14, errorCode: 3, payload: 0x45_6000n });
  t.like(await vm.perform(0, { op: 'exec', code: code(0x90) }), { stop: 'shutdown' });
});

/**
 * The guest points its #PF gate (IDT 0x9000 + 14·16) at its own handler at 0x100800 — add rsp, 8;
 * iretq — and stores to a write-denied page: the handler returns to the store, which faults again,
 * for ever. Then: mov [rbx], rax.
 */
const FAULT_LOOP = code(
  0x66, 0xc7, 0x04, 0x25, 0xe0, 0x90, 0x00, 0x00, 0x00, 0x08, // mov word [0x90e0], 0x0800
  0x66, 0xc7, 0x04, 0x25, 0xe6, 0x90, 0x00, 0x00, 0x10, 0x00, // mov word [0x90e6], 0x0010
  0xc7, 0x04, 0x25, 0x00, 0x08, 0x10, 0x00, 0x48, 0x83, 0xc4, 0x08, // mov dword [0x100800], add rsp,8 ; (iretq's REX)
  0x66, 0xc7, 0x04, 0x25, 0x04, 0x08, 0x10, 0x00, 0x48, 0xcf, // mov word [0x100804], iretq
  0x48, 0x89, 0x03, // mov [rbx], rax
);

for (const delivery of ['exit', 'inject'] as const) {
  test(`delivery "${delivery}": a guest that faults on a locked page for ever is ended by the request's limits, each denial recorded once`, async (t) => {
    const { vm, named } = testVmm({ profile: 'v3', memory: { delivery, protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } }, { budget: 20_000, maxExits: 500 });
    const r = (await vm.perform(0, { op: 'exec', code: FAULT_LOOP, regs: { rbx: 0x500000n, rax: 1n } })) as ExecResult;
    t.true(['exits', 'budget', 'time'].includes(r.stop), r.stop);
    const denials = named('memory_denial');
    t.true(denials.length > 100, `the loop ran (${denials.length} denials)`);
    t.true(denials.every((e) => e.fields.gpa === 0x500000n && e.fields.access === 'write' && e.fields.path === delivery));
    if (delivery === 'exit') {
      // Every exit the request took (answered, then the one over its limit) is one denial; no more.
      t.is(r.stop, 'exits');
      t.is(denials.length, r.exits.length);
      t.is(named('exit_unanswered').length, 1);
    }
    t.is(vm.memory.readBytes(0x500000, 1)[0], 0, 'nothing was written');
    t.like(await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 }), { value: 0xd01n }, 'the next request runs');
  });
}

/** Heki v2's KVM_HC_PROTECT_MEMORY list at LIST: one page, `page`, with MEM_ATTR_* `perms` (RFC v2: heki_page_list, next_pa 0). */
function hekiList(vm: ReturnType<typeof testVmm>['vm'], page: bigint, perms: bigint): void {
  const list = new DataView(new ArrayBuffer(48));
  list.setBigUint64(16, 1n, true); // npages
  list.setBigUint64(24, page, true); // pa
  list.setBigUint64(32, page + 0x1000n, true); // epa (exclusive)
  list.setBigUint64(40, perms, true);
  vm.memory.writeBytes(0x700000, new Uint8Array(list.buffer));
}

test('page tables rewritten to alias a locked frame: the store through the new writable mapping is refused at the second stage', async (t) => {
  const { vm, named } = testVmm({ profile: 'v3', memory: { protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } });
  const r = (await vm.perform(0, {
    op: 'exec',
    code: code(
      0x48, 0xc7, 0xc0, 0x63, 0x00, 0x50, 0x00, // mov rax, 0x500063 (the locked frame, P|RW|A|D)
      0x48, 0x89, 0x04, 0x25, 0xf8, 0x7f, 0x00, 0x00, // mov [0x7ff8], rax — PT0's entry for linear 0x1ff000
      0xbb, 0x00, 0xf0, 0x1f, 0x00, // mov ebx, 0x1ff000
      0x0f, 0x01, 0x3b, // invlpg [rbx]
      0x48, 0x89, 0x03, // mov [rbx], rax
    ),
  })) as ExecResult;
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, { vector: 14, errorCode: 3 });
  t.like(named('memory_denial')[0]?.fields, { gpa: 0x500000n, gva: 0x1ff000n, access: 'write' });
  t.deepEqual([...vm.memory.readBytes(0x500000, 8)], [0, 0, 0, 0, 0, 0, 0, 0]);
});

test('a write cached in the TLB before the guest\'s own Heki lock does not outlive it (no INVLPG in between)', async (t) => {
  const { vm, named } = testVmm({ profile: 'v2' });
  hekiList(vm, 0x800000n, abi.MEM_ATTR_READ);
  const r = (await vm.perform(0, {
    op: 'exec',
    regs: { rax: 0x55n, rcx: 0x800000n, rdx: 0x77n },
    code: code(
      0x88, 0x01, // mov [rcx], al — the TLB holds a write translation now
      0xb8, 0x0e, 0x00, 0x00, 0x00, // mov eax, 14 (KVM_HC_PROTECT_MEMORY)
      0xbb, 0x00, 0x00, 0x70, 0x00, // mov ebx, 0x700000
      0x0f, 0x01, 0xc1, // vmcall
      0x88, 0x11, // mov [rcx], dl
    ),
  })) as ExecResult;
  t.is(r.regs.rax, 0n, 'the lock was taken');
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, { vector: 14, errorCode: 3 });
  t.is(vm.memory.readBytes(0x800000, 1)[0], 0x55);
  t.like(named('memory_denial')[0]?.fields, { gpa: 0x800000n, access: 'write', path: 'inject' });
});

test('code run hot (translated) before the guest locks its page non-executable (v2, MBEC) does not run again after', async (t) => {
  // Without MBEC, v2 puts EXEC back (docs/memory-protection.md §5): the lock takes execute only with it.
  const { vm, named } = testVmm({ profile: 'v2', memory: { mbec: true } });
  hekiList(vm, 0x101000n, abi.MEM_ATTR_READ);
  vm.memory.writeBytes(0x101000, Uint8Array.of(0xc3)); // ret
  const r = (await vm.perform(0, {
    op: 'exec',
    code: code(
      0xb9, 0xc8, 0x00, 0x00, 0x00, // mov ecx, 200
      0xe8, 0xf6, 0x0f, 0x00, 0x00, // call 0x101000
      0xe2, 0xf9, // loop (to the call)
      0xb8, 0x0e, 0x00, 0x00, 0x00, // mov eax, 14 (KVM_HC_PROTECT_MEMORY)
      0xbb, 0x00, 0x00, 0x70, 0x00, // mov ebx, 0x700000
      0x0f, 0x01, 0xc1, // vmcall
      0xe8, 0xe2, 0x0f, 0x00, 0x00, // call 0x101000
    ),
  })) as ExecResult;
  t.is(r.regs.rax, 0n, 'the lock was taken');
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, { vector: 14, errorCode: 0x11 });
  t.is(r.regs.rip, 0x101000n, 'refused at the locked page');
  t.like(named('memory_denial')[0]?.fields, { gpa: 0x101000n, gva: 0x101000n, access: 'fetch' });
});

test('a triple fault under the default onShutdown (reboot) keeps the guest\'s Heki lock: the vCPU is booted again, the VM is not', async (t) => {
  const { vm } = testVmm({ profile: 'v2' });
  hekiList(vm, 0x800000n, abi.MEM_ATTR_READ);
  t.like(await vm.perform(0, { op: 'hypercall', nr: 14n, args: [0x700000n] }), { ret: 0n });
  // lidt to a zero-limit IDT, then ud2: #UD → #DF → triple fault.
  t.like(await vm.perform(0, { op: 'exec', code: code(0x0f, 0x01, 0x1b, 0x0f, 0x0b), regs: { rbx: 0x600800n } }), { stop: 'shutdown' });
  const r = (await vm.perform(0, { op: 'exec', code: code(0x88, 0x01), regs: { rcx: 0x800000n, rax: 1n } })) as ExecResult;
  t.is(r.stop, 'fault');
  t.is(vm.memory.readBytes(0x800000, 1)[0], 0);
});

/** Stores by other paths than MOV, each aimed at a write-denied page (RBX, RDI and RSP point into it). */
const OTHER_WRITES: Record<string, number[]> = {
  'sgdt [rbx]': [0x0f, 0x01, 0x03],
  'sidt [rbx]': [0x0f, 0x01, 0x0b],
  'smsw [rbx]': [0x0f, 0x01, 0x23],
  'rep stosb': [0xf3, 0xaa],
  'movsq': [0x48, 0xa5],
  'lock cmpxchg [rbx], rcx': [0xf0, 0x48, 0x0f, 0xb1, 0x0b],
  'lock cmpxchg16b [rbx]': [0xf0, 0x48, 0x0f, 0xc7, 0x0b],
  'xchg [rbx], rax': [0x48, 0x87, 0x03],
  'add [rbx], rax': [0x48, 0x01, 0x03],
  'bts qword [rbx], 0': [0x48, 0x0f, 0xba, 0x2b, 0x00],
  'xadd [rbx], rax': [0x48, 0x0f, 0xc1, 0x03],
  'push rax': [0x50],
  'call $+5': [0xe8, 0x00, 0x00, 0x00, 0x00],
  'pushfq': [0x9c],
  'enter 16, 0': [0xc8, 0x10, 0x00, 0x00],
};

for (const delivery of ['exit', 'inject'] as const) {
  test(`delivery "${delivery}": SGDT/SIDT/SMSW, string ops, CMPXCHG(16B), XCHG, RMW, PUSH, CALL and ENTER cannot write a write-denied page`, async (t) => {
    for (const [name, bytes] of Object.entries(OTHER_WRITES)) {
      const { vm, named } = testVmm({ profile: 'v3', memory: { delivery, protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } });
      const regs = { rbx: 0x500100n, rdi: 0x500100n, rsi: 0x600000n, rsp: 0x500100n, rcx: 16n, rax: 0x1234n, rdx: 0n };
      const r = (await vm.perform(0, { op: 'exec', code: code(...bytes), regs })) as ExecResult;
      t.is(r.stop, 'fault', name);
      t.is(r.fault?.vector, 14, name);
      t.deepEqual([...vm.memory.readBytes(0x500000, 0x1000)].filter((b) => b !== 0), [], `${name}: nothing written`);
      t.like(named('memory_denial')[0]?.fields, { gpa: 0x500000n, access: 'write', path: delivery }, name);
    }
  });
}

/**
 * The #DF gate moved to IST2 on a write-denied page, the #PF gate made not present, then a #PF:
 * #PF → #NP (the gate) → #DF, whose push is the first access refused — and, under inject, KVM
 * turns it into a triple fault in the same KVM_RUN (kvm_multiple_exception()).
 */
const DF_ON_DENIED_STACK = code(
  0xc6, 0x04, 0x25, 0x84, 0x90, 0x00, 0x00, 0x02, // mov byte [0x9084], 2 — #DF gate: IST2
  0xc7, 0x04, 0x25, 0x2c, 0xa0, 0x00, 0x00, 0x00, 0x10, 0x50, 0x00, // mov dword [0xa02c], 0x501000 — TSS.IST2
  0xc6, 0x04, 0x25, 0xe5, 0x90, 0x00, 0x00, 0x0e, // mov byte [0x90e5], 0x0e — #PF gate not present
  0x8a, 0x04, 0x25, 0x00, 0x00, 0x00, 0x00, // mov al, [0]
);

for (const delivery of ['exit', 'inject'] as const) {
  test(`delivery "${delivery}", onViolation "kill": a denial that ends in a triple fault still fails the operation vm_killed`, async (t) => {
    const { vm, named } = testVmm({ profile: 'v3', memory: { delivery, onViolation: 'kill', protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } });
    const e = await t.throwsAsync(vm.perform(0, { op: 'exec', code: DF_ON_DENIED_STACK }));
    t.is((e as { code?: string }).code, 'vm_killed');
    t.regex(e!.message, /write at GPA 0x500000/);
    t.is(named('memory_denial').length, 1);
    t.is(vm.runState, 'killed');
  });
}

test('delivery "inject", onViolation "pause": a denial whose #PF ends in a triple fault in the same KVM_RUN holds the shutdown until resumed', async (t) => {
  const { vm, named } = testVmm({ profile: 'v3', memory: { delivery: 'inject', onViolation: 'pause', protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } });
  let done = false;
  const pending = vm.perform(0, { op: 'exec', code: DF_ON_DENIED_STACK }).then((r) => {
    done = true;
    return r as ExecResult;
  });
  for (let i = 0; i < 20 && vm.runState !== 'paused'; i++) await new Promise((r) => setImmediate(r));
  t.is(vm.runState, 'paused');
  for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
  t.false(done, 'the operation waits for the resume, shutdown and all');
  vm.resume();
  const r = await pending;
  t.is(r.stop, 'shutdown');
  t.is(named('memory_denial').length, 1);
});
