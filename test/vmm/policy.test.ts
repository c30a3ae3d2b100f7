import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  EmulatedMsrs, loadPolicyFile, parsePolicy, parsePolicyText, PolicyError, type CompiledPolicy,
} from '../../host/vmm/policy/index.js';

const MIB = 1024 * 1024;

function rejected(t: import('ava').ExecutionContext, value: unknown): PolicyError {
  const error = t.throws(() => parsePolicy(value), { instanceOf: PolicyError });
  return error as PolicyError;
}

function issueAt(error: PolicyError, path: string): string {
  const found = error.issues.filter((i) => i.path === path);
  if (found.length === 0) throw new Error(`no issue at ${path}; issues: ${JSON.stringify(error.issues)}`);
  return found.map((i) => i.message).join(' | ');
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

test('an empty policy gets the documented defaults and the v2 capability numbers', (t) => {
  const p = parsePolicy({});
  t.is(p.name, 'default');
  t.is(p.vcpus, 1);
  t.is(p.memorySize, 16 * MIB);
  t.is(p.onDenial, 'log');
  t.is(p.msrFilter, undefined);
  t.is(p.msrHandlers.size, 0);
  t.deepEqual(p.vmOptions, { profile: 'v2', guestCpuid: {}, memorySize: 16 * MIB, ignoreMsrs: false, vcpus: 1 });
  // KVM_CAP_X86_USER_SPACE_MSR = 188 with KVM_MSR_EXIT_REASON_FILTER (4); Heki v2
  // KVM_CAP_HEKI_CONFIGURE = 235 and KVM_CAP_HEKI_DENIAL = 236 with CR0|CR4 (3): docs/heki.md §3.
  t.deepEqual(p.caps, [
    { cap: 188, args: [4n] },
    { cap: 235, args: [3n] },
    { cap: 236, args: [3n] },
  ]);
  t.deepEqual(p.warnings, []);
});

test('profile v3 moves the Heki capabilities to 236/237', (t) => {
  const p = parsePolicy({ profile: 'v3', heki: { configureExits: ['cr4'], denialExits: [] }, userSpaceMsr: ['inval', 'unknown'] });
  t.is(p.vmOptions.profile, 'v3');
  t.deepEqual(p.caps, [
    { cap: 188, args: [3n] }, // INVAL (1) | UNKNOWN (2)
    { cap: 236, args: [2n] }, // KVM_HEKI_EXIT_REASON_CR4
    { cap: 237, args: [0n] },
  ]);
});

test('host model registers may be hex values or bit names', (t) => {
  const p = parsePolicy({
    hostModel: { cr0: ['pe', 'wp', 'pg'], cr4: ['smep', 'smap', 'umip', 'fsgsbase'], cr4PinnableMask: '0x100b10800' },
    guestCpuid: { cet: true, smap: false },
    ignoreMsrs: true,
    vcpus: 4,
  });
  // CR0: PE bit 0, WP bit 16, PG bit 31. CR4: UMIP 11, FSGSBASE 16, SMEP 20, SMAP 21 (SDM vol. 3A §2.5).
  t.is(p.vmOptions.hostCr0, 0x80010001n);
  t.is(p.vmOptions.hostCr4, 0x310800n);
  t.is(p.vmOptions.cr4PinnableMask, 0x100b10800n);
  t.deepEqual(p.vmOptions.guestCpuid, { cet: true, smap: false });
  t.true(p.vmOptions.ignoreMsrs);
  t.is(p.vmOptions.vcpus, 4);
  t.is(parsePolicy({ hostModel: { cr0: '0x80050033' } }).vmOptions.hostCr0, 0x80050033n);
  t.is(parsePolicy({ hostModel: { cr0: 0x80050033 } }).vmOptions.hostCr0, 0x80050033n);
});

test('memory sizes: bytes, hex and IEC units, within the boot layout limits', (t) => {
  t.is(parsePolicy({ memory: '64MiB' }).memorySize, 64 * MIB);
  t.is(parsePolicy({ memory: '1 GiB' }).memorySize, 1024 * MIB);
  t.is(parsePolicy({ memory: '4GiB' }).memorySize, 4096 * MIB);
  t.is(parsePolicy({ memory: '0x400000' }).memorySize, 4 * MIB);
  t.is(parsePolicy({ memory: 8 * MIB }).memorySize, 8 * MIB);
  t.is(parsePolicy({ memory: '6144KiB' }).memorySize, 6 * MIB);
  t.regex(issueAt(rejected(t, { memory: '3MiB' }), '/memory'), /multiple of 2 MiB from 4 MiB to 4 GiB; got 3 MiB .*first 4 MiB/);
  t.regex(issueAt(rejected(t, { memory: '5MiB' }), '/memory'), /got 5 MiB/);
  t.regex(issueAt(rejected(t, { memory: '6GiB' }), '/memory'), /got 6 GiB/);
  t.regex(issueAt(rejected(t, { memory: '16MB' }), '/memory'), /must be a size in bytes.*got "16MB"/);
});

test('every schema problem is reported at once, each at its own JSON path', (t) => {
  const e = rejected(t, {
    vcpus: 0,
    vcpsu: 2,
    bogus: true,
    profile: 'v4',
    hostModel: { cr4: ['smep', 'nope'] },
    msrFilter: { ranges: [{ access: ['read', 'read'], base: '0xzz', nmsrs: 0x3001, bitmap: '0' }] },
    userSpaceMsr: ['filter', 'filter'],
    msrHandlers: { foo: {}, '0x10': { read: 'maybe', wirte: 'accept' } },
    heki: { onDenial: 'panic' },
  });
  t.regex(issueAt(e, '/vcpus'), /from 1 to 64; got 0/);
  t.regex(issueAt(e, '/vcpsu'), /not a known field; did you mean "vcpus"\?/);
  t.regex(issueAt(e, '/bogus'), /not a known field \(known fields: name, vcpus/);
  t.regex(issueAt(e, '/profile'), /one of "v2", "v3"; got "v4"/);
  t.regex(issueAt(e, '/hostModel/cr4/1'), /"smep".*; got "nope"/s);
  t.regex(issueAt(e, '/msrFilter/default'), /is required/);
  t.regex(issueAt(e, '/msrFilter/ranges/0/access/1'), /repeats item 0/);
  t.regex(issueAt(e, '/msrFilter/ranges/0/base'), /32-bit value.*got "0xzz"/);
  t.regex(issueAt(e, '/msrFilter/ranges/0/nmsrs'), /from 1 to 0x3000; got 12289/);
  t.regex(issueAt(e, '/msrFilter/ranges/0/bitmap'), /hex bytes/);
  t.regex(issueAt(e, '/userSpaceMsr/1'), /repeats item 0/);
  t.regex(issueAt(e, '/msrHandlers/foo'), /MSR index/);
  t.regex(issueAt(e, '/msrHandlers/0x10/read'), /"deny"; got "maybe"/);
  t.regex(issueAt(e, '/msrHandlers/0x10/wirte'), /did you mean "write"/);
  t.regex(issueAt(e, '/heki/onDenial'), /"log", "pause", "kill"; got "panic"/);
  t.true(e.issues.length >= 15);
  t.regex(e.message, /^policy: invalid policy, \d+ problems:\n {2}\//);
});

test('numbers that JSON cannot hold exactly must be hex strings', (t) => {
  const e = parsePolicyText.bind(null, '{"hostModel": {"cr4": 18446744073709551615}}');
  const error = t.throws(e, { instanceOf: PolicyError }) as PolicyError;
  t.regex(issueAt(error, '/hostModel/cr4'), /hex string/);
  t.is(parsePolicyText('{"hostModel": {"cr4": "0xffffffffffffffff"}}').vmOptions.hostCr4, 0xffffffffffffffffn);
});

test('text that is not JSON names the source and the line, column and offset', (t) => {
  const text = '{\n  "vcpus": 2,\n  "name": }\n';
  const e = t.throws(() => parsePolicyText(text, 'vm.json'), { instanceOf: PolicyError }) as PolicyError;
  t.is(e.source, 'vm.json');
  // Line 1 is 2 characters with its newline, line 2 is 14: the "}" is at offset 16 + 10 = 26.
  t.regex(e.message, /^vm\.json: .*not valid JSON at line 3, column 11 \(offset 26\): expected a value/s);
  const trailing = t.throws(() => parsePolicyText('{"vcpus": 1,}', 'a.json')) as PolicyError;
  t.regex(trailing.message, /line 1, column 13 \(offset 12\): expected a property name/);
  const garbage = t.throws(() => parsePolicyText('{"vcpus": 1} x')) as PolicyError;
  t.regex(garbage.message, /column 14 .*expected the end of the text/);
});

test('loading a file: a missing file is named, and a byte-order mark is accepted', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'pinbox-policy-'));
  const missing = join(dir, 'nope.json');
  const e = t.throws(() => loadPolicyFile(missing), { instanceOf: PolicyError }) as PolicyError;
  t.is(e.source, missing);
  t.regex(e.message, /cannot read the policy file: no such file/);
  const file = join(dir, 'vm.json');
  writeFileSync(file, '\ufeff{"name": "web-1", "vcpus": 2}');
  const p = loadPolicyFile(file);
  t.is(p.name, 'web-1');
  t.is(p.vcpus, 2);
  t.regex((t.throws(() => loadPolicyFile(dir)) as PolicyError).message, /is a directory/);
});

