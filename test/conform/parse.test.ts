import test from 'ava';
import { readFileSync } from 'node:fs';
import { compilePolicy } from '../../host/vmm/policy/index.js';
import { parseScenario, parseScenarioText, scenarioPolicy, type GuestStep, type HostStep } from '../../host/conform/index.js';
import { ISSUE_EXAMPLE, scenarioWith } from './samples.js';

const MIB = 1024 * 1024;

function guestStep(s: unknown, i = 0): GuestStep {
  const step = parseScenario(s, 'x.json').steps[i]!;
  if (step.kind !== 'guest') throw new Error('not a guest step');
  return step;
}

function firstBitmap(step: HostStep): Uint8Array | null {
  if (step.action.op !== 'setMsrFilter') throw new Error('not setMsrFilter');
  return step.action.ranges[0]!.bitmap;
}

function hostStep(s: unknown, i = 0): HostStep {
  const step = parseScenario(s, 'x.json').steps[i]!;
  if (step.kind !== 'host') throw new Error('not a host step');
  return step;
}

test('the example of issue 6 parses into the normalised form, names resolved to the v2 numbers', (t) => {
  const s = parseScenario(ISSUE_EXAMPLE, 'issue-6.json');
  t.is(s.file, 'issue-6.json');
  t.is(s.name, 'filtered RDMSR goes to user space and the reply decides');
  t.deepEqual(s.cases, []);
  // vm: v2, 1 vCPU, host CR0 as given, host CR4 from its feature names (SMEP 1<<20, SMAP 1<<21,
  // UMIP 1<<11, FSGSBASE 1<<16), guest CPUID as given, the policy defaults for the rest.
  t.deepEqual(s.vm, {
    profile: 'v2', vcpus: 1, hostCr0: 0x80050033n, hostCr4: 0x310800n, guestCpuid: { smep: true, smap: true },
    memorySize: 16 * MIB, ignoreMsrs: false,
  });
  t.is(s.steps.length, 6);
  const [cap, filter, rdmsr, denial, pin, write] = s.steps;
  // KVM_CAP_X86_USER_SPACE_MSR = 188 (docs/msr-filter.md §1.1).
  t.like(cap, { kind: 'host', path: '/steps/0', action: { op: 'enableCap', cap: 188, args: [4n], flags: 0 }, expect: { ok: true } });
  t.deepEqual((filter as HostStep).action, {
    op: 'setMsrFilter', flags: 0, ranges: [{ flags: 3, base: 0xda0, nmsrs: 1, bitmap: new Uint8Array([0]) }],
  });
  t.like(rdmsr, {
    kind: 'guest', vcpu: 0, cpl: 0, action: { op: 'rdmsr', index: 0xda0 }, answer: { error: 0, data: 0x1122334455667788n },
    duringExit: [],
  });
  // KVM_EXIT_X86_RDMSR = 29; KVM_MSR_EXIT_REASON_FILTER = 4.
  t.deepEqual(rdmsr!.expect, { value: 0x1122334455667788n, exits: [{ reason: 29, msr: { reason: 4, index: 0xda0, data: 0n } }] });
  // Heki v2: KVM_CAP_HEKI_DENIAL = 236, KVM_EXIT_HEKI_DENIAL = 40; KVM_HEKI_EXIT_REASON_CR4 = 2.
  t.like(denial, { action: { op: 'enableCap', cap: 236, args: [2n] } });
  t.like(pin, { action: { op: 'hypercall', nr: 13n, args: [4n, 0x100000n, 0n], insn: 'vmcall' }, expect: { ret: 0n } });
  t.deepEqual(write!.expect, { fault: { vector: 13, errorCode: 0 }, exits: [{ reason: 40, heki: { reason: 2, value: 0x6a0n } }] });
});

test('profile v3 numbers the Heki capabilities and exits 236/237 and 40/41', (t) => {
  const s = parseScenario(
    scenarioWith(
      [
        { host: { enableCap: { cap: 'KVM_CAP_HEKI_DENIAL', args: [2] } }, expect: {} },
        { host: { checkExtension: { cap: 'KVM_CAP_HEKI_CONFIGURE' } }, expect: {} },
        { guest: { op: 'writeCr', cr: 4, value: 0 }, expect: { exits: [{ reason: 'KVM_EXIT_HEKI_DENIAL' }, { reason: 'KVM_EXIT_HEKI_CONFIGURE' }] } },
      ],
      { profile: 'v3' },
    ),
    'v3.json',
  );
  t.like(s.steps[0], { action: { cap: 237 } });
  t.like(s.steps[1], { action: { cap: 236 } });
  t.deepEqual(s.steps[2]!.expect.exits, [{ reason: 41 }, { reason: 40 }]);
});

