/**
 * Batches: one frame for many operations, run in order; each promise settles on its own
 * (guest fault, host refusal, bad argument); frames split past 4096 ops and past the frame
 * maximum, still in order.
 */
import test from 'ava';
import { DEFAULT_MAX_FRAME, MAX_BATCH_OPS, MIN_MAX_FRAME, MSR_IA32_TSC, ProtocolError } from '../../protocol/index.js';
import { GuestFault, HostError, InvalidArgumentError } from '../../guest-sdk/index.js';
import { ScriptedHost, connectedGuest } from './scripted-host.js';

test('queued operations go in one batch frame, run in order, and each promise gets its own result', async (t) => {
  const { guest, host, frames } = await connectedGuest();
  host.msrs.set(MSR_IA32_TSC, { value: 1n });
  const b = guest.batch();
  const written = b.wrmsr(MSR_IA32_TSC, 0xffff_ffff_ffff_fff0n);
  const read = b.rdmsr(MSR_IA32_TSC);
  const cr4 = b.readCrSafe(4);
  const version = b.hypercall(13, 0, 0, 1);
  const leaf = b.cpuid(0, { cpl: 3 });
  const ran = b.exec(new Uint8Array([0xf4]), { regs: { rbx: 9n } });
  t.is(b.size, 6);
  t.deepEqual(frames, [], 'nothing is sent before send()');

  const settled = await b.send();
  t.deepEqual(frames.map((f) => [f.op, f.ops]), [['batch', ['wrmsr', 'rdmsr', 'readCr', 'hypercall', 'cpuid', 'exec']]]);
  t.is(await written, undefined);
  t.is(await read, 0xffff_ffff_ffff_fff0n, 'the read ran after the write');
  t.deepEqual(await cr4, { ok: true, value: 0n, exits: [], exitsDropped: 0 });
  t.is(await version, 1n);
  t.deepEqual(await leaf, { eax: 0, ebx: 0, ecx: 0, edx: 0 });
  const exec = await ran;
  t.is(exec.stop, 'hlt');
  t.is(exec.regs.rbx, 9n);
  t.deepEqual(settled.map((s) => s.ok), [true, true, true, true, true, true]);
  t.is(settled[1]!.ok && settled[1]!.value, 0xffff_ffff_ffff_fff0n);
  t.deepEqual(host.log.map((r) => r.op), ['wrmsr', 'rdmsr', 'readCr', 'hypercall', 'cpuid', 'exec']);
  t.is(b.size, 0);
  guest.close();
});

test('one failing operation rejects only its own promise; the ones after it still run', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(0x10, { value: 1n });
  host.msrs.set(0x11, { value: 2n });
  host.refuse = (r) => (r.op === 'rdmsr' && r.index === 0x11 ? new ProtocolError('limit', 'too many MSR exits') : undefined);
  const b = guest.batch();
  const first = b.rdmsr(0x10);
  const refused = b.rdmsr(0x11);
  const faulted = b.rdmsr(0x12);
  const bad = b.rdmsr(-5);
  const last = b.wrmsr(0x10, 3n);
  const settled = await b.send();

  t.is(await first, 1n);
  const hostError = await t.throwsAsync(refused, { instanceOf: HostError });
  t.is(hostError.code, 'limit');
  t.true(hostError.remote);
  t.is(hostError.message, 'rdmsr 0x11: the host refused it: too many MSR exits [limit]');
  t.is((await t.throwsAsync(faulted, { instanceOf: GuestFault })).message, 'rdmsr 0x12 raised #GP(0)');
  t.is((await t.throwsAsync(bad, { instanceOf: InvalidArgumentError })).argument, 'index');
  t.is(await last, undefined);
  t.is(host.msrs.get(0x10)!.value, 3n);

  t.deepEqual(settled.map((s) => s.ok), [true, false, false, false, true], 'settlements keep the order of the calls');
  t.true(!settled[1]!.ok && settled[1]!.error === hostError);
  t.true(!settled[3]!.ok && settled[3]!.error instanceof InvalidArgumentError);
  t.deepEqual(host.log.map((r) => (r as { index: number }).index), [0x10, 0x11, 0x12, 0x10], 'the bad call was not sent');
  guest.close();
});

test('rejections read from the settlements alone are not unhandled', async (t) => {
  const { guest } = await connectedGuest();
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown): void => {
    unhandled.push(reason);
  };
  process.on('unhandledRejection', onUnhandled);
  const b = guest.batch();
  b.rdmsr(0x99);
  b.readCr(7 as never);
  const settled = await b.send();
  await new Promise((resolve) => setImmediate(resolve));
  process.off('unhandledRejection', onUnhandled);
  t.deepEqual(settled.map((s) => s.ok), [false, false]);
  t.deepEqual(unhandled, []);
  guest.close();
});

