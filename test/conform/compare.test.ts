import test from 'ava';
import { compareStep, type Observed } from '../../host/conform/compare.js';
import { parseScenario, type Expect } from '../../host/conform/index.js';
import { scenarioWith } from './samples.js';

/** The Expect of a one-step scenario, as the parser makes it. */
function expectOf(step: Record<string, unknown>, vm?: Record<string, unknown>): Expect {
  return parseScenario(scenarioWith([step], vm), 'c.json').steps[0]!.expect;
}

function guestExpect(op: Record<string, unknown>, expect: Record<string, unknown>, vm?: Record<string, unknown>): Expect {
  return expectOf({ guest: op, expect }, vm);
}

const RDMSR = { op: 'rdmsr', index: '0xda0' };
const compare = (expect: Expect, observed: Observed, profile: 'v2' | 'v3' = 'v2') => compareStep(profile, 4, '/steps/4/expect', expect, observed);

test('keys left out are not checked: {} passes whatever happened', (t) => {
  const expect = guestExpect(RDMSR, {});
  t.deepEqual(compare(expect, { guest: { fault: { vector: 13, errorCode: 0 }, exits: [{ reason: 29 }] } }), []);
});

test('value and ret: equal passes; a fault instead of a value is named', (t) => {
  const value = guestExpect(RDMSR, { value: '0x11223344' });
  t.deepEqual(compare(value, { guest: { value: 0x11223344n, exits: [] } }), []);
  t.deepEqual(compare(value, { guest: { fault: { vector: 13, errorCode: 0 }, exits: [] } }), [
    { kind: 'mismatch', step: 4, path: '/steps/4/expect/value', expected: '0x11223344', actual: '#GP(0)', message: 'value: expected 0x11223344, but the guest took #GP(0)' },
  ]);
  const ret = guestExpect({ op: 'hypercall', nr: 13 }, { ret: -22 });
  t.deepEqual(compare(ret, { guest: { ret: 0xffffffffffffffean, exits: [] } }), []);
  t.like(compare(ret, { guest: { ret: 0n, exits: [] } })[0], { path: '/steps/4/expect/ret', expected: '0xffffffffffffffea', actual: '0x0' });
});

test('fault: null requires none; an error code left out is not checked; vectors by name', (t) => {
  const none = guestExpect(RDMSR, { fault: null });
  t.deepEqual(compare(none, { guest: { value: 0n, exits: [] } }), []);
  t.like(compare(none, { guest: { fault: { vector: 6, errorCode: undefined }, exits: [] } })[0], {
    expected: null, actual: '#UD', message: 'expected no fault, but the guest took #UD',
  });
  const anyGp = guestExpect(RDMSR, { fault: { vector: 13 } });
  t.deepEqual(compare(anyGp, { guest: { fault: { vector: 13, errorCode: 0x18 }, exits: [] } }), []);
  t.like(compare(anyGp, { guest: { value: 1n, exits: [] } })[0], { expected: '#GP', actual: 'no fault' });
  const gp0 = guestExpect(RDMSR, { fault: { vector: 13, errorCode: 0 } });
  t.like(compare(gp0, { guest: { fault: { vector: 13, errorCode: 0x18 }, exits: [] } })[0], {
    path: '/steps/4/expect/fault', expected: '#GP(0)', actual: '#GP(0x18)',
  });
});