test('names and numbers are interchangeable: capabilities, exit reasons, MSR and Heki reasons, filter and range flags', (t) => {
  const byName = parseScenario(
    scenarioWith([
      { host: { enableCap: { cap: 'KVM_CAP_X86_USER_SPACE_MSR', args: ['0x7'] } }, expect: {} },
      { host: { setMsrFilter: { flags: ['KVM_MSR_FILTER_DEFAULT_DENY'], ranges: [{ flags: ['KVM_MSR_FILTER_READ', 'WRITE'], base: 0, nmsrs: 1, bitmap: 'ff' }] } }, expect: {} },
      { guest: { op: 'rdmsr', index: 16 }, expect: { exits: [{ reason: 'KVM_EXIT_X86_WRMSR', msr: { reason: 'KVM_MSR_EXIT_REASON_UNKNOWN' } }, { reason: 'KVM_EXIT_HEKI_CONFIGURE', heki: { reason: 'KVM_HEKI_EXIT_REASON_CR0' } }] } },
    ]),
    'a.json',
  );
  const byNumber = parseScenario(
    scenarioWith([
      { host: { enableCap: { cap: 188, args: [7] } }, expect: {} },
      { host: { setMsrFilter: { flags: 1, ranges: [{ flags: '0x3', base: '0x0', nmsrs: '0x1', bitmap: 'FF' }] } }, expect: {} },
      { guest: { op: 'rdmsr', index: '0x10' }, expect: { exits: [{ reason: 30, msr: { reason: 2 } }, { reason: '0x27', heki: { reason: 1 } }] } },
    ]),
    'a.json',
  );
  t.deepEqual(byName.steps, byNumber.steps);
  t.deepEqual(byNumber.steps[2]!.expect.exits, [{ reason: 30, msr: { reason: 2 } }, { reason: 39, heki: { reason: 1 } }]);
});

test('flags that KVM must refuse are passed on as numbers, ORed when given as a list', (t) => {
  const step = hostStep(
    scenarioWith([{ host: { setMsrFilter: { flags: [2, 'DEFAULT_DENY'], ranges: [{ flags: ['0x4', 'READ'], base: 0, nmsrs: 0, bitmap: null }] } }, expect: {} }]),
  );
  t.deepEqual(step.action, { op: 'setMsrFilter', flags: 3, ranges: [{ flags: 5, base: 0, nmsrs: 0, bitmap: null }] });
});

test('64-bit values are bigints: JSON numbers, hex strings up to 16 digits, negative returns as two\'s complement', (t) => {
  const s = parseScenario(
    scenarioWith([
      { guest: { op: 'wrmsr', index: '0xc0000080', value: '0xffffffffffffffff' }, expect: {} },
      { guest: { op: 'hypercall', nr: 13, args: [9007199254740991] }, expect: { ret: -22 } },
      { guest: { op: 'hypercall', nr: '0xd' }, expect: { ret: '-0x1' } },
      { guest: { op: 'hypercall', nr: 13, insn: 'vmmcall' }, expect: { ret: '0xfffffffffffffc18' } },
    ]),
    'b.json',
  );
  t.like(s.steps[0], { action: { op: 'wrmsr', index: 0xc0000080, value: 0xffffffffffffffffn } });
  t.like(s.steps[1], { action: { args: [9007199254740991n] }, expect: { ret: 0xffffffffffffffean } }); // -KVM_EINVAL
  t.like(s.steps[2], { action: { nr: 13n, args: [] }, expect: { ret: 0xffffffffffffffffn } }); // -KVM_EPERM
  t.like(s.steps[3], { action: { insn: 'vmmcall' }, expect: { ret: 0xfffffffffffffc18n } }); // -KVM_ENOSYS
});