test('an empty batch sends nothing; a batch can be reused after send()', async (t) => {
  const { guest, host, frames } = await connectedGuest();
  const b = guest.batch();
  t.deepEqual(await b.send(), []);
  t.deepEqual(frames, []);
  const bad = b.rdmsr(-1);
  t.deepEqual((await b.flush()).map((s) => s.ok), [false], 'only invalid calls: nothing to send');
  await t.throwsAsync(bad, { instanceOf: InvalidArgumentError });
  t.deepEqual(frames, []);
  host.msrs.set(0x10, { value: 4n });
  const again = b.rdmsr(0x10);
  await b.send();
  t.is(await again, 4n);
  t.is(frames.length, 1);
  guest.close();
});

test('more than 4096 operations go in several frames, each sent after the last is answered, in order', async (t) => {
  const { guest, host, frames } = await connectedGuest();
  host.msrs.set(MSR_IA32_TSC, { value: 0n });
  // An asynchronous host: the ops of two batch frames in flight together would interleave.
  host.stall = () => new Promise((resolve) => setImmediate(resolve));
  const b = guest.batch();
  const n = 2 * MAX_BATCH_OPS + 1;
  const reads: Promise<bigint>[] = [];
  for (let i = 0; i < n; i++) {
    b.wrmsr(MSR_IA32_TSC, BigInt(i));
    reads.push(b.rdmsr(MSR_IA32_TSC));
  }
  const settled = await b.send();
  t.is(settled.length, 2 * n);
  t.true(settled.every((s) => s.ok));
  // 2n ops = 16386 = 4 × 4096 + 2: five frames.
  t.deepEqual(frames.map((f) => f.ops!.length), [4096, 4096, 4096, 4096, 2]);
  const values = await Promise.all(reads);
  t.true(values.every((v, i) => v === BigInt(i)), 'every read saw the write queued just before it');
  t.is(host.log.length, 2 * n);
  guest.close();
});

test('a batch of large exec blocks is cut so that no frame exceeds the frame maximum', async (t) => {
  const { guest, frames } = await connectedGuest();
  const b = guest.batch();
  const runs: Promise<unknown>[] = [];
  // 20 blocks of 64 KiB: 1.3 MB in all, more than one 1 MiB frame can hold.
  for (let i = 0; i < 20; i++) runs.push(b.exec(new Uint8Array(65536).fill(0x90), { regs: { rax: BigInt(i) } }));
  const settled = await b.send();
  t.true(settled.every((s) => s.ok));
  t.true(frames.length >= 2);
  t.true(frames.every((f) => f.bytes <= DEFAULT_MAX_FRAME), `frame sizes ${frames.map((f) => f.bytes).join(', ')}`);
  t.is(frames.reduce((sum, f) => sum + f.ops!.length, 0), 20);
  const results = (await Promise.all(runs)) as { regs: { rax: bigint } }[];
  t.deepEqual(results.map((r) => r.regs.rax), Array.from({ length: 20 }, (_, i) => BigInt(i)));
  guest.close();
});

test('with the smallest frame maximum, the largest ops and answers still fit: requests and responses stay within it', async (t) => {
  const maxFrame = MIN_MAX_FRAME;
  const host = new ScriptedHost();
  // The largest answer without exits: a fault with a 5-byte error code.
  host.answer = (r) => (r.op === 'cpuid' ? { fault: { vector: 13, errorCode: 0xffff_ffff }, exits: [] } : undefined);
  const { guest, frames } = await connectedGuest(host, { maxFrame });
  const b = guest.batch();
  const big = (1n << 64n) - 1n;
  for (let i = 0; i < 300; i++) {
    // The largest request item: nr and four arguments of 9 bytes each, vmmcall, cpl.
    b.hypercallSafe(big, big, big, big, big, { insn: 'vmmcall', cpl: 3 });
    b.cpuidSafe(0xffff_ffff, 0xffff_ffff, { cpl: 3 });
  }
  const settled = await b.send();
  t.is(settled.length, 600);
  t.true(settled.every((s) => s.ok), 'every answer arrived (a response above the maximum would have closed the connection)');
  t.true(frames.length > 1);
  t.true(frames.every((f) => f.bytes <= maxFrame), `frame sizes ${frames.map((f) => f.bytes).join(', ')}`);
  t.false(guest.closed);
  guest.close();
});

test('a frame the host cannot answer rejects every operation in it with that HostError', async (t) => {
  const { guest, host } = await connectedGuest();
  host.msrs.set(0x10, { value: 1n });
  const b = guest.batch();
  const ops = [b.rdmsr(0x10), b.rdmsrSafe(0x10)];
  const sending = b.send();
  guest.close();
  const settled = await sending;
  const errors = await Promise.all(ops.map((p) => t.throwsAsync(p, { instanceOf: HostError })));
  t.is(errors[0]!.code, 'connection_closed');
  t.is(errors[0], errors[1]);
  t.regex(errors[0]!.message, /^batch of 2 ops: /);
  t.deepEqual(settled.map((s) => s.ok), [false, false]);
});
