/**
 * `pinbox trace` (issue 11 #13) on a trace a VMM wrote: trace-cmd text, whose tracepoint lines
 * read as the kernel's TP_printk() formats print them (arch/x86/kvm/trace.h,
 * include/trace/events/kvm.h), and Chrome trace-event JSON as the format defines it (ph, ts in
 * µs, pid, tid, name, args; "X" slices with dur, "M" metadata naming processes and threads).
 */
import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EventLog, parsePolicy, TraceWriter, Vmm } from '../../host/vmm/index.js';
import { pinbox } from './cli-support.js';

const dir = mkdtempSync(join(tmpdir(), 'pinbox-trace-cmd-'));
const tracePath = join(dir, 'trace.jsonl');

test.before(async () => {
  const trace = TraceWriter.open(tracePath);
  const vmm = new Vmm({
    policy: parsePolicy({ name: 'harden', msrFilter: { default: 'allow', deny: [{ msr: '0x10', access: 'read' }] }, msrHandlers: { '0x10': { read: '0x99' } } }),
    log: new EventLog({ capacity: 0 }),
    trace,
  });
  const vm = vmm.vm();
  await vm.perform(0, { op: 'rdmsr', index: 0xc0000080 });
  await vm.perform(0, { op: 'rdmsr', index: 0x10 });
  await vm.perform(0, { op: 'hypercall', nr: 13n, args: [4n, 0x100000n] });
  const cr4 = ((await vm.perform(0, { op: 'readCr', cr: 4 })) as { value: bigint }).value;
  await vm.perform(0, { op: 'writeCr', cr: 4, value: cr4 & ~0x100000n });
  await vm.perform(0, { op: 'exec', code: Uint8Array.of(0xe4, 0x80) }); // in al, 0x80
  vmm.close();
  trace.close();
});

test('text: one line per event, tracepoints as the kernel prints them', async (t) => {
  const r = await pinbox(['trace', tracePath]);
  t.is(r.code, 0, r.err);
  const lines = r.out.split('\n').filter((l) => l !== '');
  t.is(lines.length, readFileSync(tracePath, 'utf8').trim().split('\n').length);
  const want = [
    /^ +harden\/vcpu0 \[000\] +\d+\.\d{6}: kvm_exit: vcpu 0 reason MSR_READ rip 0x[0-9a-f]+$/,
    /^ +harden\/vcpu0 \[000\] +\d+\.\d{6}: kvm_msr: msr_read c0000080 = 0xd01$/,
    /: kvm_userspace_exit: reason X86_RDMSR \(29\)$/,
    /: msr_exit_reply: write=false index=0x10 reason=filter data=0x99 error=0 source=value$/,
    /: kvm_hypercall: nr 0xd a0 0x4 a1 0x100000 a2 0x0 a3 0x0/,
    /: kvm_cr: cr_write 4 = 0x[0-9a-f]+$/,
    /: kvm_inj_exception: #GP \(0x0\)$/,
    /: kvm_pio: pio_read at 0x80 size 1 count 1 val 0xff$/,
    /^ +harden \[---\] +\d+\.\d{6}: vm_created: vcpus=1 memory=16777216 profile=v2$/,
  ];
  for (const re of want) t.true(lines.some((l) => re.test(l)), String(re));
  const out = join(dir, 'trace.txt');
  t.is((await pinbox(['trace', tracePath, '--output', out])).out, '');
  t.is(readFileSync(out, 'utf8'), r.out);
});

interface ChromeEvent { name: string; ph: string; ts: number; pid: number; tid: number; dur?: number; s?: string; args: Record<string, unknown> }

test('chrome: trace-event JSON with VMs as processes, vCPUs as threads, exits and user-space handling as nested slices', async (t) => {
  const r = await pinbox(['trace', tracePath, '--format', 'chrome']);
  t.is(r.code, 0, r.err);
  const { traceEvents, displayTimeUnit } = JSON.parse(r.out) as { traceEvents: ChromeEvent[]; displayTimeUnit: string };
  t.is(displayTimeUnit, 'ns');
  for (const e of traceEvents) {
    t.true(typeof e.name === 'string' && ['X', 'i', 'M'].includes(e.ph) && typeof e.ts === 'number' && Number.isInteger(e.pid) && Number.isInteger(e.tid), JSON.stringify(e));
    if (e.ph === 'X') t.true(typeof e.dur === 'number' && e.dur >= 0);
    if (e.ph === 'i') t.true(e.s === 't' || e.s === 'p');
  }
  const vm = traceEvents.find((e) => e.ph === 'M' && e.name === 'process_name' && e.args.name === 'VM "harden"')!;
  t.truthy(vm);
  t.truthy(traceEvents.find((e) => e.ph === 'M' && e.name === 'thread_name' && e.pid === vm.pid && e.tid === 0 && e.args.name === 'vCPU 0'));
  const exit = traceEvents.find((e) => e.ph === 'X' && e.name === 'exit MSR_READ' && e.args.rip !== undefined && traceEvents.some((u) => u.name === 'user space KVM_EXIT_X86_RDMSR' && u.ts >= e.ts && u.ts <= e.ts + e.dur!))!;
  t.truthy(exit, 'the filtered RDMSR: an exit slice with a user-space slice inside it');
  const user = traceEvents.find((u) => u.name === 'user space KVM_EXIT_X86_RDMSR' && u.ts >= exit.ts)!;
  t.true(user.ts + user.dur! <= exit.ts + exit.dur!, 'nested');
  const reply = traceEvents.find((e) => e.name === 'msr_exit_reply')!;
  t.like(reply, { ph: 'i', s: 't', pid: vm.pid, tid: 0, args: { index: '0x10', data: '0x99', error: 0 } });
  t.true(reply.ts >= user.ts && reply.ts <= user.ts + user.dur!, 'the VMM\'s answer lies in the user-space slice');
  // Time in µs: the first event's ts is its time in ns / 1000.
  const first = JSON.parse(readFileSync(tracePath, 'utf8').split('\n')[0]!) as { time: number; name: string };
  t.is(traceEvents.find((e) => e.ph !== 'M')!.ts, first.time / 1000);
});

test('a file that is not a trace is exit 2, named; a trace cut short is read to its last whole line', async (t) => {
  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, '{"seq":1}\n');
  const r = await pinbox(['trace', bad]);
  t.is(r.code, 2);
  t.regex(r.err, /^pinbox trace: .*bad\.jsonl is not a pinbox trace: line 1: /);
  const cut = join(dir, 'cut.jsonl');
  const text = readFileSync(tracePath, 'utf8');
  writeFileSync(cut, text.slice(0, text.indexOf('\n') + 10));
  const c = await pinbox(['trace', cut]);
  t.is(c.code, 0);
  t.is(c.out.split('\n').filter((l) => l !== '').length, 1);
  t.regex(c.err, /ends in a partial line/);
});