test('raw filter ranges compile to struct kvm_msr_filter exactly', (t) => {
  const p = parsePolicy({
    msrFilter: {
      default: 'deny',
      ranges: [
        { access: ['read'], base: 0, nmsrs: 16, bitmap: 'ff 00' },
        { access: ['read', 'write'], base: '0xc0000080', nmsrs: '0x5', bitmap: '1b' },
      ],
    },
  });
  t.deepEqual(p.msrFilter, {
    flags: 1, // KVM_MSR_FILTER_DEFAULT_DENY
    ranges: [
      // KVM_MSR_FILTER_READ = 1; the bitmap padded to BITS_TO_LONGS(nmsrs) * 8 bytes
      { flags: 1, base: 0, nmsrs: 16, bitmap: Uint8Array.of(0xff, 0, 0, 0, 0, 0, 0, 0) },
      { flags: 3, base: 0xc0000080, nmsrs: 5, bitmap: Uint8Array.of(0x1b, 0, 0, 0, 0, 0, 0, 0) },
    ],
  });
});

test('raw ranges KVM would reject or silently ignore are errors naming the field', (t) => {
  const range = (r: object) => ({ msrFilter: { default: 'allow', ranges: [{ access: ['read'], base: 0, nmsrs: 8, bitmap: '00', ...r }] } });
  t.regex(issueAt(rejected(t, range({ nmsrs: 16, bitmap: '00' })), '/msrFilter/ranges/0/bitmap'), /has 1 byte; 0x10 MSRs need 2 to 8/);
  t.regex(issueAt(rejected(t, range({ bitmap: '00'.repeat(9) })), '/msrFilter/ranges/0/bitmap'), /has 9 bytes; 0x8 MSRs need 1 to 8/);
  // docs/msr-filter.md §2.1: base 0xffffff00 + 0x200 wraps to 0x100, a range that matches nothing.
  t.regex(
    issueAt(rejected(t, range({ base: '0xffffff00', nmsrs: '0x200', bitmap: '00'.repeat(64) })), '/msrFilter/ranges/0/nmsrs'),
    /runs past 0xffffffff.*would match nothing/,
  );
  const seventeen = { msrFilter: { default: 'allow', ranges: Array.from({ length: 17 }, () => ({ access: ['read'], base: 0, nmsrs: 8, bitmap: '00' })) } };
  t.regex(issueAt(rejected(t, seventeen), '/msrFilter/ranges'), /has 17 items; at most 16 allowed/);
  const both = { msrFilter: { default: 'allow', ranges: [], deny: ['0x10'] } };
  t.regex(issueAt(rejected(t, both), '/msrFilter'), /both "ranges" and "allow"\/"deny"/);
});

