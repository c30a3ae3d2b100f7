/**
 * Accesses a memory protection refused, as the VMM sees them (docs/memory-protection.md, "The
 * VMM"; the contract of issue 15 §2–3): one memory_denial per denial by either delivery path, the
 * policy's onViolation, and what the guest sees — the #PF KVM would have injected: error code
 * W|P = 3 for a store to a readable page (__vmx_handle_ept_violation()), CR2 the linear address
 * (vmx_fault_gva()).
 */
import test from 'ava';
import { PF_VECTOR } from '../../protocol/abi.js';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLog, parsePolicy, readTrace, TraceWriter, Vmm } from '../../host/vmm/index.js';
import { code, testVmm } from './vmm-support.js';

type ExecResult = { stop: string; regs: Record<string, bigint>; fault?: unknown; exits: { reason: string; memory?: Record<string, unknown> }[] };

const KERNEL_SLOT = 0x100000n;
const LOCKED = 0x500000n;
/** mov [rbx], rax */
const STORE = code(0x48, 0x89, 0x03);
const WP_STORE_FAULT = { vector: PF_VECTOR, errorCode: 3 };

function policy(extra: Record<string, unknown> = {}, profile: 'v2' | 'v3' = 'v3'): unknown {
  return { profile, memory: { protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'], name: 'data' }], ...extra } };
}

test('delivery "exit", onViolation "log": the exit is listed, recorded once, and the guest takes the #PF KVM would have injected', async (t) => {
  const { vm, named } = testVmm(policy());
  const r = (await vm.perform(0, { op: 'exec', code: STORE, regs: { rbx: LOCKED + 8n, rax: 7n } })) as ExecResult;
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, WP_STORE_FAULT);
  t.is(r.regs.rip, KERNEL_SLOT, 'the store did not retire');
  t.is(vm.getSregs(0).cr2, LOCKED + 8n);
  t.is(r.exits.length, 1);
  t.like(r.exits[0], { reason: 'KVM_EXIT_MEMORY_FAULT', memory: { gpa: LOCKED, gva: LOCKED + 8n, access: 'write' } });
  const events = named('memory_denial');
  t.is(events.length, 1);
  t.like(events[0], { vcpu: 0, rip: KERNEL_SLOT });
  t.like(events[0]?.fields, { gpa: LOCKED, gva: LOCKED + 8n, access: 'write', path: 'exit', action: 'log', name: 'data' });
  t.is(events[0]?.fields.qualification, r.exits[0]?.memory?.qualification as number);
  t.is(vm.memory.readBytes(Number(LOCKED + 8n), 1)[0], 0, 'nothing was written');
});

test('delivery "inject" (the v2 default): no exit, KVM\'s own #PF, and one memory_denial with path "inject" from its trace', async (t) => {
  const { vm, named } = testVmm(policy({}, 'v2'));
  const r = (await vm.perform(0, { op: 'exec', code: STORE, regs: { rbx: LOCKED + 16n, rax: 7n } })) as ExecResult;
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, WP_STORE_FAULT);
  t.deepEqual(r.exits, []);
  t.is(vm.getSregs(0).cr2, LOCKED + 16n);
  const events = named('memory_denial');
  t.is(events.length, 1);
  t.like(events[0], { vcpu: 0, rip: KERNEL_SLOT });
  t.like(events[0]?.fields, { gpa: LOCKED, gva: LOCKED + 16n, access: 'write', path: 'inject', action: 'log', name: 'data' });
});

test('both paths leave the guest in the same state: same fault, same CR2, same registers', async (t) => {
  const exit = testVmm(policy({ delivery: 'exit' })).vm;
  const inject = testVmm(policy({ delivery: 'inject' })).vm;
  const request = { op: 'exec', code: STORE, regs: { rbx: LOCKED + 0x18n, rax: 9n } };
  const a = (await exit.perform(0, request)) as ExecResult;
  const b = (await inject.perform(0, request)) as ExecResult;
  t.deepEqual(a.fault, b.fault);
  t.deepEqual(a.regs, b.regs);
  t.is(exit.getSregs(0).cr2, inject.getSregs(0).cr2);
});

