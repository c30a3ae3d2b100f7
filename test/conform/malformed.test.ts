import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile, parseScenario, parseScenarioText, ScenarioError } from '../../host/conform/index.js';
import { ISSUE_EXAMPLE, scenarioWith } from './samples.js';

function rejected(t: ExecutionContext, value: unknown, file = 'bad.json'): ScenarioError {
  return t.throws(() => parseScenario(value, file), { instanceOf: ScenarioError }) as ScenarioError;
}

/** The reasons at one path (the test fails if there are none). */
function reasonAt(error: ScenarioError, path: string): string {
  const found = error.issues.filter((i) => i.path === path);
  if (found.length === 0) throw new Error(`no issue at ${path}; issues: ${JSON.stringify(error.issues)}`);
  return found.map((i) => i.reason).join(' | ');
}

function withStep(step: unknown, vm?: Record<string, unknown>): unknown {
  return scenarioWith([{ host: { resetVm: {} }, expect: {} }, step], vm);
}

test('a ScenarioError carries the file, the JSON path and the reason, and says all of it in its message', (t) => {
  const e = rejected(t, withStep({ guest: { op: 'rdmsr', index: 'sixteen' }, expect: {} }), 'dir/broken.json');
  t.is(e.file, 'dir/broken.json');
  t.is(e.path, '/steps/1/guest/index');
  t.regex(e.reason, /32-bit value.*got "sixteen"/);
  t.regex(e.message, /^dir\/broken\.json: invalid scenario, 1 problem:\n {2}\/steps\/1\/guest\/index: must be a 32-bit value/);
  t.is(e.scenarioName, 'sample');
});

test('text that is not JSON: line and column', (t) => {
  const e = t.throws(() => parseScenarioText('{\n  "name": "x",\n  "steps": [,]\n}', 'x.json'), { instanceOf: ScenarioError }) as ScenarioError;
  t.is(e.path, '');
  t.regex(e.reason, /^not valid JSON at line 3, column 13/);
});

test('a file that cannot be read', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-conform-'));
  const e1 = t.throws(() => loadScenarioFile(join(dir, 'missing.json')), { instanceOf: ScenarioError }) as ScenarioError;
  t.is(e1.reason, 'cannot read the scenario file: no such file');
  const e2 = t.throws(() => loadScenarioFile(dir), { instanceOf: ScenarioError }) as ScenarioError;
  t.is(e2.reason, 'cannot read the scenario file: is a directory');
  writeFileSync(join(dir, 'ok.json'), JSON.stringify(ISSUE_EXAMPLE));
  t.is(loadScenarioFile(join(dir, 'ok.json')).steps.length, 6);
});

test('schema: missing, unknown (with a suggestion) and mistyped top-level fields, all at once', (t) => {
  const e = rejected(t, { nmae: 'x', steps: 'none' });
  t.is(reasonAt(e, '/name'), 'is required');
  t.is(reasonAt(e, '/source'), 'is required');
  t.is(reasonAt(e, '/nmae'), 'is not a known field; did you mean "name"?');
  t.is(reasonAt(e, '/steps'), 'must be a list; got "none"');
  t.is(e.scenarioName, undefined);
});

test('schema: a step needs exactly one of guest or host, and an expect', (t) => {
  const e = rejected(t, scenarioWith([{ expect: {} }, { guest: { op: 'clts' }, host: { resetVm: {} }, expect: {} }, { guest: { op: 'clts' } }]));
  t.is(reasonAt(e, '/steps/0'), 'must be a step with exactly one of "guest" or "host"; got {"expect":{}}');
  t.regex(reasonAt(e, '/steps/1'), /^must be a step with exactly one of "guest" or "host"/);
  t.is(reasonAt(e, '/steps/2/expect'), 'is required');
  t.is(e.issues.length, 3, JSON.stringify(e.issues));
});

test('schema: an unknown guest op, a field another op has, a missing field', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { guest: { op: 'rdtsc' }, expect: {} },
      { guest: { op: 'rdmsr', index: 16, value: 1 }, expect: {} },
      { guest: { op: 'wrmsr', index: 16 }, expect: {} },
      { guest: { op: 'readCr', cr: 4, cpl: 1 }, expect: {} },
    ]),
  );
  t.regex(reasonAt(e, '/steps/0/guest/op'), /^must be one of "rdmsr", "wrmsr", .*"exec"; got "rdtsc"$/);
  t.is(reasonAt(e, '/steps/1/guest/value'), 'is not a known field (known here: op, vcpu, cpl, index)');
  t.is(reasonAt(e, '/steps/2/guest/value'), 'is required');
  t.is(reasonAt(e, '/steps/3/guest/cpl'), 'must be one of 0, 3; got 1');
  t.is(e.issues.length, 4, JSON.stringify(e.issues));
});