test('"deny everything" becomes a filter KVM accepts, with the same meaning', (t) => {
  // KVM refuses DEFAULT_DENY with no non-empty range (docs/msr-filter.md §2.2 step 4).
  for (const msrFilter of [{ default: 'deny' }, { default: 'deny', ranges: [] }, { default: 'deny', deny: ['0x10'] }]) {
    const f = parsePolicy({ msrFilter }).msrFilter!;
    t.is(f.flags, 1);
    t.true(f.ranges.some((r) => r.nmsrs > 0));
    for (const r of f.ranges) t.is(r.bitmap[0]! & 1, 0, 'the range only denies');
  }
  t.deepEqual(parsePolicy({ msrFilter: { default: 'allow' } }).msrFilter, { flags: 0, ranges: [] });
});

test('friendly lists: x2APIC entries, backwards ranges and allow/deny contradictions are errors', (t) => {
  const e = rejected(t, {
    msrFilter: {
      default: 'allow',
      allow: [{ range: '0xc0000080-0xc0000084', access: 'read' }, '0x10'],
      deny: [
        '0x7f0-0x800',
        '0x20-0x10',
        { msr: '0xc0000082', access: 'rw' },
        { msr: '0x10', access: 'write' },
        { range: '0x40-0x41', msr: '0x40' },
        {},
      ],
    },
  });
  t.regex(issueAt(e, '/msrFilter/deny/0'), /0x7f0-0x800 includes x2APIC MSRs 0x800-0x8ff, which KVM never filters/);
  t.regex(issueAt(e, '/msrFilter/deny/1'), /runs backwards/);
  t.regex(issueAt(e, '/msrFilter/deny/2'), /denies 0xc0000082 for reads, which \/msrFilter\/allow\/0 allows/);
  t.regex(issueAt(e, '/msrFilter/deny/3'), /denies 0x10 for writes, which \/msrFilter\/allow\/1 allows/);
  t.regex(issueAt(e, '/msrFilter/deny/4'), /both "msr" and "range"/);
  t.regex(issueAt(e, '/msrFilter/deny/5'), /needs "msr" or "range"/);
  // The same MSR allowed for reads and denied for writes is no contradiction.
  t.notThrows(() => parsePolicy({ msrFilter: { default: 'deny', allow: [{ msr: 16, access: 'read' }], deny: [{ msr: 16, access: 'write' }] } }));
});

