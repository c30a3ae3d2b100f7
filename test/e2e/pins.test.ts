/**
 * End to end, over real sockets, against `pinbox serve` in its own process: the two
 * guarantees users rely on — pins persist until a VM reset, and every denial reaches the VMM —
 * and the rest of the list: filtered MSRs answered by the VMM, roles, separate VMs.
 */
import test from 'ava';
import { GP_VECTOR, X86_CR0_WP, X86_CR4_SMAP, X86_CR4_SMEP } from '../../protocol/abi.js';
import type { Event } from '../../protocol/index.js';
import { RawPeer } from '../protocol/raw-peer.js';
import { startServe, type ServeProcess } from './serve-process.js';

const GP0 = { vector: GP_VECTOR, errorCode: 0 };

/** Runs `body` against a fresh server; stops it (SIGTERM, exit 0) afterwards. */
async function withServe(t: import('ava').ExecutionContext, policy: unknown, body: (s: ServeProcess) => Promise<void>): Promise<void> {
  const s = await startServe(policy);
  try {
    await body(s);
    t.is(await s.stop(), 0, s.output());
  } finally {
    s.cleanup();
  }
}

test('pins persist across later writes, vCPUs, a guest disconnect and reconnect, and INIT', async (t) => {
  await withServe(t, { vcpus: 2 }, async (s) => {
    const first = await s.guest('vm1', 0);
    t.true((await first.heki.lockDown()).locked);
    const cr4 = await first.readCr(4);
    const cleared = cr4 & ~X86_CR4_SMEP;
    t.like(await first.writeCrSafe(4, cleared), { ok: false, fault: GP0 });
    t.like(await first.writeCrSafe(4, cleared), { ok: false, fault: GP0 }, 'and again');
    t.like(await first.writeCrSafe(4, cr4), { ok: true }, 'writes that keep the pinned bits go through');

    const second = await s.guest('vm1', 1);
    t.like(await second.writeCrSafe(4, cleared), { ok: false, fault: GP0 }, 'on the other vCPU');
    const cr0 = await second.readCr(0);
    t.like(await second.writeCrSafe(0, cr0 & ~X86_CR0_WP), { ok: false, fault: GP0 });

    first.close();
    second.close();
    const again = await s.guest('vm1', 0);
    t.like(await again.writeCrSafe(4, cleared), { ok: false, fault: GP0 }, 'after a disconnect and reconnect');

    const control = await s.control();
    await control.request('initVcpu', { vm: 'vm1', vcpu: 0 });
    t.like(await again.writeCrSafe(4, (await again.readCr(4)) & ~X86_CR4_SMEP), { ok: false, fault: GP0 }, 'after INIT');
  });
});

test('pins are gone after a VM reset; two VMs never share pins', async (t) => {
  await withServe(t, {}, async (s) => {
    const a = await s.guest('a');
    const b = await s.guest('b');
    await a.heki.lockCr(4, X86_CR4_SMEP | X86_CR4_SMAP);
    const cr4b = await b.readCr(4);
    t.like(await b.writeCrSafe(4, cr4b & ~X86_CR4_SMEP), { ok: true }, 'VM b has no pins');
    const cr4a = await a.readCr(4);
    t.like(await a.writeCrSafe(4, cr4a & ~X86_CR4_SMEP), { ok: false, fault: GP0 });
    const control = await s.control();
    await control.request('resetVm', { vm: 'a' });
    const after = await a.readCr(4);
    t.like(await a.writeCrSafe(4, after & ~X86_CR4_SMEP), { ok: true }, 'the reset cleared the pins');
    t.like(s.trace().find((e) => e.name === 'vm_reset'), { vm: 'a', fields: { cause: 'control', pins_cleared: true } });
  });
});

