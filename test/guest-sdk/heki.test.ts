/**
 * guest.heki against a host with Heki RFC v2 semantics (docs/heki.md §1.3–1.4): the version
 * query, lock calls, and lockDown as the guest kernel does it (§4.2–4.3), including §8 case 13
 * (no pin when the version is below 1; CR0 first, and no CR4 attempt when CR0 fails).
 */
import test from 'ava';
import {
  X86_CR0_WP, X86_CR4_FRED, X86_CR4_SMEP,
} from '../../protocol/index.js';
import { GuestFault, HostError, InvalidArgumentError } from '../../guest-sdk/index.js';
import { HOST_CR4, RET_EINVAL, RET_ENOSYS, RET_EPERM, ScriptedHost, connectedGuest } from './scripted-host.js';

/** PAE|PGE|OSFXSR|OSXMMEXCPT|UMIP|FSGSBASE|SMEP|SMAP: a typical 64-bit kernel's CR4. */
const GUEST_CR4 = 0x310ea0n;
/** GUEST_CR4 & (SMEP|SMAP|UMIP|FSGSBASE|CET), worked out by hand: 0x100000|0x200000|0x800|0x10000. */
const GUEST_CR4_PIN = 0x310800n;

function hekiHost(): ScriptedHost {
  const host = new ScriptedHost();
  host.cr.set(4, GUEST_CR4);
  return host;
}

const hypercalls = (host: ScriptedHost) => host.log.filter((r) => r.op === 'hypercall').map((r) => (r as { args?: bigint[] }).args);

test('version() asks KVM_HC_LOCK_CR_UPDATE(0, 0, KVM_LOCK_CR_UPDATE_VERSION) and reads 1 as supported', async (t) => {
  const { guest, host } = await connectedGuest(hekiHost());
  t.deepEqual(await guest.heki.version(), { supported: true, version: 1n, ret: 1n, errno: undefined, exits: [] });
  t.deepEqual(host.log, [{ op: 'hypercall', nr: 13n, args: [0n, 0n, 1n] }]);
  guest.close();
});

test('version() below 1 is unsupported: -ENOSYS without Heki, -EPERM at CPL 3, 0', async (t) => {
  const { guest, host } = await connectedGuest(hekiHost());
  t.deepEqual(await guest.heki.version({ cpl: 3 }), { supported: false, version: -1n, ret: RET_EPERM, errno: 'EPERM', exits: [] });
  host.hekiVersion = 0n;
  t.deepEqual(await guest.heki.version(), { supported: false, version: 0n, ret: 0n, errno: undefined, exits: [] });
  host.heki = false;
  t.deepEqual(await guest.heki.version({ insn: 'vmmcall' }), { supported: false, version: -1000n, ret: RET_ENOSYS, errno: 'ENOSYS', exits: [] });
  t.deepEqual(host.log[2], { op: 'hypercall', nr: 13n, args: [0n, 0n, 1n], insn: 'vmmcall' });
  guest.close();
});

test('lockCr() sends (cr, pin, 0) and reports 0 as ok, anything else with its errno', async (t) => {
  const { guest, host } = await connectedGuest(hekiHost());
  t.deepEqual(await guest.heki.lockCr(0, X86_CR0_WP), { ok: true, ret: 0n, exits: [] });
  t.is(host.pinnedCr0, X86_CR0_WP);
  // SMEP|PAE: PAE is not pinnable, the whole call fails (docs/heki.md §8 case 5).
  t.deepEqual(await guest.heki.lockCr(4, 0x100020n), { ok: false, ret: RET_EINVAL, errno: 'EINVAL', exits: [] });
  t.is(host.pinnedCr4, 0n);
  t.deepEqual(host.log.slice(1), [{ op: 'hypercall', nr: 13n, args: [4n, 0x100020n, 0n] }]);
  await t.throwsAsync(guest.heki.lockCr(4, -1n), { instanceOf: InvalidArgumentError, message: /^heki\.lockCr: pin must be/ });
  guest.close();
});