test('hex bytes: spaces between groups, *N repeats (decimal or hex), case-insensitive', (t) => {
  const step = hostStep(
    scenarioWith([{ host: { setMsrFilter: { flags: 0, ranges: [{ flags: 1, base: 0, nmsrs: 64, bitmap: 'ff*3 0a0B*0x2  c0' }] } }, expect: {} }]),
  );
  t.deepEqual([...firstBitmap(step)!], [0xff, 0xff, 0xff, 0x0a, 0x0b, 0x0a, 0x0b, 0xc0]);
  const full = hostStep(scenarioWith([{ host: { setMsrFilter: { flags: 0, ranges: [{ flags: 1, base: 0, nmsrs: 0x3000, bitmap: 'ff*0x600' }] } }, expect: {} }]));
  t.is(firstBitmap(full)!.length, 0x600);
  const exec = guestStep(scenarioWith([{ guest: { op: 'exec', code: '0f 32 49ff c1', regs: { rcx: '0xda0', r9: 0 } }, expect: {} }]));
  t.deepEqual(exec.action, { op: 'exec', code: new Uint8Array([0x0f, 0x32, 0x49, 0xff, 0xc1]), regs: { rcx: 0xda0n, r9: 0n }, budget: undefined });
});

test('guest defaults: vCPU 0, CPL 0, vmcall, subleaf 0, set/clear 0, and MSR exits answered with error 1', (t) => {
  const s = parseScenario(
    scenarioWith(
      [
        { guest: { op: 'cpuid', leaf: 7 }, expect: {} },
        { guest: { op: 'writeCrMasked', cr: 4, clear: '0x100000' }, expect: {} },
        { guest: { op: 'clts', vcpu: 1, cpl: 3 }, vmm: { msr: { error: 0 } }, expect: {} },
        { guest: { op: 'lmsw', value: '0xffff' }, vmm: { msr: 'untouched' }, expect: {} },
        { guest: { op: 'readCr', cr: 8 }, vmm: { msr: { error: 255, data: '0x5' } }, expect: {} },
      ],
      { vcpus: 2 },
    ),
    'c.json',
  );
  t.like(s.steps[0], { vcpu: 0, cpl: 0, action: { op: 'cpuid', leaf: 7, subleaf: 0 }, answer: { error: 1, data: 0n } });
  t.like(s.steps[1], { action: { op: 'writeCrMasked', cr: 4, set: 0n, clear: 0x100000n } });
  t.like(s.steps[2], { vcpu: 1, cpl: 3, action: { op: 'clts' }, answer: { error: 0, data: 0n } });
  t.like(s.steps[3], { action: { op: 'lmsw', value: 0xffff }, answer: 'untouched' });
  t.like(s.steps[4], { action: { op: 'readCr', cr: 8 }, answer: { error: 255, data: 5n } });
});

test('every host operation, with its defaults', (t) => {
  const s = parseScenario(
    scenarioWith(
      [
        { host: { checkExtension: { cap: 'KVM_CAP_X86_MSR_FILTER' } }, expect: { value: 1 } },
        { host: { getMsrs: { indices: ['0x10', 27] } }, expect: { nmsrs: 2, msrs: [{ index: 27, value: '0xfee00900' }] } },
        { host: { setMsrs: { vcpu: 1, entries: [{ index: '0x1fc', value: 7 }] } }, expect: { nmsrs: 1 } },
        { host: { setSregs: { cr4: '0x2106a0', apicBase: '0xfee00900' } }, expect: { ok: true, cr: { cr4: '0x2106a0' } } },
        { host: { resetVm: {} }, expect: {} },
        { host: { initVcpu: { vcpu: 1 } }, expect: {} },
        { host: { snapshot: {} }, expect: {} },
        { host: { restore: { name: 'default' } }, expect: {} },
        { host: { enableCap: { cap: 'KVM_CAP_HEKI_CONFIGURE', flags: '0x1' } }, expect: { errno: 'EINVAL' } },
      ],
      { vcpus: 2 },
    ),
    'd.json',
  );
  t.deepEqual(
    s.steps.map((step) => (step as HostStep).action),
    [
      { op: 'checkExtension', cap: 189 },
      { op: 'getMsrs', vcpu: 0, indices: [0x10, 0x1b] },
      { op: 'setMsrs', vcpu: 1, entries: [{ index: 0x1fc, value: 7n }] },
      { op: 'setSregs', vcpu: 0, sregs: { cr4: 0x2106a0n, apicBase: 0xfee00900n } },
      { op: 'resetVm' },
      { op: 'initVcpu', vcpu: 1 },
      { op: 'snapshot', name: 'default' },
      { op: 'restore', name: 'default' },
      { op: 'enableCap', cap: 235, args: [], flags: 1 },
    ],
  );
  t.deepEqual(s.steps[1]!.expect, { nmsrs: 2, msrs: [{ index: 0x1b, value: 0xfee00900n }] });
  t.deepEqual(s.steps[3]!.expect, { ok: true, cr: { cr4: 0x2106a0n } });
  t.deepEqual(s.steps[8]!.expect, { errno: 'EINVAL' });
});