test('schema: host steps take exactly one operation', (t) => {
  const e = rejected(t, scenarioWith([{ host: {}, expect: {} }, { host: { resetVm: {}, initVcpu: {} }, expect: {} }, { host: { reset: {} }, expect: {} }]));
  t.regex(reasonAt(e, '/steps/0/host'), /^must be exactly one host operation: enableCap, checkExtension/);
  t.regex(reasonAt(e, '/steps/1/host'), /^must be exactly one host operation/);
  t.regex(reasonAt(e, '/steps/2/host/reset'), /^is not a known field; did you mean "resetVm"\?/);
});

test('schema: integers out of range or in the wrong form, a bitmap that is not hex bytes', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { guest: { op: 'wrmsr', index: '0x100000000', value: 1.5 }, expect: {} },
      { guest: { op: 'hypercall', nr: 13, args: [1, 2, 3, 4, 5] }, expect: { ret: '-22' } },
      { host: { setMsrFilter: { flags: 0, ranges: [{ flags: 1, base: 0, nmsrs: 8, bitmap: 'fff' }] } }, expect: {} },
      { guest: { op: 'rdmsr', index: 16 }, vmm: { msr: { error: 256 } }, expect: {} },
    ]),
  );
  t.regex(reasonAt(e, '/steps/0/guest/index'), /32-bit value.*got "0x100000000"/);
  t.regex(reasonAt(e, '/steps/0/guest/value'), /64-bit value.*got 1\.5/);
  t.is(reasonAt(e, '/steps/1/guest/args'), 'has 5 items; at most 4 allowed');
  t.regex(reasonAt(e, '/steps/1/expect/ret'), /two's complement.*got "-22"/);
  t.regex(reasonAt(e, '/steps/2/host/setMsrFilter/ranges/0/bitmap'), /hex bytes.*got "fff"/);
  t.regex(reasonAt(e, '/steps/3/vmm/msr/error'), /8-bit value.*got 256/);
});

test('names from open sets (capabilities, exit reasons, errnos) are checked after the schema, with the nearest name', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { host: { enableCap: { cap: 'KVM_CAP_X86_USER_SPACE_MRS' } }, expect: { errno: 'EINVL' } },
      { guest: { op: 'rdmsr', index: 16 }, expect: { exits: [{ reason: 'KVM_EXIT_X86_RDMRS' }, { reason: 'KVM_EXIT_NOTHING_LIKE_IT' }] } },
    ]),
  );
  t.is(reasonAt(e, '/steps/0/host/enableCap/cap'), 'unknown capability "KVM_CAP_X86_USER_SPACE_MRS"; did you mean "KVM_CAP_X86_USER_SPACE_MSR"?');
  t.is(reasonAt(e, '/steps/0/expect/errno'), 'unknown errno "EINVL"; did you mean "EINVAL"?');
  t.is(reasonAt(e, '/steps/1/expect/exits/0/reason'), 'unknown exit reason "KVM_EXIT_X86_RDMRS"; did you mean "KVM_EXIT_X86_RDMSR"?');
  t.is(reasonAt(e, '/steps/1/expect/exits/1/reason'), 'unknown exit reason "KVM_EXIT_NOTHING_LIKE_IT"');
  t.is(e.issues.length, 4, JSON.stringify(e.issues));
});

