/**
 * The serial console through the VMM (docs/boot.md §3.5): guest code that writes COM1 as a
 * polling driver does, the `console` events it makes (one per line, naming VM and vCPU), what an
 * exec result carries — in process and through the guest SDK over a server — and the exit port,
 * which only `pinbox run`'s VMM has.
 */
import test from 'ava';
import { connect } from '../../guest-sdk/index.js';
import { code, testVmm } from './vmm-support.js';
import { withServer } from './server-support.js';

/** A polling putc of each byte: mov dx,0x3fd; 1: in al,dx; test al,0x20; jz 1b; mov dx,0x3f8; mov al,B; out dx,al */
function printing(text: string): Uint8Array {
  const out: number[] = [];
  for (const b of Buffer.from(text, 'utf8')) {
    out.push(0x66, 0xba, 0xfd, 0x03, 0xec, 0xa8, 0x20, 0x74, 0xfb, 0x66, 0xba, 0xf8, 0x03, 0xb0, b, 0xee);
  }
  return Uint8Array.from(out);
}

type ExecResult = { stop: string; console?: string; exits: { io?: { port: number } }[] };

test('exec code that prints through the UART gets its text in the result, and one console event per line', async (t) => {
  const { vm, named } = testVmm({ name: 'box', vcpus: 2 });
  const r = (await vm.perform(1, { op: 'exec', code: printing('hello, world\nsecond line\npartial') })) as ExecResult;
  t.is(r.stop, 'end', 'LSR said THRE at once: the polling loop never spun forever');
  t.is(r.console, 'hello, world\nsecond line\npartial');
  t.deepEqual(named('console').map((e) => [e.vm, e.vcpu, e.fields.text]), [['box', 1, 'hello, world'], ['box', 1, 'second line']]);
  // The rest of a line waits for its end, across operations.
  const more = (await vm.perform(1, { op: 'exec', code: printing(' done\n') })) as ExecResult;
  t.is(more.console, ' done\n');
  t.deepEqual(named('console').map((e) => e.fields.text).at(-1), 'partial done');
  const quiet = (await vm.perform(1, { op: 'exec', code: code(0x90) })) as ExecResult;
  t.false('console' in quiet, 'no console output, no console field');
});

test('the exit port is not claimed outside pinbox run: an OUT to 0xf4 is an exit like any other and the code goes on', async (t) => {
  const { vm } = testVmm();
  // mov al, 3 ; out 0xf4, al ; nop
  const r = (await vm.perform(0, { op: 'exec', code: code(0xb0, 0x03, 0xe6, 0xf4, 0x90) })) as ExecResult;
  t.is(r.stop, 'end');
  t.is(r.exits.length, 1);
});

test('the guest SDK\'s exec result carries what the code printed, over a server', async (t) => {
  await withServer({}, async (s) => {
    const guest = await connect(s.guestUrl, { vm: 'c' });
    const r = await guest.exec(printing('über\n'));
    t.is(r.stop, 'end');
    t.is(r.console, 'über\n');
    guest.close();
  });
});

test('an exec result carries the first 65536 bytes the code printed and counts the rest; no more are kept', async (t) => {
  // No time limit: 65,546 exits take seconds on a loaded machine; the budget bounds the run.
  const { vm } = testVmm({}, { maxExits: 70_000, budget: 1_000_000, maxRequestMs: Infinity });
  // mov ecx, 65546; mov dx, 0x3f8; mov al, 'a'; L: out dx, al; loop L; hlt
  const printer = Uint8Array.from([0xb9, 0x0a, 0x00, 0x01, 0x00, 0x66, 0xba, 0xf8, 0x03, 0xb0, 0x61, 0xee, 0xe2, 0xfd, 0xf4]);
  const r = (await vm.perform(0, { op: 'exec', code: printer })) as { stop: string; console?: string; consoleDropped?: number };
  t.is(r.stop, 'hlt');
  t.is(r.console, 'a'.repeat(65536));
  t.is(r.consoleDropped, 10);
});
