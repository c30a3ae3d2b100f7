/**
 * The devices user space answers ports with (docs/boot.md §3.5): the 16550A UART at 0x3f8 as a
 * polling driver sees it (register behaviour from the 16550A data sheet: LSR THRE/TEMT, the
 * divisor latch behind LCR.DLAB, IIR's "no interrupt pending", loopback), the console lines it
 * becomes, and isa-debug-exit's status (QEMU hw/misc/debugexit.c: (V << 1) | 1).
 */
import test from 'ava';
import { EventLog, type Event } from '../../host/vmm/index.js';
import { Console, PortDevices, Uart16550, debugExitStatus } from '../../host/vmm/devices/index.js';

const THR = 0, IER = 1, IIR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7;

function uart() {
  const sent: number[] = [];
  return { u: new Uart16550((b) => sent.push(b)), sent };
}

test('THR transmits at once: LSR always says THRE and TEMT, and DR only with something received', (t) => {
  const { u, sent } = uart();
  t.is(u.read(LSR), 0x60);
  u.write(THR, 0x68);
  u.write(THR, 0x169); // only the low byte of a wider OUT goes out
  t.deepEqual(sent, [0x68, 0x69]);
  t.is(u.read(LSR), 0x60);
  t.is(u.read(THR), 0, 'nothing received: RBR reads 0');
});

test('the divisor latch hides behind LCR.DLAB: DLL/DLM read back, and THR/IER come back when it is cleared', (t) => {
  const { u, sent } = uart();
  u.write(IER, 0x0f);
  u.write(LCR, 0x83); // DLAB, 8N1
  u.write(THR, 0x01); // DLL: 115200 baud
  u.write(IER, 0x00); // DLM
  t.deepEqual([u.read(THR), u.read(IER), u.read(LCR)], [0x01, 0x00, 0x83]);
  t.deepEqual(sent, [], 'a divisor write transmits nothing');
  u.write(LCR, 0x03);
  t.is(u.read(IER), 0x0f, 'IER kept its value under the latch');
  u.write(THR, 0x41);
  t.deepEqual(sent, [0x41]);
});

test('IER keeps its four defined bits and raises nothing; IIR says no interrupt, with the FIFO bits once FCR enables them', (t) => {
  const { u } = uart();
  u.write(IER, 0xff);
  t.is(u.read(IER), 0x0f);
  u.write(THR, 0x41);
  t.is(u.read(IIR), 0x01, 'THR empty with ETBEI on, yet no interrupt is pending: pinbox delivers none');
  u.write(IIR, 0x07); // FCR: enable, clear both FIFOs
  t.is(u.read(IIR), 0xc1);
});

test('MCR and SCR read back; MSR says CTS, DSR, DCD; loopback returns THR to RBR and MCR to MSR', (t) => {
  const { u, sent } = uart();
  u.write(SCR, 0x5a);
  t.is(u.read(SCR), 0x5a);
  u.write(MCR, 0x0b); // DTR, RTS, OUT2
  t.is(u.read(MCR), 0x0b);
  t.is(u.read(MSR), 0xb0);
  u.write(MCR, 0x1f); // loopback, every output up
  t.is(u.read(MSR), 0xf0, 'DTR→DSR, RTS→CTS, OUT1→RI, OUT2→DCD');
  u.write(THR, 0x55);
  t.deepEqual(sent, [], 'loopback transmits nothing');
  t.is(u.read(LSR) & 0x01, 1, 'DR');
  t.is(u.read(THR), 0x55);
  t.is(u.read(LSR) & 0x01, 0);
  u.write(LSR, 0x00);
  t.is(u.read(LSR), 0x60, 'LSR is read-only');
});

function consoleEvents() {
  const log = new EventLog();
  const events: Event[] = [];
  log.subscribe({ names: ['console'] }, (e) => events.push(e));
  return { log, events, texts: () => events.map((e) => [e.vcpu, e.fields.text]) };
}

test('the console makes one event per line and per vCPU, without the CR LF, naming the vCPU and the first byte\'s RIP', (t) => {
  const { log, events, texts } = consoleEvents();
  const c = new Console(log, 'vm');
  const put = (vcpu: number, s: string, rip = 0x1000n) => [...Buffer.from(s)].forEach((b) => c.byte(vcpu, b, rip));
  put(0, 'hel', 0x1000n);
  put(1, 'other\r\n', 0x2000n);
  put(0, 'lo\n', 0x1004n);
  t.deepEqual(texts().slice(0, 2), [[1, 'other'], [0, 'hello']]);
  t.is(events[1]!.rip, 0x1000n, 'the RIP of the OUT of the line\'s first byte');
  t.is(events[1]!.vm, 'vm');
  put(1, 'no newline');
  c.flush();
  t.deepEqual(texts().at(-1), [1, 'no newline']);
  c.flush();
  t.is(events.length, 3, 'a flush sends nothing twice');
});

test('console text is UTF-8 with U+FFFD for bytes that are not; a 1024-byte line (the limit of an event string) is sent without waiting for its end; bytes that are not UTF-8 go in pieces that stay within it', (t) => {
  const { log, texts } = consoleEvents();
  const c = new Console(log, 'vm');
  for (const b of [0x63, 0x61, 0x66, 0xc3, 0xa9, 0x20, 0xff, 0x0a]) c.byte(0, b, 0n);
  t.deepEqual(texts(), [[0, 'café \ufffd']]);
  for (let i = 0; i < 1024 + 3; i++) c.byte(0, 0x61, 0n);
  t.is((texts()[1]![1] as string).length, 1024);
  c.flush();
  t.is(texts()[2]![1], 'aaa');
  // 1024 bytes that are not UTF-8 would be 3072 bytes of U+FFFD: each event stays within 1024.
  for (let i = 0; i < 1024; i++) c.byte(0, 0xff, 0n);
  const pieces = texts().slice(3).map(([, text]) => text as string);
  t.true(pieces.length > 1);
  t.true(pieces.every((p) => Buffer.byteLength(p) <= 1024), pieces.map((p) => Buffer.byteLength(p)).join(' '));
  t.is(pieces.join(''), '\ufffd'.repeat(1024), 'nothing lost');
});

test('the port bus: COM1 at 0x3f8-0x3ff, the exit port only when asked for, all ones and nothing elsewhere', (t) => {
  const { log } = consoleEvents();
  const plain = new PortDevices(log, 'vm');
  t.is(plain.read(0x3fd, 1), 0x60);
  t.deepEqual(plain.write(0, 0x3f8, 0x41, 0n), { kind: 'console', byte: 0x41 });
  t.deepEqual(plain.write(0, 0x3fb, 0x80, 0n), { kind: 'none' });
  t.deepEqual(plain.write(0, 0xf4, 3, 0n), { kind: 'none' }, 'no exit port unless the VMM has one (pinbox run)');
  t.is(plain.read(0x80, 1), 0xff);
  t.is(plain.read(0x2f8, 2), 0xffff, 'COM2 is not there');
  t.is(plain.read(0xf4, 4), 0xffffffff);
  const run = new PortDevices(log, 'vm', { debugExit: true });
  t.deepEqual(run.write(0, 0xf4, 0x10000, 0n), { kind: 'exit', value: 0x10000 });
});

test('isa-debug-exit: a write of V exits with (V << 1) | 1, of which the shell sees 8 bits', (t) => {
  t.is(debugExitStatus(0), 1);
  t.is(debugExitStatus(1), 3);
  t.is(debugExitStatus(0x7f), 0xff);
  t.is(debugExitStatus(0x80), 1, '(0x80 << 1 | 1) & 0xff');
});
