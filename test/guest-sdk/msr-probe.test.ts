/**
 * probeMsrs against a scripted MSR set. The expected classes and ranges are worked out by hand
 * from that set (see MSRS below) and the classes' definitions; the requests the host saw show
 * which MSRs were written, and with what.
 */
import test from 'ava';
import { MAX_BATCH_OPS, ProtocolError } from '../../protocol/index.js';
import { HostError, InvalidArgumentError, MAX_PROBE_MSRS, type MsrProbeReport } from '../../guest-sdk/index.js';
import { type ScriptedMsr, ScriptedHost, connectedGuest } from './scripted-host.js';

/**
 * 0x10–0x12 and 0x1b and 0x48: read-write. 0x3a: read-only (FEATURE_CONTROL once locked).
 * 0x49: write-only (PRED_CMD). 0x1a0: filtered (RDMSR and WRMSR exit to user space, then #GP).
 * Every other index: #GP on both.
 */
const MSRS: [number, ScriptedMsr][] = [
  [0x10, { value: 0x1234_5678_9abc_def0n }],
  [0x11, { value: 0n }],
  [0x12, { value: 0xffff_ffff_ffff_ffffn }],
  [0x1b, { value: 0xfee0_0900n }],
  [0x3a, { value: 0x5n, writable: false }],
  [0x48, { value: 0n }],
  [0x49, { value: 0n, readable: false }],
  [0x1a0, { value: 1n, filtered: true }],
];

function msrHost(): ScriptedHost {
  const host = new ScriptedHost();
  for (const [index, msr] of MSRS) host.msrs.set(index, { ...msr });
  return host;
}

const summary = (r: MsrProbeReport) => r.ranges.map((x) => [x.first, x.last, x.count, x.class]);
const writesSeen = (host: ScriptedHost) => host.log.filter((r) => r.op === 'wrmsr').map((r) => [(r as { index: number }).index, (r as { value: bigint }).value]);

const INPUT = [[0x10, 0x12], 0x1b, { first: 0x3a, last: 0x3b }, [0x48, 0x4a]] as const;

test('read-back probing: classes, ranges of consecutive MSRs, and writes of exactly the values read', async (t) => {
  const { guest, host } = await connectedGuest(msrHost());
  const report = await guest.probeMsrs(INPUT);
  t.deepEqual(summary(report), [
    [0x10, 0x12, 3, 'writable'],
    [0x1b, 0x1b, 1, 'writable'], // not adjacent to 0x12
    [0x3a, 0x3a, 1, 'readable'],
    [0x3b, 0x3b, 1, 'faulting'],
    [0x48, 0x48, 1, 'writable'],
    [0x49, 0x4a, 2, 'faulting'], // PRED_CMD cannot be read, so it is not written
  ]);
  t.deepEqual(report.counts, { writable: 5, readable: 1, 'write-only': 0, faulting: 3 });
  t.deepEqual(report.msrs.map((m) => m.index), [0x10, 0x11, 0x12, 0x1b, 0x3a, 0x3b, 0x48, 0x49, 0x4a]);
  t.deepEqual(writesSeen(host), [
    [0x10, 0x1234_5678_9abc_def0n], [0x11, 0n], [0x12, 0xffff_ffff_ffff_ffffn], [0x1b, 0xfee0_0900n], [0x3a, 5n], [0x48, 0n],
  ]);
  t.deepEqual(report.msrs[0], {
    index: 0x10,
    class: 'writable',
    read: { ok: true, value: 0x1234_5678_9abc_def0n, exits: [], exitsDropped: 0 },
    write: { ok: true, value: undefined, exits: [], exitsDropped: 0 },
  });
  t.deepEqual(report.msrs[4]!.write, { ok: false, fault: { vector: 13, errorCode: 0 }, exits: [], exitsDropped: 0 });
  t.is(report.msrs[7]!.write, undefined);
  // Every read came before every write: no value changed.
  for (const [index, msr] of MSRS) t.is(host.msrs.get(index)!.value, msr.value);
  const ops = host.log.map((r) => r.op);
  t.deepEqual(ops, [...Array(9).fill('rdmsr'), ...Array(6).fill('wrmsr')]);
  guest.close();
});

test('writeProbe "zero" writes 0 to unreadable MSRs and finds the write-only ones', async (t) => {
  const { guest, host } = await connectedGuest(msrHost());
  const report = await guest.probeMsrs(INPUT, { writeProbe: 'zero' });
  t.deepEqual(summary(report), [
    [0x10, 0x12, 3, 'writable'],
    [0x1b, 0x1b, 1, 'writable'],
    [0x3a, 0x3a, 1, 'readable'],
    [0x3b, 0x3b, 1, 'faulting'],
    [0x48, 0x48, 1, 'writable'],
    [0x49, 0x49, 1, 'write-only'],
    [0x4a, 0x4a, 1, 'faulting'],
  ]);
  t.deepEqual(writesSeen(host).filter(([index]) => [0x3b, 0x49, 0x4a].includes(index as number)), [[0x3b, 0n], [0x49, 0n], [0x4a, 0n]]);
  guest.close();
});