test('friendly lists KVM cannot express are rejected: MSR 0xffffffff, and more than 16 ranges', (t) => {
  // base + nmsrs is computed in 32 bits, so no range covers 0xffffffff (docs/msr-filter.md §2.1).
  t.regex(issueAt(rejected(t, { msrFilter: { default: 'allow', deny: ['0xfffffff0-0xffffffff'] } }), '/msrFilter/deny/0'), /0xffffffff cannot be denied/);
  t.regex(issueAt(rejected(t, { msrFilter: { default: 'deny', allow: ['0xffffffff'] } }), '/msrFilter/allow/0'), /0xffffffff cannot be allowed/);
  // ...but naming it where it only repeats the default changes nothing and is fine.
  t.notThrows(() => parsePolicy({ msrFilter: { default: 'deny', deny: ['0xffffffff'] } }));

  // MSRs 0x10000 apart need one range each: 16 fit (KVM_MSR_FILTER_MAX_RANGES), 17 do not.
  const apart = (n: number) => Array.from({ length: n }, (_, i) => '0x' + (0x10000 * (i + 1)).toString(16));
  t.is(parsePolicy({ msrFilter: { default: 'allow', deny: apart(16) } }).msrFilter!.ranges.length, 16);
  t.regex(issueAt(rejected(t, { msrFilter: { default: 'allow', deny: apart(17) } }), '/msrFilter'), /need 17 KVM ranges, more than the 16/);
  // Reads and writes with the same exceptions share READ|WRITE ranges, so 16 of each still fit.
  const both = [...apart(16).map((msr) => ({ msr, access: 'read' })), ...apart(16).map((msr) => ({ msr, access: 'write' }))];
  const shared = parsePolicy({ msrFilter: { default: 'allow', deny: both } }).msrFilter!;
  t.is(shared.ranges.length, 16);
  t.true(shared.ranges.every((r) => r.flags === 3));
});

