/**
 * Traces that cannot fill the disk (issue 9, finding 4): a trace with a size limit is rotated
 * before it passes it, keeps a bounded number of older files, and records each cut in the new
 * file's first line; nothing between the files is lost or repeated.
 */
import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../guest-sdk/index.js';
import { EventLog, readTrace, TraceWriter, type Event } from '../../host/vmm/events/index.js';
import { pinbox } from './cli-support.js';

function emitMany(path: string, n: number, options: { maxBytes: number; keep: number }): TraceWriter {
  const log = new EventLog({ capacity: 0 });
  const trace = TraceWriter.open(path, { ...options, bufferBytes: 4096 });
  log.attachTrace(trace);
  for (let i = 0; i < n; i++) log.emit('kvm_pio', 'flood', { rw: 1, port: 0x80, size: 1, count: 1, val: i }, 0, 0x100000n);
  log.flush();
  return trace;
}

const events = (path: string): Event[] => readTrace(readFileSync(path, 'utf8')).events;

test('a trace past maxBytes is rotated: PATH, PATH.1 … PATH.keep, each within the limit; the oldest is deleted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-rot-'));
  const path = join(dir, 'trace.jsonl');
  const trace = emitMany(path, 2000, { maxBytes: 16 * 1024, keep: 2 });
  trace.close();
  t.true(trace.rotations >= 3, `${trace.rotations} rotations`);
  for (const p of [path, `${path}.1`, `${path}.2`]) t.true(statSync(p).size <= 16 * 1024, `${p} is ${statSync(p).size} bytes`);
  t.false(existsSync(`${path}.3`), 'no more than keep rotated files');
  // The newest file starts with the cut: where the events before went and how large it was.
  const now = events(path);
  const one = events(`${path}.1`);
  const two = events(`${path}.2`);
  t.like(now[0], { name: 'trace_rotated', vm: '-', fields: { previous: `${path}.1`, previous_bytes: BigInt(statSync(`${path}.1`).size), removed: `${path}.2` } });
  t.is(now[0]!.seq, now[1]!.seq, 'the cut carries the seq of the event after it');
  // Across the kept files the events run on without a gap or a repeat.
  const seqs = [...two, ...one, ...now].filter((e) => e.name === 'kvm_pio').map((e) => Number(e.seq));
  t.deepEqual(seqs, Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i));
  t.is(seqs.at(-1), 1999);
});

test('keep 0: the full file is deleted, and the cut says so', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-rot-'));
  const path = join(dir, 'trace.jsonl');
  emitMany(path, 500, { maxBytes: 8 * 1024, keep: 0 }).close();
  t.false(existsSync(`${path}.1`));
  t.like(events(path)[0], { name: 'trace_rotated', fields: { previous: '', removed: path } });
  t.true(statSync(path).size <= 8 * 1024);
});

test('an appended trace counts what is there already; bad limits are refused', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-rot-'));
  const path = join(dir, 'trace.jsonl');
  writeFileSync(path, 'x'.repeat(3000) + '\n');
  const log = new EventLog({ capacity: 0 });
  const trace = TraceWriter.open(path, { append: true, maxBytes: 4096 });
  log.attachTrace(trace);
  for (let i = 0; i < 20; i++) log.emit('vcpu_halted', 'a', {}, 0);
  trace.close();
  t.is(trace.rotations, 1);
  t.true(readFileSync(`${path}.1`, 'utf8').startsWith('xxx'));
  t.throws(() => TraceWriter.open(join(dir, 'b'), { maxBytes: 10 }), { message: /maxBytes must be at least 1024/ });
  t.throws(() => TraceWriter.open(join(dir, 'c'), { keep: -1 }), { message: /keep must be a whole number/ });
});

test('pinbox serve --trace-max: a flooding guest leaves at most (keep + 1) files of the limit on disk', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-rot-'));
  const policy = join(dir, 'policy.json');
  writeFileSync(policy, '{}');
  const tracePath = join(dir, 'trace.jsonl');
  const sock = join(dir, 'g.sock');
  let stop!: () => void;
  const running = pinbox([
    'serve', '--listen', `unix:${sock}`, '--policy', policy, '--trace', tracePath, '--trace-max', '65536', '--trace-keep', '1',
    '--max-exits', '5000', '--max-request-ms', '60000',
  ], () => new Promise<void>((resolve) => (stop = resolve)));
  try {
    let guest;
    for (let i = 0; ; i++) {
      try {
        guest = await connect(`unix:${sock}`);
        break;
      } catch (e) {
        if (i > 200) throw e;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    t.like(await guest.exec(Uint8Array.from([0xe6, 0x80, 0xeb, 0xfc])), { stop: 'exits' });
    guest.close();
  } finally {
    stop();
  }
  t.is((await running).code, 0);
  t.true(statSync(tracePath).size <= 65536);
  t.true(statSync(`${tracePath}.1`).size <= 65536);
  t.false(existsSync(`${tracePath}.2`));
  t.is(events(tracePath)[0]!.name, 'trace_rotated');
});
