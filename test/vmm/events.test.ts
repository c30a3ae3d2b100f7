import test from 'ava';
import {
  EVENT_CATALOGUE, EVENT_NAMES, eventProblems, EventLog, type Event, type EventName,
} from '../../host/vmm/events/index.js';

/** A clock that advances 10 ns per reading, from 1000. */
function fakeClock(): () => bigint {
  let now = 1000n;
  return () => (now += 10n);
}

const msr = (ecx: number) => ({ write: false, ecx, data: 0n, exception: false });

test('events get consecutive seq numbers and the time since the log was created', (t) => {
  const log = new EventLog({ clock: fakeClock() });
  const a = log.emit('kvm_msr', 'vm1', msr(0x10), 0, 0x100000n)!;
  const b = log.emit('vm_created', 'vm1', { vcpus: 1, memory: 16n << 20n, profile: 'v2' })!;
  const c = log.emit('vcpu_init', 'vm1', { cause: 'create' }, 1)!;
  t.deepEqual([a.seq, b.seq, c.seq], [0n, 1n, 2n]);
  // epoch read at 1010; the events read 1020, 1030, 1040
  t.deepEqual([a.time, b.time, c.time], [10n, 20n, 30n]);
  t.deepEqual(a, { seq: 0n, time: 10n, name: 'kvm_msr', vm: 'vm1', vcpu: 0, rip: 0x100000n, fields: msr(0x10) });
  t.false('vcpu' in b || 'rip' in b, 'absent vcpu and rip are absent keys, as the protocol has them optional');
  t.deepEqual(Object.keys(c), ['seq', 'time', 'name', 'vm', 'vcpu', 'fields']);
  t.is(log.nextSeq, 3n);
});

test('the real clock is monotonic nanoseconds', (t) => {
  const log = new EventLog();
  const times: bigint[] = [];
  for (let i = 0; i < 100; i++) times.push(log.emit('vcpu_halted', 'v', {})!.time);
  t.true(times.every((x, i) => i === 0 || x >= times[i - 1]!));
  t.true(times[0]! >= 0n && times[99]! < 10_000_000_000n);
});

test('the ring keeps the newest events and since() says when older ones were dropped', (t) => {
  const log = new EventLog({ capacity: 3, clock: fakeClock() });
  for (let i = 0; i < 5; i++) log.emit('kvm_msr', 'v', msr(i));
  const all = log.since(0n);
  t.deepEqual(all.events.map((e) => e.seq), [2n, 3n, 4n]);
  t.true(all.dropped);
  t.is(all.oldest, 2n);
  t.is(all.next, 5n);
  t.false(log.since(2n).dropped);
  t.true(log.since(1n).dropped);
  t.deepEqual(log.since(4n).events.map((e) => e.fields.ecx), [4]);
  t.deepEqual(log.since(5n), { events: [], next: 5n, dropped: false, oldest: 2n });
  t.deepEqual(log.since(50n), { events: [], next: 50n, dropped: false, oldest: 2n }, 'a future since waits there');
});

test('since() pages with a limit and filters by VM and names; next skips what was examined', (t) => {
  const log = new EventLog({ clock: fakeClock() });
  for (let i = 0; i < 10; i++) {
    log.emit('kvm_msr', i % 2 === 0 ? 'a' : 'b', msr(i));
    log.emit('kvm_cr', 'a', { rw: 1, cr: 4, val: BigInt(i) });
  }
  const page1 = log.since(0n, 3);
  t.deepEqual(page1.events.map((e) => e.seq), [0n, 1n, 2n]);
  t.is(page1.next, 3n);
  const page2 = log.since(page1.next, 3);
  t.deepEqual(page2.events.map((e) => e.seq), [3n, 4n, 5n]);
  const bMsrs = log.since(0n, 2, { vm: 'b', names: ['kvm_msr'] });
  t.deepEqual(bMsrs.events.map((e) => e.fields.ecx), [1, 3]);
  t.is(bMsrs.next, 7n, 'continues after the last event it returned');
  const rest = log.since(bMsrs.next, 100, { vm: 'b', names: ['kvm_msr'] });
  t.deepEqual(rest.events.map((e) => e.fields.ecx), [5, 7, 9]);
  t.is(rest.next, 20n, 'everything was examined');
  t.throws(() => log.since(0n, 0), { instanceOf: RangeError });
  t.throws(() => log.since(0n, 10_001), { instanceOf: RangeError });
});