test('lockDown() on a Heki host: version, CR0.WP, a real read of CR4, then CR4 & the v2 mask', async (t) => {
  const { guest, host } = await connectedGuest(hekiHost());
  const report = await guest.heki.lockDown();
  t.true(report.locked);
  t.is(report.stopped, undefined);
  t.is(report.version?.version, 1n);
  t.is(report.cr4, GUEST_CR4);
  t.deepEqual(report.calls, [
    { cr: 0, pin: X86_CR0_WP, ok: true, ret: 0n, exits: [] },
    { cr: 4, pin: GUEST_CR4_PIN, ok: true, ret: 0n, exits: [] },
  ]);
  t.deepEqual(host.log, [
    { op: 'hypercall', nr: 13n, args: [0n, 0n, 1n] },
    { op: 'hypercall', nr: 13n, args: [0n, X86_CR0_WP, 0n] },
    { op: 'readCr', cr: 4 },
    { op: 'hypercall', nr: 13n, args: [4n, GUEST_CR4_PIN, 0n] },
  ]);
  t.is(host.pinnedCr0, X86_CR0_WP);
  t.is(host.pinnedCr4, GUEST_CR4_PIN);
  // The pins hold: clearing SMEP is refused with #GP(0) and CR4 keeps its value (docs/heki.md §8 case 7).
  const e = await t.throwsAsync(guest.writeCr(4, GUEST_CR4 & ~X86_CR4_SMEP), { instanceOf: GuestFault });
  t.is(e.message, 'writeCr cr4 value 0x210ea0 raised #GP(0)');
  t.is(await guest.readCr(4), GUEST_CR4);
  guest.close();
});

test('lockDown() stops before pinning when the version is below 1 (docs/heki.md §8 case 13)', async (t) => {
  for (const [setup, version, reason] of [
    [(h: ScriptedHost) => (h.heki = false), -1000n, 'KVM_HC_LOCK_CR_UPDATE version query returned -1000 (-KVM_ENOSYS): the host does not support Heki CR pinning'],
    [(h: ScriptedHost) => (h.hekiVersion = 0n), 0n, 'KVM_HC_LOCK_CR_UPDATE version query returned 0: the host does not support Heki CR pinning'],
    [(h: ScriptedHost) => (h.hekiVersion = -22n), -22n, 'KVM_HC_LOCK_CR_UPDATE version query returned -22 (-KVM_EINVAL): the host does not support Heki CR pinning'],
  ] as const) {
    const host = hekiHost();
    setup(host);
    const { guest } = await connectedGuest(host);
    const report = await guest.heki.lockDown();
    t.false(report.locked);
    t.is(report.version?.version, version);
    t.deepEqual(report.stopped, { at: 'version', reason });
    t.deepEqual(report.calls, []);
    t.deepEqual(hypercalls(host), [[0n, 0n, 1n]], 'only the version query was made');
    t.is(host.pinnedCr0 | host.pinnedCr4, 0n);
    guest.close();
  }
});

test('lockDown() at CPL 3 learns -EPERM from the version query and pins nothing', async (t) => {
  const { guest, host } = await connectedGuest(hekiHost());
  const report = await guest.heki.lockDown({ cpl: 3 });
  t.false(report.locked);
  t.is(report.version?.errno, 'EPERM');
  t.is(report.stopped?.at, 'version');
  t.deepEqual(host.log, [{ op: 'hypercall', nr: 13n, args: [0n, 0n, 1n], cpl: 3 }]);
  guest.close();
});

test('lockDown() does not attempt CR4 when the CR0 pin fails (docs/heki.md §8 case 13)', async (t) => {
  const host = hekiHost();
  host.hostCr0 = 0x80000011n; // a host CR0 without WP: pin ⊄ host CR0 → -EINVAL (§1.4)
  const { guest } = await connectedGuest(host);
  const report = await guest.heki.lockDown();
  t.false(report.locked);
  t.deepEqual(report.calls, [{ cr: 0, pin: X86_CR0_WP, ok: false, ret: RET_EINVAL, errno: 'EINVAL', exits: [] }]);
  t.deepEqual(report.stopped, { at: 'cr0', reason: 'pinning CR0 with 0x10000 returned -22 (-KVM_EINVAL)' });
  t.is(report.cr4, undefined);
  t.deepEqual(host.log.map((r) => r.op), ['hypercall', 'hypercall'], 'CR4 was neither read nor pinned');
  guest.close();
});