test('fault null means "no fault"; exits [] means none; omitted keys stay absent', (t) => {
  const step = guestStep(scenarioWith([{ guest: { op: 'rdmsr', index: 16 }, expect: { fault: null, exits: [] } }]));
  t.deepEqual(step.expect, { fault: null, exits: [] });
  const exec = guestStep(
    scenarioWith([{ guest: { op: 'exec', code: '0f32' }, expect: { fault: { vector: '0xd' }, stop: 'fault', regs: { rip: '0x100000', rflags: 2 } } }]),
  );
  t.deepEqual(exec.expect, { fault: { vector: 13, errorCode: undefined }, stop: 'fault', regs: { rip: 0x100000n, rflags: 2n } });
});

test('steps during an exit are parsed with their own paths', (t) => {
  const step = guestStep(
    scenarioWith(
      [
        {
          guest: { op: 'hypercall', nr: 13, args: [0, '0x10000'] },
          vmm: { duringExit: [{ guest: { vcpu: 1, op: 'writeCrMasked', cr: 0, clear: '0x10000' }, expect: { fault: { vector: 13, errorCode: 0 } } }, { host: { resetVm: {} }, expect: {} }] },
          expect: { ret: 0 },
        },
      ],
      { vcpus: 2 },
    ),
  );
  t.is(step.duringExit.length, 2);
  t.like(step.duringExit[0], { kind: 'guest', path: '/steps/0/vmm/duringExit/0', vcpu: 1, action: { op: 'writeCrMasked', cr: 0, clear: 0x10000n } });
  t.like(step.duringExit[1], { kind: 'host', path: '/steps/0/vmm/duringExit/1', action: { op: 'resetVm' } });
});

test('the vm block compiles like the policy it stands for; scenarioPolicy gives that policy back', (t) => {
  const vmBlock = {
    profile: 'v3', vcpus: 4, memory: '32MiB', hostCr0: ['pe', 'mp', 'et', 'ne', 'wp', 'am', 'pg'], hostCr4: '0x772ef0',
    cr4PinnableMask: ['smep', 'smap'], guestCpuid: { smep: false, x2apic: true }, ignoreMsrs: true,
  };
  const s = parseScenario(scenarioWith([{ host: { resetVm: {} }, expect: {} }], vmBlock), 'vm.json');
  t.deepEqual(s.vm, {
    profile: 'v3', vcpus: 4, memorySize: 32 * MIB, hostCr0: 0x80050033n, hostCr4: 0x772ef0n, cr4PinnableMask: 0x300000n,
    guestCpuid: { smep: false, x2apic: true }, ignoreMsrs: true,
  });
  const policy = compilePolicy(scenarioPolicy(s.vm));
  t.deepEqual(policy.vmOptions, s.vm);
  // KVM's initial state: every exit mask 0 (188 user-space MSR; v3 Heki 236/237), no filter.
  t.deepEqual(policy.caps, [{ cap: 188, args: [0n] }, { cap: 236, args: [0n] }, { cap: 237, args: [0n] }]);
  t.is(policy.msrFilter, undefined);
  t.is(policy.msrHandlers.size, 0);
});

test('without a vm block the VM takes the policy defaults: v2, 1 vCPU, 16 MiB', (t) => {
  const s = parseScenarioText(JSON.stringify(scenarioWith([{ host: { resetVm: {} }, expect: {} }], undefined)), 'e.json');
  t.deepEqual(s.vm, { profile: 'v2', vcpus: 1, memorySize: 16 * MIB, guestCpuid: {}, ignoreMsrs: false });
});

test('the example in the README\'s guide to writing a scenario is a valid scenario', (t) => {
  const readme = readFileSync('README.md', 'utf8');
  const guide = readme.slice(readme.indexOf('## Conformance scenarios'));
  const example = /```json\n([\s\S]*?)\n```/.exec(guide)![1]!;
  const s = parseScenarioText(example, 'README.md');
  t.deepEqual(s.cases, ['msr-filter §7 #3']);
  t.deepEqual(s.steps[2]!.expect.exits, [{ reason: 29, msr: { reason: 4, index: 0xda0, data: 0n } }]);
});

