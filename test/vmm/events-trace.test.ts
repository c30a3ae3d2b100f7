/**
 * The JSON Lines trace: its exact format, reading it back, buffering, and the crash guarantee.
 * This file also serves as the child process of the crash test: run with PINBOX_TRACE_CHILD
 * set to a path, it writes a trace there instead of defining tests (ava is imported only when
 * running under ava).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  decodeEventLine, encodeEventLine, EVENT_CATALOGUE, EVENT_NAMES, EventLog, readTrace, TraceFormatError,
  TraceWriteError, TraceWriter, type Event, type EventFieldValue,
} from '../../host/vmm/events/index.js';

const CHILD_ENV = 'PINBOX_TRACE_CHILD';

/**
 * The child: rounds of events; after each round it flushes, then says "answered <last seq>"
 * (as the VMM answers a guest), then emits a few more events it does not flush, and sleeps.
 */
function traceChild(path: string): void {
  const log = new EventLog({ capacity: 0 });
  const trace = TraceWriter.open(path, { bufferBytes: 1 << 30 });
  log.attachTrace(trace);
  let round = 0;
  const step = (): void => {
    let last: Event | undefined;
    for (let i = 0; i < 50 + round; i++) {
      last = log.emit('kvm_msr', 'crash', { write: true, ecx: 0xc0000080, data: BigInt(round * 1000 + i), exception: false }, 0, 0x100000n);
    }
    log.flush();
    writeSync(1, `answered ${last!.seq}\n`);
    for (let i = 0; i < 7; i++) log.emit('kvm_cr', 'crash', { rw: 1, cr: 4, val: BigInt(i) }, 0);
    round++;
    setTimeout(step, 5);
  };
  step();
}