for (const delivery of ['exit', 'inject'] as const) {
  test(`delivery "${delivery}", onViolation "pause": the VM pauses before the guest runs on; resumed, the guest takes the #PF`, async (t) => {
    const { vm, named } = testVmm(policy({ delivery, onViolation: 'pause' }));
    let done = false;
    const pending = vm.perform(0, { op: 'exec', code: STORE, regs: { rbx: LOCKED, rax: 1n } }).then((r) => {
      done = true;
      return r as ExecResult;
    });
    for (let i = 0; i < 20 && vm.runState !== 'paused'; i++) await new Promise((r) => setImmediate(r));
    t.is(vm.runState, 'paused');
    t.false(done);
    t.is(vm.getRegs(0).rip, KERNEL_SLOT, 'stopped at the store: the guest did not run on into its #PF handler');
    t.is(named('vm_paused')[0]?.fields.cause, 'memory_denial');
    t.like(named('memory_denial')[0]?.fields, { path: delivery, action: 'pause' });
    vm.resume();
    const r = await pending;
    t.is(r.stop, 'fault');
    t.deepEqual(r.fault, WP_STORE_FAULT);
    t.is(named('memory_denial').length, 1);
  });

  test(`delivery "${delivery}", onViolation "kill": the operation fails vm_killed naming the GPA and the access`, async (t) => {
    const { vm, named } = testVmm(policy({ delivery, onViolation: 'kill' }));
    // A second store after the first: it would be a second denial if the guest ran on.
    const twice = code(0x48, 0x89, 0x03, 0x48, 0x89, 0x43, 0x08);
    const e = await t.throwsAsync(vm.perform(0, { op: 'exec', code: twice, regs: { rbx: LOCKED, rax: 1n } }));
    t.is((e as { code?: string }).code, 'vm_killed');
    t.regex(e!.message, /write at GPA 0x500000 \("data"\).*memory\.onViolation "kill"/);
    t.is(named('vm_killed')[0]?.fields.cause, 'memory_denial');
    t.is(named('memory_denial').length, 1);
    t.like(named('memory_denial')[0]?.fields, { path: delivery, action: 'kill' });
    await t.throwsAsync(vm.perform(0, { op: 'rdmsr', index: 0x10 }), { message: /killed/ });
  });
}

test('an exit past the request\'s --max-exits is still recorded as memory_denial, and onViolation still applies', async (t) => {
  const { vm, named } = testVmm(policy({ onViolation: 'pause' }), { maxExits: 1 });
  // out 0x80, al (an exit, answered) ; mov [rbx], rax (the second exit: over the limit)
  const r = (await vm.perform(0, { op: 'exec', code: code(0xe6, 0x80, 0x48, 0x89, 0x03), regs: { rbx: LOCKED } })) as ExecResult;
  t.is(r.stop, 'exits');
  t.like(named('memory_denial')[0]?.fields, { path: 'exit', action: 'pause' });
  t.is(named('exit_unanswered')[0]?.fields.reason, 'KVM_EXIT_MEMORY_FAULT');
  t.is(vm.runState, 'paused');
});

test('with no subscriber for memory_denial, onViolation still acts on an injected denial', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy(policy({ delivery: 'inject', onViolation: 'kill' })), log: new EventLog({ record: ['vm_created'] }) });
  const vm = vmm.vm();
  t.false(vmm.log.wants('memory_denial', vm.name));
  const e = await t.throwsAsync(vm.perform(0, { op: 'exec', code: STORE, regs: { rbx: LOCKED } }));
  t.is((e as { code?: string }).code, 'vm_killed');
});

test('the trace file carries each denial once, by either path, when the request is answered', async (t) => {
  for (const delivery of ['exit', 'inject'] as const) {
    const path = join(mkdtempSync(join(tmpdir(), 'pinbox-mem-')), 'trace.jsonl');
    const trace = TraceWriter.open(path, { bufferBytes: 1 << 20 });
    const vmm = new Vmm({ policy: parsePolicy(policy({ delivery })), log: new EventLog({ capacity: 0 }), trace });
    await vmm.vm().perform(0, { op: 'exec', code: STORE, regs: { rbx: LOCKED + 0x20n } });
    const denials = readTrace(readFileSync(path, 'utf8')).events.filter((e) => e.name === 'memory_denial');
    t.is(denials.length, 1, delivery);
    t.like(denials[0], { vcpu: 0, rip: KERNEL_SLOT, fields: { gpa: LOCKED, gva: LOCKED + 0x20n, access: 'write', path: delivery, action: 'log', name: 'data' } });
    vmm.close();
  }
});

test('KvmVcpu.injectException (KVM_SET_VCPU_EVENTS): the #PF is delivered at the next KVM_RUN with its error code and CR2; NMI and bad vectors are EINVAL', async (t) => {
  const { vm } = testVmm({});
  vm.injectException(0, { vector: PF_VECTOR, errorCode: 3, payload: 0x12_3008n });
  const r = (await vm.perform(0, { op: 'exec', code: code(0x90) })) as ExecResult;
  t.is(r.stop, 'fault');
  t.deepEqual(r.fault, WP_STORE_FAULT);
  t.is(r.regs.rip, KERNEL_SLOT, 'delivered before the first instruction');
  t.is(vm.getSregs(0).cr2, 0x12_3008n);
  for (const vector of [2, 32, -1, 1.5]) t.throws(() => vm.injectException(0, { vector }), { code: 'EINVAL' }, String(vector));
  t.throws(() => vm.injectException(0, { vector: 14, errorCode: 2 ** 32 }), { code: 'EINVAL', message: /error_code/ });
  t.throws(() => vm.injectException(0, { vector: 14, payload: 1n << 64n }), { code: 'EINVAL', message: /payload/ });
});