test('every denial reaches the VMM — by exit and in-kernel — with the right reason and value: a subscriber gets it, the trace holds it', async (t) => {
  // CR4 denials exit to the VMM; CR0 denials do not (KVM injects #GP itself).
  await withServe(t, { heki: { denialExits: ['cr4'] } }, async (s) => {
    const control = await s.control();
    const pushed: Event[] = [];
    const { sub } = await control.request('subscribe', { events: ['heki_denial'] });
    control.onEvent(sub, (e) => pushed.push(e));
    const guest = await s.guest();
    await guest.heki.lockDown();
    const cr4 = await guest.readCr(4);
    const cr0 = await guest.readCr(0);
    const attempts = [cr4 & ~X86_CR4_SMEP, cr4 & ~X86_CR4_SMAP];
    for (const v of attempts) t.like(await guest.writeCrSafe(4, v), { ok: false, fault: GP0 });
    t.like(await guest.writeCrSafe(0, cr0 & ~X86_CR0_WP), { ok: false, fault: GP0 });
    const expected = [
      { reason: 2n, cr: 4n, cr_value: attempts[0], path: 'exit' },
      { reason: 2n, cr: 4n, cr_value: attempts[1], path: 'exit' },
      { reason: 1n, cr: 0n, cr_value: cr0 & ~X86_CR0_WP, path: 'in-kernel' },
    ];
    // Each answer came after its events were in the trace file.
    const traced = s.trace().filter((e) => e.name === 'heki_denial');
    t.deepEqual(traced.map((e) => ({ reason: BigInt(e.fields.reason as number), cr: BigInt(e.fields.cr as number), cr_value: e.fields.cr_value, path: e.fields.path })), expected);
    for (let i = 0; i < 50 && pushed.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
    t.deepEqual(pushed.map((e) => ({ reason: e.fields.reason, cr: e.fields.cr, cr_value: e.fields.cr_value, path: e.fields.path })), expected);
    t.true(pushed.every((e) => e.vm === 'default' && e.vcpu === 0 && typeof e.rip === 'bigint'));
  });
});

test('a guest has seen the answer only once the trace holds its events: a SIGKILL right after loses none', async (t) => {
  const s = await startServe({});
  try {
    const guest = await s.guest();
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const value = (await guest.readCr(4)) & ~X86_CR4_SMEP;
    const r = await guest.writeCrSafe(4, value);
    t.false(r.ok);
    await s.kill();
    const denials = s.trace().filter((e) => e.name === 'heki_denial');
    t.is(denials.length, 1);
    t.is(denials[0]!.fields.cr_value, value);
  } finally {
    s.cleanup();
  }
});

test('filtered MSR accesses reach the VMM, and its answer decides what the guest gets', async (t) => {
  const policy = {
    msrFilter: { default: 'allow', deny: ['0x35', '0xda0'] },
    msrHandlers: { '0x35': { read: '0x10002' }, '0xda0': { write: 'store' } },
  };
  await withServe(t, policy, async (s) => {
    const guest = await s.guest();
    t.is(await guest.rdmsr(0x35), 0x10002n, 'the policy\'s value');
    const write = await guest.wrmsrSafe(0x35, 1n);
    t.like(write, { ok: false, fault: GP0 }, 'no write handler: error 1, #GP');
    t.like(write.exits[0], { reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'FILTER', index: 0x35, data: 1n, error: 1 } });
    await guest.wrmsr(0xda0, 0xfeedn);
    t.is(await guest.rdmsr(0xda0), 0xfeedn, 'stored by the VMM');
    const control = await s.control();
    await control.request('setMsrExitReply', { vm: 'default', msr: { error: 0, data: 0x1234n } });
    t.is(await guest.rdmsr(0x35), 0x1234n, 'a control client\'s answer');
    await control.request('setMsrExitReply', { vm: 'default', msr: null });
    t.is(await guest.rdmsr(0x35), 0x10002n);
    const replies = s.trace().filter((e) => e.name === 'msr_exit_reply').map((e) => e.fields.source);
    t.deepEqual(replies, ['value', 'deny', 'stored', 'stored', 'control', 'value']);
  });
});

test('a guest-role connection cannot perform control operations, whatever it sends', async (t) => {
  await withServe(t, {}, async (s) => {
    const guest = await s.guest();
    await guest.heki.lockCr(4, X86_CR4_SMEP);
    const { ClientSession, connect } = await import('../../protocol/index.js');
    const raw = new ClientSession(await connect(s.guestUrl));
    await raw.hello({ role: 'guest' });
    for (const [op, params] of [['resetVm', { vm: 'default' }], ['setRegs', { vm: 'default', vcpu: 0, regs: { rax: 1n } }], ['subscribe', {}], ['restore', { vm: 'default', snapshot: new Uint8Array(1) }]] as const) {
      await t.throwsAsync(raw.request(op as 'resetVm', params as never), { code: 'forbidden' }, op);
    }
    raw.close();
    // A control op smuggled into a batch, as raw bytes (the SDK would not even send it).
    const peer = new RawPeer(await connect(s.guestUrl));
    peer.send({ id: 1, op: 'hello', version: 1, role: 'guest' });
    t.like(await peer.next(), { id: 1, ok: true });
    peer.send({ id: 2, op: 'batch', ops: [{ op: 'rdmsr', index: 0x10 }, { op: 'resetVm', vm: 'default' }] });
    t.like(await peer.next(), { id: 2, ok: false, error: { code: 'unknown_op', path: 'ops[1].op' } });
    peer.connection.close();
    const cr4 = await guest.readCr(4);
    t.like(await guest.writeCrSafe(4, cr4 & ~X86_CR4_SMEP), { ok: false }, 'the pin is still there');
  });
});
