/**
 * The VMM's event log: KVM's tracepoints listened to only while someone wants their events,
 * mirrored with the kernel's names, VM, vCPU and RIP; the default ring; the trace written out
 * before an answer is handed back, and a trace that cannot be written failing the request.
 */
import test from 'ava';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KVM_EXIT_HLT } from '../../protocol/abi.js';
import { EventLog, parsePolicy, readTrace, TraceWriter, Vmm, type Event } from '../../host/vmm/index.js';

const EFER = 0xc0000080;
const rdmsr = { op: 'rdmsr', index: EFER };

test('KVM\'s tracepoints are listened to only while the log wants their events', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}) });
  const vm = vmm.vm();
  await vm.perform(0, rdmsr);
  t.false(vm.kvm.model!.tracepoints.active, 'the default ring takes none of the per-instruction mirrors');
  const got: Event[] = [];
  const off = vmm.log.subscribe({ names: ['kvm_msr', 'kvm_exit'], completions: true }, (e) => got.push(e));
  await vm.perform(0, rdmsr);
  t.true(vm.kvm.model!.tracepoints.active);
  t.deepEqual(got.map((e) => [e.name, e.name === 'kvm_exit' ? e.fields.exit_reason : e.fields.ecx]), [
    ['kvm_exit', 'MSR_READ'], ['kvm_msr', EFER], ['kvm_exit', 'HLT'],
  ]);
  t.like(got[1], { vm: 'default', vcpu: 0, fields: { write: false, data: 0xd01n, exception: false } });
  t.is(got[1]!.rip, got[0]!.rip, 'kvm_msr carries the RIP of its intercept');
  off();
  await vm.perform(0, rdmsr);
  t.false(vm.kvm.model!.tracepoints.active);
});

test('the HLT that ends each operation in the VMM\'s code is a completion, left out unless asked for; a guest\'s own HLT is not', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}) });
  const vm = vmm.vm();
  const plain: Event[] = [];
  const all: Event[] = [];
  vmm.log.subscribe({ names: ['kvm_exit', 'kvm_userspace_exit'] }, (e) => plain.push(e));
  vmm.log.subscribe({ names: ['kvm_exit', 'kvm_userspace_exit'], completions: true }, (e) => all.push(e));
  const shape = (events: Event[]): unknown[] => events.map((e) => e.fields.exit_reason);
  await vm.perform(0, rdmsr);
  await vm.perform(0, { op: 'readCr', cr: 4, cpl: 3 });
  await vm.perform(0, { op: 'exec', code: Uint8Array.of(0x90) }); // runs off its end into the VMM's epilogue HLT
  t.deepEqual(shape(plain), ['MSR_READ']);
  // MSR_READ, then its HLT (kvm_exit HLT, kvm_userspace_exit KVM_EXIT_HLT); the CPL3 MOV from CR4
  // faults (#GP) in the guest without an exit, then the done gate's HLT; exec's epilogue HLT.
  t.deepEqual(shape(all), ['MSR_READ', 'HLT', KVM_EXIT_HLT, 'HLT', KVM_EXIT_HLT, 'HLT', KVM_EXIT_HLT]);
  plain.length = 0;
  await vm.perform(0, { op: 'exec', code: Uint8Array.of(0xf4) }); // the guest's own HLT is news
  t.deepEqual(plain.map((e) => e.name), ['kvm_exit', 'kvm_userspace_exit']);
  t.like(plain[1], { fields: { reason: 'KVM_EXIT_HLT' } });
});

test('the default ring keeps the VMM\'s own events, not the tracepoint mirrors; recordTracepoints keeps both', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}) });
  const vm = vmm.vm();
  await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, 0x100000n] });
  const names = vmm.log.since(0n, 100).events.map((e) => e.name);
  t.deepEqual(names, ['vm_created', 'vcpu_init', 'heki_configure']);
  const all = new Vmm({ policy: parsePolicy({}), recordTracepoints: true });
  await all.vm().perform(0, rdmsr);
  t.true(all.log.since(0n, 100).events.some((e) => e.name === 'kvm_exit'));
});

test('the trace holds an operation\'s events when its answer arrives', async (t) => {
  const path = join(mkdtempSync(join(tmpdir(), 'pinbox-ev-')), 'trace.jsonl');
  const trace = TraceWriter.open(path, { bufferBytes: 1 << 20 });
  const vmm = new Vmm({ policy: parsePolicy({}), log: new EventLog({ capacity: 0 }), trace });
  const vm = vmm.vm();
  await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, 0x100000n] });
  const cr4 = ((await vm.perform(0, { op: 'readCr', cr: 4 })) as { value: bigint }).value;
  await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4 & ~0x100000n });
  const events = readTrace(readFileSync(path, 'utf8')).events;
  t.like(events.find((e) => e.name === 'heki_denial'), { fields: { cr: 4, cr_value: cr4 & ~0x100000n, path: 'exit' } });
  t.true(events.some((e) => e.name === 'kvm_cr'), 'a trace takes every event, tracepoint mirrors too');
});

test('a request whose events cannot be written to the trace fails rather than be answered', async (t) => {
  const trace = TraceWriter.open('/dev/full', { bufferBytes: 1 << 20 });
  const vmm = new Vmm({ policy: parsePolicy({}), trace });
  await t.throwsAsync(vmm.vm().perform(0, rdmsr), { name: 'TraceWriteError', message: /\/dev\/full/ });
});

test('kvm_pio: an IN is traced when it completes, with the value the guest received; an OUT as it leaves', async (t) => {
  const vmm = new Vmm({ policy: parsePolicy({}) });
  const got: Event[] = [];
  vmm.log.subscribe({ names: ['kvm_pio', 'kvm_userspace_exit'] }, (e) => got.push(e));
  // in al, 0x80 ; mov al, 0x5a ; out 0x80, al. The VMM reads all-ones for an IN (README).
  const r = await vmm.vm().perform(0, { op: 'exec', code: Uint8Array.of(0xe4, 0x80, 0xb0, 0x5a, 0xe6, 0x80) }) as { regs: { rax: bigint } };
  t.is(r.regs.rax & 0xffn, 0x5an);
  const shape = got.filter((e) => e.fields.reason !== 'KVM_EXIT_HLT').map((e) => e.name === 'kvm_pio' ? `pio rw=${e.fields.rw} port=${e.fields.port} val=${e.fields.val}` : `exit ${e.fields.reason}`);
  // complete_emulator_pio_in() traces after user space answered (arch/x86/kvm/x86.c).
  t.deepEqual(shape, ['exit KVM_EXIT_IO', 'pio rw=0 port=128 val=255', 'pio rw=1 port=128 val=90', 'exit KVM_EXIT_IO']);
});
