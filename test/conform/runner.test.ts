import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KvmError } from '../../host/kvm/api/errors.js';
import { parseScenario, runScenario, runSuite, type GuestRequest, type ScenarioResult } from '../../host/conform/index.js';
import { ISSUE_EXAMPLE, scenarioWith } from './samples.js';
import { ScriptedTarget, type Call } from './scripted-target.js';

const GP0 = { vector: 13, errorCode: 0 };

function scenario(steps: unknown[], vm?: Record<string, unknown>) {
  return parseScenario(scenarioWith(steps, vm), 'sample.json');
}

function guestRequests(calls: Call[]): GuestRequest[] {
  return calls.filter((c): c is Extract<Call, { op: 'guest' }> => c.op === 'guest').map((c) => c.request);
}

test('the issue example passes on a target that behaves as the example says', async (t) => {
  const target = new ScriptedTarget({
    host: (op) => (op === 'checkExtension' ? { value: 1 } : undefined),
    guest: (r) => {
      if (r.action.op === 'rdmsr') return { value: 0x1122334455667788n, exits: [{ reason: 29, msr: { reason: 4, index: 0xda0, data: 0n } }] };
      if (r.action.op === 'hypercall') return { ret: 0n, exits: [] };
      return { fault: GP0, exits: [{ reason: 40, heki: { reason: 2, value: 0x6a0n } }] };
    },
  });
  const result = await runScenario(parseScenario(ISSUE_EXAMPLE, 'issue.json'), target);
  t.deepEqual(result.failures, []);
  t.like(result, { name: ISSUE_EXAMPLE.name, file: 'issue.json', passed: true, steps: 6 });
  t.deepEqual(target.ops(), ['createVm', 'enableCap', 'setMsrFilter', 'guest:rdmsr', 'enableCap', 'guest:hypercall', 'guest:writeCr', 'close']);
  const [created] = target.calls;
  t.like(created, { op: 'createVm', options: { profile: 'v2', vcpus: 1, hostCr0: 0x80050033n } });
  t.deepEqual(target.calls[1], { op: 'enableCap', args: [188, [4n], 0] });
  t.deepEqual(target.calls[2], { op: 'setMsrFilter', args: [0, [{ flags: 3, base: 0xda0, nmsrs: 1, bitmap: new Uint8Array([0]) }]] });
  const requests = guestRequests(target.calls);
  t.deepEqual(requests[0], {
    vcpu: 0, cpl: 0, action: { op: 'rdmsr', index: 0xda0 }, answer: { error: 0, data: 0x1122334455667788n },
    crAnswer: { action: 'deny' }, interceptAnswer: { action: 'deny' },
  });
  t.false('duringExit' in requests[0]!);
});

test('a mismatch names the step, the path, the expected and the actual value; later steps still run', async (t) => {
  const target = new ScriptedTarget({
    guest: (r) => (r.action.op === 'rdmsr' ? { value: 5n, exits: [{ reason: 29, msr: { reason: 4, index: 0xda0, data: 7n } }] } : { exits: [] }),
  });
  const result = await runScenario(
    scenario([
      { guest: { op: 'rdmsr', index: '0xda0' }, expect: { value: '0x6', exits: [{ reason: 'KVM_EXIT_X86_RDMSR', msr: { reason: 'FILTER', data: 0 } }] } },
      { guest: { op: 'clts' }, expect: { fault: null } },
    ]),
    target,
  );
  t.false(result.passed);
  t.is(result.steps, 2);
  t.deepEqual(result.failures, [
    { kind: 'mismatch', step: 0, path: '/steps/0/expect/value', expected: '0x6', actual: '0x5', message: 'guest rdmsr 0xda0 on vCPU 0: value: expected 0x6, got 0x5' },
    {
      kind: 'mismatch', step: 0, path: '/steps/0/expect/exits/0/msr/data', expected: '0x0', actual: '0x7',
      message: 'guest rdmsr 0xda0 on vCPU 0: exits[0].msr.data: expected 0x0, got 0x7',
    },
  ]);
  t.deepEqual(target.ops(), ['createVm', 'guest:rdmsr', 'guest:clts', 'close']);
});