test('msrHandlers compile to a lookup that answers exits per vCPU', (t) => {
  const p = parsePolicy({
    vcpus: 2,
    msrHandlers: {
      '0x35': { read: '0x10001' },
      '0x4b564d10': { read: 7, write: 'accept' },
      '0xc0010000': { write: 'store', read: '0x5' },
      '0xc0010001': { write: 'store' },
      '16': {},
    },
  });
  const msrs = new EmulatedMsrs(p.msrHandlers, p.vcpus);
  t.deepEqual(msrs.read(0, 0x35), { error: 0, data: 0x10001n, source: 'value' });
  t.deepEqual(msrs.write(0, 0x35, 1n), { error: 1, data: 1n, source: 'deny' });
  t.deepEqual(msrs.read(1, 0x4b564d10), { error: 0, data: 7n, source: 'value' });
  t.deepEqual(msrs.write(1, 0x4b564d10, 9n), { error: 0, data: 9n, source: 'accept' });
  t.deepEqual(msrs.read(0, 0x10), { error: 1, data: 0n, source: 'deny' }, 'the decimal key 16 is MSR 0x10');
  t.deepEqual(msrs.read(0, 0x11), { error: 1, data: 0n, source: 'no-handler' });
  // "store": reads return the initial value, then what this vCPU wrote; other vCPUs are apart.
  t.is(msrs.read(0, 0xc0010000).data, 5n);
  t.is(msrs.read(0, 0xc0010001).data, 0n);
  msrs.write(0, 0xc0010000, 0xdeadn);
  t.is(msrs.read(0, 0xc0010000).data, 0xdeadn);
  t.is(msrs.read(1, 0xc0010000).data, 5n);
  msrs.reset();
  t.is(msrs.read(0, 0xc0010000).data, 5n);
  t.throws(() => msrs.read(2, 0x35), { instanceOf: RangeError });
});

test('contradictory or repeated handlers are errors', (t) => {
  const e = rejected(t, { msrHandlers: { '0x10': { read: 'deny', write: 'store' }, '0x20': {}, '32': {}, '4294967296': {} } });
  t.regex(issueAt(e, '/msrHandlers/0x10/read'), /contradicts write "store"/);
  // JavaScript objects list integer-like keys first, so "32" is met before "0x20".
  t.regex(issueAt(e, '/msrHandlers/0x20'), /names MSR 0x20 again \(as \/msrHandlers\/32 does\)/);
  t.regex(issueAt(e, '/msrHandlers/4294967296'), /not a 32-bit MSR index/);
});

test('onDenial pause or kill needs denial exits; unused handlers are a warning', (t) => {
  t.regex(issueAt(rejected(t, { heki: { onDenial: 'kill', denialExits: [] } }), '/heki/onDenial'), /needs denial exits/);
  t.is(parsePolicy({ heki: { onDenial: 'pause', denialExits: ['cr4'] } }).onDenial, 'pause');
  const quiet = parsePolicy({ userSpaceMsr: [], msrHandlers: { '0x35': { read: 1 } }, msrFilter: { default: 'allow', deny: ['0x10'] } });
  t.true(quiet.warnings.some((w) => /msrHandlers are never used/.test(w)));
  t.true(quiet.warnings.some((w) => /lacks "filter"/.test(w)));
});

test('compiling is pure: a frozen document is read, never written', (t) => {
  const doc = deepFreeze({
    name: 'frozen',
    hostModel: { cr4: ['smep'] },
    guestCpuid: { smep: true },
    msrFilter: { default: 'deny', allow: ['0x10', { range: '0x20-0x30', access: 'read' }] },
    msrHandlers: { '0x35': { read: 1, write: 'store' } },
    heki: { configureExits: ['cr0'] },
    userSpaceMsr: ['filter'],
  });
  let p: CompiledPolicy | undefined;
  t.notThrows(() => {
    p = parsePolicy(doc);
  });
  t.is(p!.name, 'frozen');
  t.not(p!.vmOptions.guestCpuid, doc.guestCpuid);
});