test('names from closed sets (filter and range flags, MSR and Heki exit reasons) are the schema\'s, which lists them', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { host: { setMsrFilter: { flags: ['DEFAULT_DENI'], ranges: [{ flags: ['READ', 'KVM_MSR_FILTER_WRIT'], base: 0, nmsrs: 1, bitmap: '00' }] } }, expect: {} },
      { guest: { op: 'rdmsr', index: 16 }, expect: { exits: [{ reason: 29, msr: { reason: 'FILTR' } }, { reason: 40, heki: { reason: 'KVM_HEKI_EXIT_REASON_CR3' } }] } },
    ]),
  );
  t.is(reasonAt(e, '/steps/0/host/setMsrFilter/flags/0'), 'must be filter flags: "DEFAULT_ALLOW" or "DEFAULT_DENY" (or KVM_MSR_FILTER_…), or a number; got "DEFAULT_DENI"');
  t.is(reasonAt(e, '/steps/0/host/setMsrFilter/ranges/0/flags/1'), 'must be range flags: "READ" or "WRITE" (or KVM_MSR_FILTER_…), or a number; got "KVM_MSR_FILTER_WRIT"');
  t.is(reasonAt(e, '/steps/1/expect/exits/0/msr/reason'), 'must be an MSR exit reason: "INVAL", "UNKNOWN" or "FILTER" (or KVM_MSR_EXIT_REASON_…), or its bit value 1, 2 or 4; got "FILTR"');
  t.is(reasonAt(e, '/steps/1/expect/exits/1/heki/reason'), 'must be a Heki exit reason: "CR0" or "CR4" (or KVM_HEKI_EXIT_REASON_…), or its bit value 1 or 2; got "KVM_HEKI_EXIT_REASON_CR3"');
  t.is(e.issues.length, 4, JSON.stringify(e.issues));
});

test('semantics: a control register MOV CR cannot name; writeCrMasked setting and clearing the same bits; LMSW over 16 bits', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { guest: { op: 'writeCrMasked', cr: 5, set: 1 }, expect: {} },
      { guest: { op: 'readCr', cr: 1 }, expect: {} },
      { guest: { op: 'writeCrMasked', cr: 4, set: '0x100080', clear: '0x80' }, expect: {} },
      { guest: { op: 'lmsw', value: '0x10001' }, expect: {} },
    ]),
  );
  t.is(reasonAt(e, '/steps/0/guest/cr'), 'CR5 cannot be written: MOV CR names only CR0, CR2, CR3, CR4 and CR8 (the others are #UD)');
  t.is(reasonAt(e, '/steps/1/guest/cr'), 'CR1 cannot be read: MOV CR names only CR0, CR2, CR3, CR4 and CR8 (the others are #UD)');
  t.is(reasonAt(e, '/steps/2/guest'), 'bits 0x80 are both set and cleared');
  t.is(reasonAt(e, '/steps/3/guest/value'), 'LMSW takes a 16-bit operand; got 0x10001');
});

test('semantics: vmm on a host step; vCPUs the VM does not have', (t) => {
  const e = rejected(
    t,
    scenarioWith(
      [
        { host: { resetVm: {} }, vmm: { msr: { error: 0 } }, expect: {} },
        { guest: { op: 'clts', vcpu: 2 }, expect: {} },
        { host: { initVcpu: { vcpu: 5 } }, expect: {} },
        { host: { getMsrs: { vcpu: 2, indices: [16] } }, expect: {} },
      ],
      { vcpus: 2 },
    ),
  );
  t.is(reasonAt(e, '/steps/0/vmm'), 'only a guest step causes exits for user space to answer');
  t.is(reasonAt(e, '/steps/1/guest/vcpu'), 'vCPU 2 does not exist: the VM has 2 vCPUs (vm.vcpus)');
  t.is(reasonAt(e, '/steps/2/host/initVcpu/vcpu'), 'vCPU 5 does not exist: the VM has 2 vCPUs (vm.vcpus)');
  t.is(reasonAt(e, '/steps/3/host/getMsrs/vcpu'), 'vCPU 2 does not exist: the VM has 2 vCPUs (vm.vcpus)');
});