test('memory attributes: setMemoryAttributes by names or value; memory-fault exits by names; KVM_EXIT_MEMORY_FAULT under v3 only', (t) => {
  // NR 1<<24, NW 1<<25, NX 1<<26, NUX 1<<27, PRIVATE 1<<3 (docs/memory-protection.md §0); exit
  // flags READ 1<<24, WRITE 1<<25, EXEC 1<<26, GVA_VALID 1<<27; KVM_EXIT_MEMORY_FAULT 39.
  const s = parseScenario(
    scenarioWith(
      [
        { host: { setMemoryAttributes: { address: '0x500000', size: 4096, attributes: ['NW', 'KVM_MEMORY_ATTRIBUTE_PINBOX_NX'] } }, expect: { ok: true } },
        { host: { setMemoryAttributes: { address: 0, size: 0, attributes: ['PRIVATE', '0x1'] } }, expect: { errno: 'EINVAL' } },
        { host: { setMemoryAttributes: { address: '0x1000', size: '0x1000', attributes: '0xf000000' } }, expect: {} },
        { host: { enableCap: { cap: 'KVM_CAP_PINBOX_MBEC', args: [1] } }, expect: {} },
        { host: { checkExtension: { cap: 'KVM_CAP_MEMORY_ATTRIBUTES' } }, expect: { value: '0xf000000' } },
        {
          guest: { op: 'exec', code: '48 89 18' },
          expect: { exits: [{ reason: 'KVM_EXIT_MEMORY_FAULT', memory: { flags: ['WRITE', 'KVM_MEMORY_EXIT_FLAG_PINBOX_GVA_VALID'], gpa: '0x500000', size: 4096, gva: '0x500008' } }] },
        },
      ],
      { profile: 'v3' },
    ),
    'm.json',
  );
  t.deepEqual(s.steps.slice(0, 5).map((step) => (step as HostStep).action), [
    { op: 'setMemoryAttributes', address: 0x500000n, size: 0x1000n, attributes: 0x6000000n },
    { op: 'setMemoryAttributes', address: 0n, size: 0n, attributes: 0x9n },
    { op: 'setMemoryAttributes', address: 0x1000n, size: 0x1000n, attributes: 0xf000000n },
    { op: 'enableCap', cap: 0x50420004, args: [1n], flags: 0 },
    { op: 'checkExtension', cap: 233 },
  ]);
  t.deepEqual(s.steps[5]!.expect.exits, [{ reason: 39, memory: { flags: 0xa000000n, gpa: 0x500000n, size: 0x1000n, gva: 0x500008n } }]);
  // Under v2, 39 is KVM_EXIT_HEKI_CONFIGURE: the memory-fault exit has no name there.
  const v2 = { ...scenarioWith([{ guest: { op: 'exec', code: '90' }, expect: { exits: [{ reason: 'KVM_EXIT_MEMORY_FAULT' }] } }]) };
  t.throws(() => parseScenario(v2, 'v2.json'), { message: /unknown exit reason "KVM_EXIT_MEMORY_FAULT"/ });
});

test('an unknown memory attribute or memory-fault flag is named with the nearest one', (t) => {
  const bad = scenarioWith([
    { host: { setMemoryAttributes: { address: 0, size: 4096, attributes: ['NWX'] } }, expect: {} },
    { guest: { op: 'exec', code: '90' }, expect: { exits: [{ reason: 39, memory: { flags: 'WRTE' } }] } },
  ], { profile: 'v3' });
  const e = t.throws(() => parseScenario(bad, 'bad.json'));
  t.regex(e.message, /\/steps\/0\/host\/setMemoryAttributes\/attributes/);
  t.regex(e.message, /\/steps\/1\/expect\/exits\/0\/memory\/flags/);
});

test('the vm block takes hekiMemory, the Heki memory hypercall the guest has, and the policy gets it', (t) => {
  const s = parseScenario(scenarioWith([{ host: { resetVm: {} }, expect: {} }], { hekiMemory: 'v1' }), 'h.json');
  t.is(s.vm.hekiMemory, 'v1');
  t.deepEqual(compilePolicy(scenarioPolicy(s.vm)).vmOptions, s.vm);
});
