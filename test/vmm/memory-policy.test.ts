/**
 * The policy's memory section (docs/memory-protection.md §7; the integrator's contract
 * for issue 15 §1): its forms, its defaults, what it applies to a new VM, and the bad sections
 * refused with the entry and what is wrong, before anything is made.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { PolicyError, parsePolicy } from '../../host/vmm/index.js';
import { testVmm } from './vmm-support.js';

const NW = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW;
const NX = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX;
const NR = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR;
const NUX = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX;

function issuesOf(doc: unknown): { path: string; message: string }[] {
  try {
    parsePolicy(doc);
  } catch (e) {
    if (e instanceof PolicyError) return e.issues.map((i) => ({ path: i.path, message: i.message }));
    throw e;
  }
  return [];
}

test('memory as a size alone is the size, with no protections', (t) => {
  const p = parsePolicy({ memory: '32MiB' });
  t.is(p.memorySize, 32 * 1024 * 1024);
  t.like(p.memory, { applies: false, mbec: false, onViolation: 'log', protect: [] });
  t.is(p.memory.delivery, undefined);
});

test('memory as an object: size, MBEC, delivery, onViolation and ranges to the KVM numbers', (t) => {
  const p = parsePolicy({
    profile: 'v3',
    memory: {
      size: '32MiB', mbec: true, delivery: 'exit', onViolation: 'pause',
      protect: [
        { gpa: '0x100000', size: '0x4000', deny: ['write'], name: 'kernel text' },
        { gpa: '0x200000', size: '0x1000', deny: ['exec', 'userExec'], name: 'kernel data' },
        { gpa: 0x300000, size: 4096, deny: ['read', 'write', 'exec', 'userExec'] },
      ],
    },
  });
  t.is(p.memorySize, 32 * 1024 * 1024);
  t.deepEqual(p.memory, {
    applies: true, mbec: true, delivery: 'exit', onViolation: 'pause',
    protect: [
      { index: 0, address: 0x100000n, size: 0x4000n, attributes: NW, name: 'kernel text' },
      { index: 1, address: 0x200000n, size: 0x1000n, attributes: NX | NUX, name: 'kernel data' },
      { index: 2, address: 0x300000n, size: 0x1000n, attributes: NR | NW | NX | NUX },
    ],
  });
});

test('the VM is made with the section applied: attributes, MBEC, delivery', (t) => {
  const { vmm } = testVmm({
    profile: 'v3',
    memory: { mbec: true, delivery: 'inject', protect: [{ gpa: '0x500000', size: '0x2000', deny: ['write', 'userExec'] }] },
  });
  const view = vmm.memoryAttributes('default');
  t.deepEqual(view.attributes, [{ address: 0x500000n, size: 0x2000n, attributes: NW | NUX }]);
  t.true(view.mbec);
  t.is(view.delivery, 'inject');
  const locked = view.permissions.find((r) => r.address === 0x500000n);
  t.deepEqual(locked, { address: 0x500000n, size: 0x2000n, read: true, write: false, exec: true, userExec: false });
  t.like(view.permissions[0], { address: 0n, read: true, write: true, exec: true, userExec: true });
});

test('the delivery defaults to the profile\'s KVM: inject under v2 (no KVM_EXIT_MEMORY_FAULT), exit under v3', (t) => {
  t.is(testVmm({}).vmm.memoryAttributes('default').delivery, 'inject');
  t.is(testVmm({ profile: 'v3' }).vmm.memoryAttributes('default').delivery, 'exit');
  t.is(testVmm({ profile: 'v3' }).vmm.memoryAttributes('default').mbec, false);
});

test('bad sections are refused naming the entry and what is wrong, every problem at once', (t) => {
  const issues = issuesOf({
    memory: {
      delivery: 'exit',
      protect: [
        { gpa: '0x100800', size: '0x1000', deny: ['write'], name: 'text' },
        { gpa: '0x200000', size: '0x1800', deny: ['write'] },
        { gpa: '0xff0000', size: '0x20000', deny: ['write'] },
        { gpa: '0x300000', size: '0x1000', deny: ['userExec'] },
        { gpa: '0x400000', size: '0x1000', deny: ['read', 'write'] },
        { gpa: '0x500000', size: '0x2000', deny: ['write'], name: 'a' },
        { gpa: '0x501000', size: '0x1000', deny: ['exec'] },
      ],
    },
  });
  const at = (path: string): string => issues.filter((i) => i.path === path).map((i) => i.message).join(' | ');
  t.regex(at('/memory/delivery'), /"exit" conflicts with profile "v2".*KVM_EXIT_HEKI_CONFIGURE/);
  t.regex(at('/memory/protect/0/gpa'), /entry 0 \("text"\): 0x100800 is not page-aligned/);
  t.regex(at('/memory/protect/1/size'), /entry 1: 0x1800 is not a non-zero multiple of the page size/);
  t.regex(at('/memory/protect/2/size'), /entry 2: 0xff0000\+0x20000 goes beyond guest memory \(0x1000000 bytes\)/);
  t.regex(at('/memory/protect/3/deny'), /entry 3: "userExec" needs MBEC/);
  t.regex(at('/memory/protect/4/deny'), /entry 4: .*"read" needs "exec" denied too/);
  t.regex(at('/memory/protect/6'), /entry 6 overlaps entry 5 \("a"\)/);
  t.is(issues.length, 7);
});

test('the schema refuses unknown fields, deny names and missing parts of a range', (t) => {
  const issues = issuesOf({ memory: { mbec: 'yes', protect: [{ gpa: '0x1000', deny: ['run'] }], extra: 1 } });
  const paths = issues.map((i) => i.path);
  t.true(paths.includes('/memory/mbec'), paths.join(','));
  t.true(paths.includes('/memory/protect/0/size'), paths.join(','));
  t.true(paths.some((p) => p.startsWith('/memory/protect/0/deny')), paths.join(','));
  t.true(paths.includes('/memory/extra'), paths.join(','));
});