test('exits: the exact ordered list; a different count shows both lists with names', (t) => {
  const expect = guestExpect(RDMSR, { exits: [] });
  t.deepEqual(compare(expect, { guest: { exits: [] } }), []);
  const [f] = compare(expect, { guest: { exits: [{ reason: 29, msr: { reason: 4, index: 0xda0, data: 0n } }, { reason: 40, heki: { reason: 2, value: 0x6a0n } }] } });
  t.deepEqual(f, {
    kind: 'mismatch', step: 4, path: '/steps/4/expect/exits', expected: [],
    actual: [
      { reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', index: '0xda0', data: '0x0' } },
      { reason: 'KVM_EXIT_HEKI_DENIAL', heki: { reason: 'CR4', value: '0x6a0' } },
    ],
    message: 'exits: expected 0, got 2: [{"reason":"KVM_EXIT_X86_RDMSR","msr":{"reason":"FILTER","index":"0xda0","data":"0x0"}},{"reason":"KVM_EXIT_HEKI_DENIAL","heki":{"reason":"CR4","value":"0x6a0"}}]',
  });
});

test('exits: each exit\'s keys left out are unchecked; the ones given are compared by name', (t) => {
  const expect = guestExpect(RDMSR, { exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER' } }, { reason: 'KVM_EXIT_X86_WRMSR' }] });
  const ok = { guest: { exits: [{ reason: 29, msr: { reason: 4, index: 1, data: 9n } }, { reason: 30, msr: { reason: 2, index: 2, data: 0n } }] } };
  t.deepEqual(compare(expect, ok), []);
  const wrong = { guest: { exits: [{ reason: 29, msr: { reason: 1, index: 1, data: 0n } }, { reason: 29, msr: { reason: 4, index: 2, data: 0n } }] } };
  t.deepEqual(
    compare(expect, wrong).map((f) => [f.path, f.expected, f.actual, f.message]),
    [
      ['/steps/4/expect/exits/0/msr/reason', 'FILTER', 'INVAL', 'exits[0].msr.reason: expected FILTER, got INVAL'],
      ['/steps/4/expect/exits/1/reason', 'KVM_EXIT_X86_WRMSR', 'KVM_EXIT_X86_RDMSR', 'exits[1].reason: expected KVM_EXIT_X86_WRMSR, got KVM_EXIT_X86_RDMSR'],
    ],
  );
  const noDetails = compare(expect, { guest: { exits: [{ reason: 29 }, { reason: 30 }] } });
  t.like(noDetails[0], { path: '/steps/4/expect/exits/0/msr', message: 'exits[0]: expected msr details, the exit has none' });
});

test('exit reasons show by the profile\'s names: 40 is KVM_EXIT_HEKI_DENIAL in v2 and KVM_EXIT_HEKI_CONFIGURE in v3', (t) => {
  const v3 = guestExpect(RDMSR, { exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL' }] }, { profile: 'v3' });
  t.deepEqual(compare(v3, { guest: { exits: [{ reason: 41 }] } }, 'v3'), []);
  t.like(compare(v3, { guest: { exits: [{ reason: 40 }] } }, 'v3')[0], { expected: 'KVM_EXIT_HEKI_DENIAL', actual: 'KVM_EXIT_HEKI_CONFIGURE' });
  const v2 = guestExpect(RDMSR, { exits: [{ reason: 'KVM_EXIT_HEKI_CONFIGURE' }] });
  t.like(compare(v2, { guest: { exits: [{ reason: 40 }] } })[0], { expected: 'KVM_EXIT_HEKI_CONFIGURE', actual: 'KVM_EXIT_HEKI_DENIAL' });
  t.like(compare(v2, { guest: { exits: [{ reason: 77 }] } })[0], { actual: 77 });
});

test('regs and cr are subsets; stop is compared as a word', (t) => {
  const expect = guestExpect({ op: 'exec', code: '0f32' }, { regs: { rax: '0x11223344', r9: 1 }, stop: 'end', cr: { cr4: '0x310ea0' } });
  const regs = { rax: 0x11223344n, rdx: 0xaabbccddn, r9: 1n, rip: 0x100005n };
  const cr = { cr0: 0x80050033n, cr2: 0n, cr3: 0x1000n, cr4: 0x310ea0n, cr8: 0n };
  t.deepEqual(compare(expect, { guest: { regs, stop: 'end', exits: [] }, cr }), []);
  t.deepEqual(
    compare(expect, { guest: { regs: { ...regs, r9: 0n }, stop: 'fault', fault: { vector: 13, errorCode: 0 }, exits: [] }, cr: { ...cr, cr4: 0x210ea0n } }).map((f) => [f.path, f.expected, f.actual]),
    [['/steps/4/expect/stop', 'end', 'fault'], ['/steps/4/expect/regs/r9', '0x1', '0x0'], ['/steps/4/expect/cr/cr4', '0x310ea0', '0x210ea0']],
  );
  t.like(compare(expect, { guest: { exits: [] }, cr })[0], { path: '/steps/4/expect/stop', actual: null, message: 'stop: expected end, got nothing' });
});

test('host results: ok, errno, value, nmsrs and msrs', (t) => {
  const check = expectOf({ host: { checkExtension: { cap: 'KVM_CAP_HEKI_DENIAL' } }, expect: { ok: true, value: 3 } });
  t.deepEqual(compare(check, { host: { ok: true, value: 3 } }), []);
  t.deepEqual(
    compare(check, { host: { ok: false, errno: 'EINVAL', message: 'no' } }).map((f) => [f.path, f.actual]),
    [['/steps/4/expect/ok', false], ['/steps/4/expect/value', null]],
  );
  const get = expectOf({ host: { getMsrs: { indices: [16, '0x1fc'] } }, expect: { nmsrs: 2, msrs: [{ index: '0x1fc', value: '0x1234' }] } });
  t.deepEqual(compare(get, { host: { ok: true, nmsrs: 2, entries: [{ index: 16, value: 5n }, { index: 0x1fc, value: 0x1234n }] } }), []);
  t.deepEqual(
    compare(get, { host: { ok: true, nmsrs: 1, entries: [{ index: 16, value: 5n }] } }).map((f) => [f.path, f.expected, f.actual, f.message]),
    [['/steps/4/expect/nmsrs', 2, 1, 'nmsrs: expected 2, got 1'], ['/steps/4/expect/msrs/0/value', '0x1234', null, 'MSR 0x1fc: expected 0x1234, got nothing']],
  );
  const refused = expectOf({ host: { resetVm: {} }, expect: { errno: 'EINVAL' } });
  t.like(compare(refused, { host: { ok: true } })[0], { expected: 'EINVAL', actual: 'success', message: 'errno: expected EINVAL, but it succeeded' });
});