test('semantics: expectations a step cannot produce, and ones that contradict each other', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { guest: { op: 'wrmsr', index: 16, value: 0 }, expect: { value: 0, ok: true, regs: { rax: 0 } } },
      { host: { enableCap: { cap: 188 } }, expect: { exits: [], fault: null, ret: 0, ok: true, errno: 'EINVAL' } },
      { guest: { op: 'rdmsr', index: 16 }, expect: { value: 1, fault: { vector: 13 } } },
      { guest: { op: 'exec', code: '0f0b' }, expect: { stop: 'end', fault: { vector: 6 } } },
      { guest: { op: 'exec', code: '90' }, expect: { stop: 'fault', fault: null } },
      { guest: { op: 'cpuid', leaf: 0 }, expect: { regs: { rax: 0xd, rsi: 0 } } },
      { host: { getMsrs: { indices: [16] } }, expect: { msrs: [{ index: 17, value: 0 }], value: 1 } },
      { host: { setMsrs: { entries: [{ index: 16, value: 0 }] } }, expect: { msrs: [] } },
      { guest: { op: 'rdmsr', index: 16 }, expect: { ok: true, fault: { vector: 13 } } },
      { guest: { op: 'rdmsr', index: 16 }, expect: { ok: false, fault: null } },
    ]),
  );
  t.is(reasonAt(e, '/steps/0/expect/value'), 'cannot be checked on a wrmsr step (value fits: rdmsr, readCr, checkExtension)');
  t.false(e.issues.some((i) => i.path === '/steps/0/expect/ok'), '"ok" fits a guest step: completed without a fault');
  t.is(reasonAt(e, '/steps/8/expect/ok'), 'contradicts "fault": "ok": true means the step completes without a fault');
  t.is(reasonAt(e, '/steps/9/expect/ok'), 'contradicts "fault": null: "ok": false means the step faults');
  t.is(reasonAt(e, '/steps/0/expect/regs'), 'cannot be checked on a wrmsr step (regs fits: exec, cpuid)');
  t.is(reasonAt(e, '/steps/1/expect/exits'), 'cannot be checked on a enableCap step (exits fits: guest)');
  t.is(reasonAt(e, '/steps/1/expect/fault'), 'cannot be checked on a enableCap step (fault fits: guest)');
  t.is(reasonAt(e, '/steps/1/expect/ret'), 'cannot be checked on a enableCap step (ret fits: hypercall)');
  t.is(reasonAt(e, '/steps/1/expect/errno'), 'contradicts "ok": true — an errno means KVM refused the operation');
  t.is(reasonAt(e, '/steps/2/expect/value'), 'contradicts "fault": a faulting instruction produces no value (PROTOCOL.md §5)');
  t.is(reasonAt(e, '/steps/3/expect/stop'), 'contradicts "fault": code that faults stops with "fault", not "end"');
  t.is(reasonAt(e, '/steps/4/expect/stop'), 'contradicts "fault": null');
  t.is(reasonAt(e, '/steps/5/expect/regs/rsi'), 'is not written by CPUID (only rax, rbx, rcx, rdx)');
  t.is(reasonAt(e, '/steps/6/expect/msrs/0/index'), 'is not among the MSRs this step reads');
  t.is(reasonAt(e, '/steps/6/expect/value'), 'cannot be checked on a getMsrs step (value fits: rdmsr, readCr, checkExtension)');
  t.is(reasonAt(e, '/steps/7/expect/msrs'), 'cannot be checked on a setMsrs step (msrs fits: getMsrs)');
});

test('semantics: steps during an exit — another vCPU, one level only, no snapshots; restore needs a snapshot', (t) => {
  const e = rejected(
    t,
    scenarioWith(
      [
        { host: { restore: { name: 'before' } }, expect: {} },
        {
          guest: { op: 'rdmsr', index: 16 },
          vmm: {
            duringExit: [
              { guest: { op: 'clts' }, expect: {} },
              { guest: { op: 'clts', vcpu: 1 }, vmm: { duringExit: [{ host: { resetVm: {} }, expect: {} }] }, expect: {} },
              { host: { snapshot: { name: 'before' } }, expect: {} },
            ],
          },
          expect: {},
        },
      ],
      { vcpus: 2 },
    ),
  );
  t.is(reasonAt(e, '/steps/0/host/restore/name'), 'no earlier step takes a snapshot named "before"');
  t.is(reasonAt(e, '/steps/1/vmm/duringExit/0/guest/vcpu'), 'vCPU 0 is the one in the exit; a step during the exit must use another vCPU');
  t.is(reasonAt(e, '/steps/1/vmm/duringExit/1/vmm/duringExit'), 'a step run during an exit cannot have steps of its own during an exit');
  t.regex(reasonAt(e, '/steps/1/vmm/duringExit/2/host'), /^cannot snapshot while vCPU 0 is in an exit/);
});

test('semantics: a bitmap longer than the wire carries; exec code over 64 KiB', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { host: { setMsrFilter: { flags: 0, ranges: [{ flags: 1, base: 0, nmsrs: 8, bitmap: 'ff*0x2001' }] } }, expect: {} },
      { guest: { op: 'exec', code: '90*0x10001' }, expect: {} },
      { guest: { op: 'exec', code: '' }, expect: {} },
    ]),
  );
  t.is(reasonAt(e, '/steps/0/host/setMsrFilter/ranges/0/bitmap'), 'is 8193 bytes; the protocol carries at most 8192 (KVM itself takes 1536)');
  t.is(reasonAt(e, '/steps/1/guest/code'), 'must be 1 to 65536 bytes; got 65537');
  t.is(reasonAt(e, '/steps/2/guest/code'), 'must be 1 to 65536 bytes; got 0');
});