if (process.env[CHILD_ENV] !== undefined) {
  traceChild(process.env[CHILD_ENV]!);
} else {
  const { default: test } = await import('ava');

  const sampleValue = (type: string, k: number): EventFieldValue =>
    type === 'u64' ? (1n << 63n) + BigInt(k) : type === 'u32' ? 0xffffffff - k : type === 'number' ? -k : type === 'bool' ? k % 2 === 0 : `text ${k} "quoted" \\ é`;

  test('one event per line, in the documented form', (t) => {
    const event: Event = {
      seq: 42n,
      time: 1_000_000_000n,
      name: 'kvm_msr',
      vm: 'default',
      vcpu: 0,
      rip: 0x100004n,
      fields: { write: false, ecx: 16, data: 0n, exception: false },
    };
    // docs/events.md: register, MSR and address values and MSR indices as "0x…" strings, every
    // other integer a JSON number while it fits 2^53.
    t.is(
      encodeEventLine(event),
      '{"seq":42,"time":1000000000,"name":"kvm_msr","vm":"default","vcpu":0,"rip":"0x100004",' +
        '"fields":{"write":false,"ecx":"0x10","data":"0x0","exception":false}}\n',
    );
    t.is(
      encodeEventLine({ seq: 0n, time: 5n, name: 'vm_reset', vm: 'a"b', fields: { cause: 'control', pins_cleared: true } }),
      '{"seq":0,"time":5,"name":"vm_reset","vm":"a\\"b","fields":{"cause":"control","pins_cleared":true}}\n',
    );
    t.is(
      encodeEventLine({ seq: 1n << 53n, time: 7n, name: 'vm_created', vm: 'v', fields: { vcpus: 2, memory: 0x1000000n, profile: 'v2' } }),
      '{"seq":"0x20000000000000","time":7,"name":"vm_created","vm":"v","fields":{"vcpus":2,"memory":16777216,"profile":"v2"}}\n',
    );
    t.is(
      encodeEventLine({ seq: 3n, time: 8n, name: 'heki_denial', vm: 'v', vcpu: 1, rip: 0xffffffff81000000n, fields: { reason: 2, cr: 4, cr_value: 0x210ea0n, path: 'exit', action: 'log' } }),
      '{"seq":3,"time":8,"name":"heki_denial","vm":"v","vcpu":1,"rip":"0xffffffff81000000","fields":{"reason":2,"cr":4,"cr_value":"0x210ea0","path":"exit","action":"log"}}\n',
    );
  });

  test('every catalogue event survives a round trip, 64-bit values exactly', (t) => {
    EVENT_NAMES.forEach((name, k) => {
      const fields: Record<string, EventFieldValue> = {};
      for (const [f, spec] of Object.entries(EVENT_CATALOGUE[name].fields as Record<string, { type: string }>)) {
        fields[f] = sampleValue(spec.type, k);
      }
      const event: Event = { seq: 0xffffffffffffffffn - BigInt(k), time: BigInt(k), name, vm: `vm-${k}`, vcpu: k, rip: 0xffffffff80000000n, fields };
      const line = encodeEventLine(event);
      t.true(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
      t.deepEqual(decodeEventLine(line.slice(0, -1)), event, name);
    });
  });

  test('readTrace skips a partial last line and names a bad complete one', (t) => {
    const a = encodeEventLine({ seq: 0n, time: 1n, name: 'vcpu_halted', vm: 'v', vcpu: 0, fields: {} });
    const b = encodeEventLine({ seq: 1n, time: 2n, name: 'vcpu_halted', vm: 'v', vcpu: 1, fields: {} });
    const whole = readTrace(a + b);
    t.deepEqual(whole.events.map((e) => e.vcpu), [0, 1]);
    t.false(whole.truncatedTail);
    const cut = readTrace(a + b.slice(0, 20));
    t.deepEqual(cut.events.map((e) => e.seq), [0n]);
    t.true(cut.truncatedTail);
    t.throws(() => readTrace(a + '{"seq": "1", "time": "0x0", "name": "vm_reset", "vm": "v", "fields": {}}\n'), { instanceOf: TraceFormatError, message: /^line 2: seq must be an integer \(a JSON number or a "0x…" string\)/ });
    t.throws(() => readTrace(a + '{"seq": 1, "time": 0, "name": "kvm_msr", "vm": "v", "fields": {"ecx": "16"}}\n'), { instanceOf: TraceFormatError, message: /^line 2: field ecx must be an integer/ });
    t.throws(() => readTrace('nope\n'), { instanceOf: TraceFormatError, message: /^line 1: not JSON/ });
  });

  test('the writer buffers until flush(), or until the buffer passes its size', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pinbox-trace-'));
    const path = join(dir, 'trace.jsonl');
    const log = new EventLog();
    const trace = TraceWriter.open(path, { bufferBytes: 4096 });
    log.attachTrace(trace);
    const emit = (i: number) => log.emit('kvm_cr', 'v', { rw: 1, cr: 0, val: BigInt(i) }, 0, 0x1000n);
    for (let i = 0; i < 10; i++) emit(i);
    t.is(readFileSync(path, 'utf8'), '', 'nothing is written per event');
    t.is(trace.pendingEvents, 10);
    log.flush();
    t.is(trace.pendingEvents, 0);
    t.deepEqual(readTrace(readFileSync(path, 'utf8')).events.map((e) => e.fields.val), Array.from({ length: 10 }, (_, i) => BigInt(i)));
    for (let i = 10; i < 200; i++) emit(i);
    const auto = readTrace(readFileSync(path, 'utf8')).events.length;
    t.true(auto > 10 && auto < 200, `the full buffer was written (${auto} events on disk)`);
    trace.close();
    t.is(readTrace(readFileSync(path, 'utf8')).events.length, 200);
    t.throws(() => trace.write(log.since(0n).events[0]!), { instanceOf: TraceWriteError, message: /closed/ });
  });

  test('append mode keeps what was there; a trace that cannot be opened is named', (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pinbox-trace-'));
    const path = join(dir, 'trace.jsonl');
    const first = encodeEventLine({ seq: 0n, time: 0n, name: 'vcpu_halted', vm: 'old', fields: {} });
    writeFileSync(path, first);
    const trace = TraceWriter.open(path, { append: true });
    trace.write({ seq: 0n, time: 0n, name: 'vcpu_halted', vm: 'new', fields: {} });
    trace.close();
    t.deepEqual(readTrace(readFileSync(path, 'utf8')).events.map((e) => e.vm), ['old', 'new']);
    const missing = join(dir, 'no', 'such', 'dir.jsonl');
    t.throws(() => TraceWriter.open(missing), { instanceOf: TraceWriteError, message: new RegExp(`cannot write trace ${missing}: ENOENT`) });
  });

  test('everything flushed before "answered" is in the file after SIGKILL', async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'pinbox-crash-'));
    const path = join(dir, 'trace.jsonl');
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], {
      env: { ...process.env, [CHILD_ENV]: path },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const answered: bigint[] = [];
    let buffered = '';
    const exited = new Promise<NodeJS.Signals | null>((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        const m = /^answered (\d+)$/.exec(line);
        if (m !== null) answered.push(BigInt(m[1]!));
        if (answered.length === 8) child.kill('SIGKILL');
      }
    });
    t.is(await exited, 'SIGKILL');
    t.true(answered.length >= 8);
    const last = answered[answered.length - 1]!;
    const { events } = readTrace(readFileSync(path, 'utf8'));
    t.true(events.length >= Number(last) + 1, `the file holds ${events.length} events; ${last + 1n} were answered`);
    t.deepEqual(
      events.slice(0, Number(last) + 1).map((e) => e.seq),
      Array.from({ length: Number(last) + 1 }, (_, i) => BigInt(i)),
      'every event up to the last answered one, in order, none missing',
    );
  });
}
