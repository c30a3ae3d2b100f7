/**
 * The event log on the hot path (JSON Lines names events.*):
 *   events.emit_ring            emit() into the default 10,000-event ring, nobody subscribed
 *   events.emit_ring_100k       the same with a 100,000-event ring (events outlive V8's young
 *                               generation: the reason the default is 10,000)
 *   events.emit_ring_trace      the same plus a TraceWriter, flushed every 16 events as a VMM
 *                               answering guests would (the file is in the OS temp directory)
 *   events.wants_nobody         wants() when no ring, subscriber or trace would take the event
 *   events.trace_encode         encodeEventLine() alone
 * Each figure is ns per event, median of the runs.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeEventLine, EventLog, TraceWriter, type Event } from '../../host/vmm/events/index.js';
import { report, sample } from './report.js';

const N = 200_000;

function nsPerOp(body: () => void, n = N): number {
  const start = process.hrtime.bigint();
  body();
  return Number(process.hrtime.bigint() - start) / n;
}

function emitMany(log: EventLog, n: number, flushEvery = 0): void {
  for (let i = 0; i < n; i++) {
    if (log.wants('kvm_msr', 'default')) {
      log.emit('kvm_msr', 'default', { write: (i & 1) === 1, ecx: 0xc0000080, data: BigInt(i), exception: false }, 0, 0x100000n);
    }
    if (flushEvery !== 0 && i % flushEvery === 0) log.flush();
  }
}

for (const [name, capacity] of [['events.emit_ring', undefined], ['events.emit_ring_100k', 100_000]] as const) {
  const ring = new EventLog({ capacity });
  emitMany(ring, N); // warm up
  report(name, await sample(() => nsPerOp(() => emitMany(ring, N))), 'ns/op');
}

const dir = mkdtempSync(join(tmpdir(), 'pinbox-bench-'));
try {
  const traced = new EventLog();
  const trace = TraceWriter.open(join(dir, 'trace.jsonl'));
  traced.attachTrace(trace);
  emitMany(traced, N / 4, 16);
  report('events.emit_ring_trace', await sample(() => nsPerOp(() => emitMany(traced, N / 4, 16), N / 4)), 'ns/op');
  trace.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const idle = new EventLog({ capacity: 0 });
let wanted = 0;
const checkMany = (): void => {
  for (let i = 0; i < N; i++) if (idle.wants('kvm_exit', 'default')) wanted++;
};
checkMany();
report('events.wants_nobody', await sample(() => nsPerOp(checkMany)), 'ns/op');
if (wanted !== 0) throw new Error('nobody should want events');

const event: Event = { seq: 123456n, time: 987654321n, name: 'kvm_msr', vm: 'default', vcpu: 0, rip: 0x100004n, fields: { write: true, ecx: 0xc0000080, data: 0xd01n, exception: false } };
let length = 0;
const encodeMany = (): void => {
  for (let i = 0; i < N; i++) length += encodeEventLine(event).length;
};
encodeMany();
report('events.trace_encode', await sample(() => nsPerOp(encodeMany)), 'ns/op');
if (length === 0) throw new Error('unreachable');