test('lockDown() still makes the CR4 call when CR4 has no pinnable bit, and reports the host\'s -EINVAL', async (t) => {
  const host = hekiHost();
  host.cr.set(4, 0x6a0n); // PAE|PGE|OSFXSR|OSXMMEXCPT: nothing of SMEP|SMAP|UMIP|FSGSBASE|CET
  const { guest } = await connectedGuest(host);
  const report = await guest.heki.lockDown();
  t.false(report.locked);
  t.is(report.calls.length, 2);
  t.deepEqual(report.calls[1], { cr: 4, pin: 0n, ok: false, ret: RET_EINVAL, errno: 'EINVAL', exits: [] });
  t.deepEqual(report.stopped, { at: 'cr4', reason: 'pinning CR4 with 0x0 returned -22 (-KVM_EINVAL)' });
  t.is(host.pinnedCr0, X86_CR0_WP, 'the CR0 pin made before stays: pins are OR-only');
  guest.close();
});

test('lockDown() with the v3 mask pins FRED too; the v2 mask leaves it out', async (t) => {
  const cr4 = GUEST_CR4 | X86_CR4_FRED;
  for (const [mask, pin] of [['v2', GUEST_CR4_PIN], ['v3', GUEST_CR4_PIN | X86_CR4_FRED], [0x100000n, 0x100000n]] as const) {
    const host = hekiHost();
    host.cr.set(4, cr4);
    host.hostCr4 = HOST_CR4 | X86_CR4_FRED;
    host.pinnableMask |= X86_CR4_FRED; // a 6.9+ host
    const { guest } = await connectedGuest(host);
    const report = await guest.heki.lockDown({ cr4PinnableMask: mask });
    t.true(report.locked, String(mask));
    t.is(report.calls[1]!.pin, pin);
    t.is(host.pinnedCr4, pin);
    guest.close();
  }
});

test('lockDown() reports a fault on the way as the stop; host errors reject', async (t) => {
  const host = hekiHost();
  host.refuse = (r) => (r.op === 'readCr' ? new Error('boom') : undefined);
  const { guest } = await connectedGuest(host);
  const e = await t.throwsAsync(guest.heki.lockDown(), { instanceOf: HostError });
  t.is(e.code, 'internal');
  guest.close();

  // A read of CR4 that faults: the stop names the fault.
  const faultingRead = hekiHost();
  faultingRead.answer = (r) => (r.op === 'readCr' ? { fault: { vector: 6 }, exits: [] } : undefined);
  const { guest: g2 } = await connectedGuest(faultingRead);
  const report = await g2.heki.lockDown();
  t.false(report.locked);
  t.deepEqual(report.stopped, { at: 'cr4', reason: 'reading CR4 raised #UD', fault: { vector: 6 } });
  t.is(report.calls.length, 1);
  g2.close();

  // A lock hypercall that faults: no call is recorded, the stop carries the fault.
  const faultingCall = hekiHost();
  faultingCall.answer = (r) => (r.op === 'hypercall' && r.args?.[1] === X86_CR0_WP ? { fault: { vector: 6 }, exits: [] } : undefined);
  const { guest: g3 } = await connectedGuest(faultingCall);
  const stopped = await g3.heki.lockDown();
  t.false(stopped.locked);
  t.deepEqual(stopped.calls, []);
  t.deepEqual(stopped.stopped, { at: 'cr0', reason: 'KVM_HC_LOCK_CR_UPDATE(0, 0x10000, 0) raised #UD', fault: { vector: 6 } });
  const thrown = await t.throwsAsync(g3.heki.lockCr(0, X86_CR0_WP), { instanceOf: GuestFault });
  t.is(thrown.op, 'hypercall');
  g3.close();
});

test('lockDown() options are checked before anything is sent', async (t) => {
  const { guest, host } = await connectedGuest(hekiHost());
  await t.throwsAsync(guest.heki.lockDown({ cr4PinnableMask: 'v4' as never }), {
    instanceOf: InvalidArgumentError,
    message: 'heki.lockDown: options.cr4PinnableMask must be one of "v2", "v3", got "v4"',
  });
  await t.throwsAsync(guest.heki.lockDown({ mask: 'v3' } as never), {
    instanceOf: InvalidArgumentError,
    message: 'heki.lockDown: options.mask is not an option of heki.lockDown (known: cpl, insn, cr4PinnableMask)',
  });
  t.deepEqual(host.log, []);
  guest.close();
});