test('MSR exit answers reach the target as written; without one, {error: 1, data: 0}', async (t) => {
  const target = new ScriptedTarget();
  await runScenario(
    scenario([
      { guest: { op: 'rdmsr', index: 16 }, expect: {} },
      { guest: { op: 'rdmsr', index: 16 }, vmm: { msr: { error: '0xff', data: '0x5' } }, expect: {} },
      { guest: { op: 'rdmsr', index: 16, cpl: 3 }, vmm: { msr: 'untouched' }, expect: {} },
    ]),
    target,
  );
  t.deepEqual(guestRequests(target.calls).map((r) => [r.cpl, r.answer]), [[0, { error: 1, data: 0n }], [0, { error: 255, data: 5n }], [3, 'untouched']]);
});

test('writeCrMasked reads the CR, then writes (value | set) & ~clear; the exits of both count', async (t) => {
  const target = new ScriptedTarget({
    guest: (r) => {
      if (r.action.op === 'readCr') return { value: 0x310ea0n, exits: [] };
      return { fault: GP0, exits: [{ reason: 40, heki: { reason: 2, value: 0x210ea1n } }] };
    },
  });
  const result = await runScenario(
    scenario([
      {
        guest: { op: 'writeCrMasked', cr: 4, set: 1, clear: '0x100000', vcpu: 1 },
        expect: { fault: { vector: 13, errorCode: 0 }, exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL', heki: { value: '0x210ea1' } }] },
      },
    ], { vcpus: 2 }),
    target,
  );
  t.deepEqual(result.failures, []);
  const [read, write] = guestRequests(target.calls);
  t.like(read, { vcpu: 1, action: { op: 'readCr', cr: 4 } });
  t.like(write, { vcpu: 1, action: { op: 'writeCr', cr: 4, value: 0x210ea1n } });
});

test('writeCrMasked does not write when the read faults', async (t) => {
  const target = new ScriptedTarget({ guest: () => ({ fault: GP0, exits: [] }) });
  const result = await runScenario(scenario([{ guest: { op: 'writeCrMasked', cr: 0, clear: 1, cpl: 3 }, expect: { fault: { vector: 13 } } }]), target);
  t.true(result.passed);
  t.deepEqual(target.ops(), ['createVm', 'guest:readCr', 'close']);
});

test('steps during an exit run when the target calls back, in the middle of the action', async (t) => {
  const target = new ScriptedTarget({
    guest: async (r) => {
      if (r.vcpu === 0) {
        await r.duringExit!();
        return { ret: 0n, exits: [{ reason: 39, heki: { reason: 1, value: 0x10000n } }] };
      }
      return { fault: GP0, exits: [] };
    },
  });
  const result = await runScenario(
    scenario(
      [
        {
          guest: { op: 'hypercall', nr: 13, args: [0, '0x10000'] },
          vmm: { duringExit: [{ guest: { vcpu: 1, op: 'clts' }, expect: { fault: null } }, { host: { resetVm: {} }, expect: { ok: true } }] },
          expect: { ret: 0, exits: [{ reason: 'KVM_EXIT_HEKI_CONFIGURE' }] },
        },
      ],
      { vcpus: 2 },
    ),
    target,
  );
  t.deepEqual(target.ops(), ['createVm', 'guest:hypercall', 'guest:clts', 'resetVm', 'close']);
  t.deepEqual(result.failures, [
    {
      kind: 'mismatch', step: 0, path: '/steps/0/vmm/duringExit/0/expect/fault', expected: null, actual: '#GP(0)',
      message: 'guest clts on vCPU 1: expected no fault, but the guest took #GP(0)',
    },
  ]);
});

test('steps during an exit run once, however often the target calls back', async (t) => {
  const target = new ScriptedTarget({
    guest: async (r) => {
      await r.duringExit!();
      await r.duringExit!();
      return { exits: [{ reason: 29, msr: { reason: 4, index: 16, data: 0n } }, { reason: 29, msr: { reason: 4, index: 16, data: 0n } }] };
    },
  });
  const result = await runScenario(
    scenario([{ guest: { op: 'exec', code: '0f32 0f32' }, vmm: { duringExit: [{ host: { resetVm: {} }, expect: {} }] }, expect: {} }]),
    target,
  );
  t.true(result.passed);
  t.deepEqual(target.ops(), ['createVm', 'guest:exec', 'resetVm', 'close']);
});

test('steps during an exit that never came are a failure, not a pass', async (t) => {
  const target = new ScriptedTarget({ guest: () => ({ ret: 0n, exits: [] }) });
  const result = await runScenario(
    scenario([{ guest: { op: 'hypercall', nr: 13 }, vmm: { duringExit: [{ host: { resetVm: {} }, expect: {} }] }, expect: {} }]),
    target,
  );
  t.like(result.failures[0], { kind: 'mismatch', step: 0, path: '/steps/0/vmm/duringExit', expected: 'a user-space exit', actual: 'no exit' });
  t.false(target.ops().includes('resetVm'));
});

test('KVM refusals are outcomes: errno from a KvmError or a protocol error, compared with ok and errno', async (t) => {
  const target = new ScriptedTarget({
    host: (op, args) => {
      if (op === 'enableCap' && (args[1] as bigint[])[0] === 8n) throw new KvmError('EINVAL', 'KVM_ENABLE_CAP', 'bad mask');
      if (op === 'setMsrFilter') throw Object.assign(new Error('KVM_X86_SET_MSR_FILTER refused'), { code: 'kvm_error', errno: 'EFAULT' });
      return undefined;
    },
  });
  const result = await runScenario(
    scenario([
      { host: { enableCap: { cap: 188, args: [8] } }, expect: { errno: 'EINVAL' } },
      { host: { enableCap: { cap: 188, args: [8] } }, expect: { ok: true } },
      { host: { setMsrFilter: { flags: 0, ranges: [] } }, expect: { errno: 'EINVAL' } },
      { host: { enableCap: { cap: 188, args: [7] } }, expect: { ok: false } },
    ]),
    target,
  );
  t.is(result.steps, 4);
  t.deepEqual(
    result.failures.map((f) => [f.path, f.expected, f.actual]),
    [['/steps/1/expect/ok', true, false], ['/steps/2/expect/errno', 'EINVAL', 'EFAULT'], ['/steps/3/expect/ok', false, true]],
  );
  t.regex(result.failures[0]!.message, /expected the operation to succeed, but KVM refused it with EINVAL \(KVM_ENABLE_CAP: EINVAL \(22\): bad mask\)/);
});

test('a failing target stops the scenario: an error failure at the step, no later step, the VM still closed', async (t) => {
  const target = new ScriptedTarget({
    guest: () => {
      throw Object.assign(new Error('connection closed'), { errno: -104, code: 'ECONNRESET' });
    },
  });
  const result = await runScenario(
    scenario([{ host: { resetVm: {} }, expect: {} }, { guest: { op: 'clts' }, expect: {} }, { host: { resetVm: {} }, expect: {} }]),
    target,
  );
  t.is(result.steps, 2);
  t.deepEqual(result.failures, [
    { kind: 'error', step: 1, path: '/steps/1', message: 'the target failed: guest clts on vCPU 0: connection closed' },
  ]);
  t.deepEqual(target.ops(), ['createVm', 'resetVm', 'guest:clts', 'close']);
});

test('a VM the target cannot create fails the scenario at /vm', async (t) => {
  const target = new ScriptedTarget({
    createVm: () => {
      throw new Error('the server\'s VM has profile v3');
    },
  });
  const result = await runScenario(scenario([{ host: { resetVm: {} }, expect: {} }]), target);
  t.deepEqual(result.failures, [{ kind: 'error', step: null, path: '/vm', message: 'the target could not create the VM: the server\'s VM has profile v3' }]);
  t.is(result.steps, 0);
  t.false(result.passed);
});

test('snapshots are kept by name and given back on restore; a target without them fails the step', async (t) => {
  let n = 0;
  const target = new ScriptedTarget({ host: (op) => (op === 'snapshot' ? { id: ++n } : undefined) });
  const result = await runScenario(
    scenario([
      { host: { snapshot: { name: 'a' } }, expect: {} },
      { host: { snapshot: {} }, expect: {} },
      { host: { restore: { name: 'a' } }, expect: {} },
      { host: { restore: {} }, expect: {} },
    ]),
    target,
  );
  t.true(result.passed);
  t.deepEqual(target.calls.filter((c) => c.op === 'restore'), [{ op: 'restore', args: [{ id: 1 }] }, { op: 'restore', args: [{ id: 2 }] }]);

  const without = new ScriptedTarget({ noSnapshots: true });
  const failed = await runScenario(scenario([{ host: { snapshot: {} }, expect: {} }, { host: { resetVm: {} }, expect: {} }]), without);
  t.like(failed.failures[0], { kind: 'error', step: 0, path: '/steps/0' });
  t.regex(failed.failures[0]!.message, /this target cannot take snapshots/);
  t.is(failed.steps, 1);
});

test('a target that does not answer fails the scenario after the step timeout', async (t) => {
  const target = new ScriptedTarget({ guest: () => new Promise(() => {}) });
  const result = await runScenario(scenario([{ guest: { op: 'clts' }, expect: {} }]), target, { stepTimeoutMs: 30 });
  t.like(result.failures[0], { kind: 'error', step: 0 });
  t.regex(result.failures[0]!.message, /did not answer within 30 ms/);
});

test('expect.cr reads the control registers of the step\'s vCPU after the step, and only then', async (t) => {
  const target = new ScriptedTarget({ cr: { cr0: 0x80050033n, cr2: 0n, cr3: 0x1000n, cr4: 0x210ea0n, cr8: 0n } });
  const result = await runScenario(
    scenario(
      [
        { guest: { op: 'clts', vcpu: 1 }, expect: { cr: { cr4: '0x210ea0' } } },
        { host: { setSregs: { vcpu: 1, cr4: '0x210ea0' } }, expect: { cr: { cr4: '0x310ea0', cr0: '0x80050033' } } },
        { host: { resetVm: {} }, expect: { cr: { cr0: '0x80050033' } } },
        { guest: { op: 'clts' }, expect: {} },
      ],
      { vcpus: 2 },
    ),
    target,
  );
  t.deepEqual(target.calls.filter((c) => c.op === 'controlRegisters'), [
    { op: 'controlRegisters', vcpu: 1 }, { op: 'controlRegisters', vcpu: 1 }, { op: 'controlRegisters', vcpu: 0 },
  ]);
  t.deepEqual(result.failures.map((f) => [f.path, f.expected, f.actual]), [['/steps/1/expect/cr/cr4', '0x310ea0', '0x210ea0']]);
});

test('runSuite: a malformed file is reported with its file, paths and reasons, and the others still run', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-suite-'));
  const good = join(dir, 'a.json');
  const bad = join(dir, 'b.json');
  const notJson = join(dir, 'c.json');
  writeFileSync(good, JSON.stringify(scenarioWith([{ guest: { op: 'clts' }, expect: { fault: null } }])));
  writeFileSync(bad, JSON.stringify({ ...scenarioWith([{ guest: { op: 'rdmsr' }, expect: {} }, { host: { enableCap: { cap: 'NOPE' } }, expect: {} }]), name: 'broken one' }));
  writeFileSync(notJson, '{"name": ');
  const target = new ScriptedTarget();
  const seen: string[] = [];
  const results: ScenarioResult[] = await runSuite([good, bad, notJson, good], target, {
    start: (n) => seen.push(`start ${n}`),
    scenarioStarted: (i, f) => seen.push(`started ${i} ${f}`),
    scenarioFinished: (r) => seen.push(`finished ${r.file} ${r.passed}`),
  });
  t.deepEqual(results.map((r) => [r.name, r.file, r.passed]), [
    ['sample', good, true], ['broken one', bad, false], ['c.json', notJson, false], ['sample', good, true],
  ]);
  t.deepEqual(results[1]!.failures, [
    { kind: 'malformed', step: 0, path: '/steps/0/guest/index', message: '/steps/0/guest/index: is required' },
    {
      kind: 'malformed', step: 1, path: '/steps/1/host/enableCap/cap',
      message: '/steps/1/host/enableCap/cap: must be a capability: its kernel name such as "KVM_CAP_X86_USER_SPACE_MSR", or its number; got "NOPE"',
    },
  ]);
  t.like(results[2]!.failures[0], { kind: 'malformed', step: null, path: '' });
  t.regex(results[2]!.failures[0]!.message, /^the file: not valid JSON at line 1, column 10/);
  t.is(seen.length, 9);
  t.is(seen[0], 'start 4');
  t.is(seen[3], `started 1 ${bad}`);
  t.is(target.ops().filter((o) => o === 'createVm').length, 2);
});