test('writeProbe "none" only reads', async (t) => {
  const { guest, host } = await connectedGuest(msrHost());
  const report = await guest.probeMsrs(INPUT, { writeProbe: 'none' });
  t.deepEqual(summary(report), [
    [0x10, 0x12, 3, 'readable'],
    [0x1b, 0x1b, 1, 'readable'],
    [0x3a, 0x3a, 1, 'readable'],
    [0x3b, 0x3b, 1, 'faulting'],
    [0x48, 0x48, 1, 'readable'],
    [0x49, 0x4a, 2, 'faulting'],
  ]);
  t.deepEqual(writesSeen(host), []);
  t.true(report.msrs.every((m) => m.write === undefined));
  guest.close();
});

test('a filtered MSR faults and its probe keeps the user-space exit; CPL 3 probing faults everywhere', async (t) => {
  const { guest } = await connectedGuest(msrHost());
  const [msr] = (await guest.probeMsrs([0x1a0])).msrs;
  t.is(msr!.class, 'faulting');
  t.deepEqual(msr!.read, {
    ok: false,
    fault: { vector: 13, errorCode: 0 },
    exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: 0x1a0, data: 0n, error: 1 } }],
    exitsDropped: 0,
  });
  const user = await guest.probeMsrs([[0x10, 0x12]], { cpl: 3 });
  t.deepEqual(summary(user), [[0x10, 0x12, 3, 'faulting']]);
  guest.close();
});

test('ranges overlap, repeat and come in any order: each MSR is probed once, by increasing index', async (t) => {
  const { guest, host } = await connectedGuest(msrHost());
  const report = await guest.probeMsrs([0x12, [0x10, 0x11], { first: 0x11, last: 0x12 }, 0x10, [0x1b, 0x1b]], { writeProbe: 'none' });
  t.deepEqual(report.msrs.map((m) => m.index), [0x10, 0x11, 0x12, 0x1b]);
  t.deepEqual(host.log.map((r) => (r as { index: number }).index), [0x10, 0x11, 0x12, 0x1b]);
  t.deepEqual((await guest.probeMsrs([])).msrs, []);
  guest.close();
});

test('thousands of MSRs go in batches of at most 4096 ops per frame', async (t) => {
  const { guest, frames } = await connectedGuest(msrHost());
  const report = await guest.probeMsrs([[0, 0x27ff]]); // 10240 MSRs
  t.is(report.msrs.length, 0x2800);
  // Readable: 0x10-0x12, 0x1b, 0x3a, 0x48 (6 write probes); faulting everything else.
  t.deepEqual(report.counts, { writable: 5, readable: 1, 'write-only': 0, faulting: 0x2800 - 6 });
  t.deepEqual(frames.map((f) => [f.op, f.ops!.length]), [['batch', MAX_BATCH_OPS], ['batch', MAX_BATCH_OPS], ['batch', 2048], ['batch', 6]]);
  t.deepEqual(summary(report).slice(0, 3), [[0, 0xf, 16, 'faulting'], [0x10, 0x12, 3, 'writable'], [0x13, 0x1a, 8, 'faulting']]);
  t.deepEqual(summary(report).at(-1), [0x49, 0x27ff, 0x27ff - 0x49 + 1, 'faulting']);
  guest.close();
});

test('more than 65536 MSRs, or a malformed range, is refused before anything is sent', async (t) => {
  const { guest, host } = await connectedGuest(msrHost());
  t.is(MAX_PROBE_MSRS, 65536);
  const cases: [unknown, string, string][] = [
    [[[0, 0xffff], 0x10000], 'ranges', 'probeMsrs: ranges cover 65537 MSRs; at most 65536 are probed per call'],
    [[[0, 0xffff_ffff]], 'ranges', 'probeMsrs: ranges cover 4294967296 MSRs; at most 65536 are probed per call'],
    [[[0x12, 0x10]], 'ranges[0]', 'probeMsrs: ranges[0] is empty: first 0x12 is above last 0x10'],
    [[0x10, [1]], 'ranges[1]', 'probeMsrs: ranges[1] must be an MSR index, a [first, last] pair or a { first, last } range'],
    [[{ first: -1, last: 2 }], 'ranges[0].first', 'probeMsrs: ranges[0].first must be an integer 0..0xffffffff, got -1'],
    [[[0, 0x1_0000_0000]], 'ranges[0][1]', 'probeMsrs: ranges[0][1] must be an integer 0..0xffffffff, got 4294967296'],
    [0x10, 'ranges', 'probeMsrs: ranges must be an array of MSR indices or ranges'],
  ];
  for (const [ranges, argument, message] of cases) {
    const e = await t.throwsAsync(guest.probeMsrs(ranges as never), { instanceOf: InvalidArgumentError });
    t.is(e.argument, argument);
    t.is(e.message, message);
  }
  await t.throwsAsync(guest.probeMsrs([0x10], { writeProbe: 'all' as never }), { instanceOf: InvalidArgumentError, message: /options\.writeProbe/ });
  t.deepEqual(host.log, []);
  guest.close();
});

test('a host refusing one read rejects the whole probe before any write', async (t) => {
  const host = msrHost();
  host.refuse = (r) => (r.op === 'rdmsr' && r.index === 0x11 ? new ProtocolError('forbidden', 'MSR reads are not allowed here') : undefined);
  const { guest } = await connectedGuest(host);
  const e = await t.throwsAsync(guest.probeMsrs([[0x10, 0x12]]), { instanceOf: HostError });
  t.is(e.code, 'forbidden');
  t.is(e.operation, 'rdmsr 0x11');
  t.deepEqual(writesSeen(host), []);
  guest.close();
});