test('the vm block is checked by the policy compiler, its problems reported at the block\'s own paths', (t) => {
  const e = rejected(t, withStep({ guest: { op: 'clts' }, expect: {} }, { memory: '3MiB', hostCr4: ['smep', 'smpa'], vcpus: 65, cpus: 1 }));
  t.regex(reasonAt(e, '/vm/hostCr4/1'), /^must be one of "vme", .*; got "smpa"$/);
  t.is(reasonAt(e, '/vm/vcpus'), 'must be a whole number from 1 to 64; got 65');
  t.regex(reasonAt(e, '/vm/cpus'), /^is not a known field; did you mean "vcpus"\?/);
  // The semantic check of the policy compiler, after a schema-valid block:
  const m = rejected(t, withStep({ guest: { op: 'clts' }, expect: {} }, { memory: '3MiB' }));
  t.is(reasonAt(m, '/vm/memory'), 'must be a multiple of 2 MiB from 4 MiB to 4 GiB; got 3 MiB (the boot image needs the first 4 MiB)');
});

test('one pass: schema problems and unknown kernel names are reported together', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { host: { enableCap: { cap: 'KVM_CAP_X86_USER_SPACE_MRS', args: ['0x4'] } }, expect: { ok: true } },
      { guest: { op: 'rdmsr', index: 16, bogus: 1 }, expect: { exits: [{ reason: 'KVM_EXIT_X86_RDMRS', msr: { reason: 'FILTR' } }] } },
      { host: { setMsrFilter: { flags: ['DEFAULT_DENI'], ranges: [] } }, expect: { errno: 'EINVALL' } },
    ]),
  );
  // The schema's finding…
  t.truthy(e.issues.find((i) => i.path.startsWith('/steps/1/guest')), 'the unknown field');
  // …and the names, in the same error.
  t.is(reasonAt(e, '/steps/0/host/enableCap/cap'), 'unknown capability "KVM_CAP_X86_USER_SPACE_MRS"; did you mean "KVM_CAP_X86_USER_SPACE_MSR"?');
  t.is(reasonAt(e, '/steps/1/expect/exits/0/reason'), 'unknown exit reason "KVM_EXIT_X86_RDMRS"; did you mean "KVM_EXIT_X86_RDMSR"?');
  // The schema knows the MSR exit reasons itself: its word stands, once.
  t.regex(reasonAt(e, '/steps/1/expect/exits/0/msr/reason'), /"FILTR"/);
  t.is(e.issues.filter((i) => i.path === '/steps/1/expect/exits/0/msr/reason').length, 1);
  t.regex(reasonAt(e, '/steps/2/host/setMsrFilter/flags/0'), /"DEFAULT_DENI"/);
  t.is(reasonAt(e, '/steps/2/expect/errno'), 'unknown errno "EINVALL"; did you mean "EINVAL"?');
});

test('an exec step\'s asm must name the instructions its code holds', (t) => {
  const e = rejected(
    t,
    scenarioWith([
      { guest: { op: 'exec', code: '0f32 49ffc1', asm: ['rdmsr', 'inc r9'] }, expect: {} },
      { guest: { op: 'exec', code: '0f32 49ffc1', asm: ['wrmsr', 'inc r9'] }, expect: {} },
      { guest: { op: 'exec', code: '0f32', asm: ['rdmsr', 'inc r9'] }, expect: {} },
      { guest: { op: 'exec', code: '48 8b 43 f8  b9 1b 00 00 00  eb fe', asm: ['MOV RAX, QWORD PTR [RBX-8]', 'mov ecx, 27', 'jmp 0x100009'] }, expect: {} },
    ]),
  );
  t.false(e.issues.some((i) => i.path.startsWith('/steps/0/')), 'rdmsr; inc r9 is what 0f 32 49 ff c1 holds');
  t.is(reasonAt(e, '/steps/1/guest/asm/0'), 'says "wrmsr", but the code holds "rdmsr" there');
  t.is(reasonAt(e, '/steps/2/guest/asm'), 'names 2 instructions, but the code holds 1: "rdmsr"');
  // Case, size keywords, decimal or hex, a negative displacement, a branch target from 0x100000.
  t.false(e.issues.some((i) => i.path.startsWith('/steps/3/')), JSON.stringify(e.issues.filter((i) => i.path.startsWith('/steps/3/'))));
});