test('subscribers get matching events synchronously; unsubscribing stops them', (t) => {
  const log = new EventLog({ capacity: 0 });
  const got: string[] = [];
  const offA = log.subscribe({ vm: 'a' }, (e) => got.push(`a:${e.name}`));
  log.subscribe({ names: ['heki_denial'] }, (e) => got.push(`denial:${e.vm}`));
  log.emit('kvm_msr', 'a', msr(1));
  log.emit('kvm_msr', 'b', msr(1));
  log.emit('heki_denial', 'b', { reason: 2, cr: 4, cr_value: 0x6f0n, path: 'exit', action: 'log' });
  t.deepEqual(got, ['a:kvm_msr', 'denial:b']);
  offA();
  offA();
  log.emit('kvm_msr', 'a', msr(2));
  t.deepEqual(got, ['a:kvm_msr', 'denial:b']);
});

test('a throwing listener neither stops the others nor the emitter; unsubscribing mid-dispatch is safe', (t) => {
  const errors: string[] = [];
  const log = new EventLog({ onListenerError: (e, event) => errors.push(`${String(e)} on ${event.name}`) });
  const got: number[] = [];
  let off2: () => void = () => {};
  log.subscribe({}, () => {
    off2();
    throw new Error('boom');
  });
  off2 = log.subscribe({}, () => got.push(2));
  log.subscribe({}, () => got.push(3));
  t.notThrows(() => log.emit('vcpu_halted', 'v', {}));
  t.deepEqual(got, [2, 3], 'this dispatch still reaches the listener removed during it');
  log.emit('vcpu_halted', 'v', {});
  t.deepEqual(got, [2, 3, 3]);
  t.deepEqual(errors, ['Error: boom on vcpu_halted', 'Error: boom on vcpu_halted']);
});

test('wants() is false when nothing would take the event, and then emit builds nothing', (t) => {
  const log = new EventLog({ capacity: 0 });
  for (const name of EVENT_NAMES) t.false(log.wants(name, 'v'));
  t.is(log.emit('kvm_msr', 'v', msr(1)), undefined);
  t.is(log.nextSeq, 0n, 'an unwanted event takes no seq');

  const off = log.subscribe({ vm: 'a', names: ['kvm_msr'] }, () => {});
  t.true(log.wants('kvm_msr', 'a'));
  t.false(log.wants('kvm_msr', 'b'));
  t.false(log.wants('kvm_cr', 'a'));
  const off2 = log.subscribe({ names: ['kvm_cr'] }, () => {});
  t.true(log.wants('kvm_cr', 'b'));
  off();
  off2();
  t.false(log.wants('kvm_msr', 'a'));

  const recording = new EventLog({ record: ['heki_denial', 'vm_reset'] });
  t.true(recording.wants('heki_denial', 'x'));
  t.false(recording.wants('kvm_exit', 'x'));
  t.true(new EventLog().wants('kvm_exit', 'x'), 'the default ring records everything');
});

test('a ring that records some names still pages by seq across the gaps', (t) => {
  const log = new EventLog({ capacity: 2, record: ['kvm_cr'], clock: fakeClock() });
  const seen: bigint[] = [];
  log.subscribe({}, (e) => seen.push(e.seq));
  for (let i = 0; i < 4; i++) {
    log.emit('kvm_msr', 'v', msr(i));
    log.emit('kvm_cr', 'v', { rw: 0, cr: 0, val: BigInt(i) });
  }
  t.is(seen.length, 8, 'subscribers get every name');
  const r = log.since(0n);
  t.deepEqual(r.events.map((e) => e.seq), [5n, 7n]);
  t.true(r.dropped);
  t.false(log.since(4n).dropped, 'seq 4 was never recorded, so nothing from 4 on was dropped');
  t.deepEqual(log.since(6n).events.map((e) => e.seq), [7n]);
});

