/**
 * A hostile guest against the VMM's memory side (issue 15 review): what a guest kernel with code
 * execution can do to a memory protection, and to the VMM that answers its denials. Expectations
 * from the SDM (vol. 3A table 6-5, double faults; §6.15) and KVM's kvm_multiple_exception(): a
 * #PF whose delivery meets another #PF becomes #DF, and one that meets #DF a triple fault — on the
 * inject path KVM merges the events itself, and a VMM that answers KVM_EXIT_MEMORY_FAULT must
 * leave the guest in the same state (the contract of issue 15 §3).
 */
import test from 'ava';
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
  vm.injectException(0, { vector: 8, errorCode: 0 });
  vm.reflectException(0, { vector: 14, errorCode: 3, payload: 0x45_6000n });
  t.like(await vm.perform(0, { op: 'exec', code: code(0x90) }), { stop: 'shutdown' });
});