test('attached traces are written by flush() and no longer after detaching', (t) => {
  const log = new EventLog();
  const written: bigint[] = [];
  let flushes = 0;
  const detach = log.attachTrace({ write: (e) => written.push(e.seq), flush: () => void flushes++ }, { names: ['kvm_cr'] });
  log.emit('kvm_msr', 'v', msr(1));
  log.emit('kvm_cr', 'v', { rw: 0, cr: 0, val: 0n });
  log.flush();
  t.deepEqual(written, [1n]);
  t.is(flushes, 1);
  detach();
  log.emit('kvm_cr', 'v', { rw: 0, cr: 0, val: 0n });
  log.flush();
  t.deepEqual(written, [1n]);
  t.is(flushes, 1);
});

test('the catalogue names the kernel tracepoints and their fields; eventProblems checks events against it', (t) => {
  // arch/x86/kvm/trace.h: kvm_msr(write, ecx, data, exception), kvm_cr(rw, cr, val),
  // kvm_hypercall(nr, a0..a3); include/trace/events/kvm.h: kvm_userspace_exit(reason, errno).
  t.deepEqual(Object.keys(EVENT_CATALOGUE.kvm_msr.fields), ['write', 'ecx', 'data', 'exception']);
  t.deepEqual(Object.keys(EVENT_CATALOGUE.kvm_cr.fields), ['rw', 'cr', 'val']);
  t.deepEqual(Object.keys(EVENT_CATALOGUE.kvm_hypercall.fields).slice(0, 5), ['nr', 'a0', 'a1', 'a2', 'a3']);
  for (const name of ['kvm_exit', 'kvm_msr', 'kvm_cr', 'kvm_hypercall', 'heki_configure', 'heki_denial', 'msr_filter_changed', 'vm_reset'] as EventName[]) {
    t.true(EVENT_NAMES.includes(name), name);
  }
  const good: Event = { seq: 0n, time: 0n, name: 'kvm_msr', vm: 'v', vcpu: 0, rip: 1n, fields: msr(0x10) };
  t.deepEqual(eventProblems(good), []);
  t.deepEqual(eventProblems({ ...good, fields: { write: 1, ecx: -1, data: 5, extra: 'x' } }), [
    'kvm_msr: field write should be bool, got number 1',
    'kvm_msr: field ecx should be u32, got number -1',
    'kvm_msr: field data should be u64, got number 5',
    'kvm_msr: missing field exception',
    'kvm_msr: field extra is not in the catalogue',
  ]);
  t.deepEqual(eventProblems({ ...good, name: 'nope' as EventName }), ['unknown event name "nope"']);
  t.deepEqual(eventProblems({ ...good, name: 'kvm_exit', fields: { exit_reason: 'HLT' } }), [], 'optional fields may be left out');
});

test('capacity must be a whole number', (t) => {
  t.throws(() => new EventLog({ capacity: -1 }), { instanceOf: RangeError });
  t.throws(() => new EventLog({ capacity: 1.5 }), { instanceOf: RangeError });
});

// A compile-time check: `npm test` runs tsc over the tests, which fails if an expected error
// below goes away. At run time these emits go nowhere (no ring, no subscriber).
test('emit() takes the fields the catalogue gives the name, typed', (t) => {
  const log = new EventLog({ capacity: 0 });
  // @ts-expect-error a misspelt field
  log.emit('kvm_msr', 'v', { write: false, ecx: 1, data: 0n, exeption: false });
  // @ts-expect-error data is a u64: a bigint, not a number
  log.emit('kvm_msr', 'v', { write: false, ecx: 1, data: 0, exception: false });
  // @ts-expect-error a missing field
  log.emit('heki_denial', 'v', { reason: 2, cr: 4, cr_value: 0n });
  log.emit('kvm_exit', 'v', { exit_reason: 'HLT' }); // optional fields may be left out
  t.is(log.nextSeq, 0n);
});
