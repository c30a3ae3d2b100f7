/**
 * What VM reset, INIT and snapshot/restore do to memory protections (the contract of issue 15
 * §5; docs/transitions.md, docs/memory-protection.md §7): a reset is a rebuilt VM — every
 * protection cleared (attributes, Heki's memory locks, MBEC and delivery back to the VM's
 * defaults), then the policy's memory section applied again; INIT keeps them all (VM state, not
 * vCPU state); a snapshot carries them, and one from before them loads with none.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.js';
import { restoreSnapshot, takeSnapshot } from '../../host/vmm/index.js';
import { testVmm } from './vmm-support.js';

const NW = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW;
const NX = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX;
const LIST = 0x700000;
const HEKI_PAGE = 0x800000n;
const POLICY_RANGE = { address: 0x500000n, size: 0x1000n, attributes: NW };

/** A policy with one protected range, on a v2 VM (whose guest has KVM_HC_PROTECT_MEMORY). */
function setUp(memory: Record<string, unknown> = {}) {
  const t = testVmm({ memory: { protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }], ...memory } });
  return t;
}

/** The guest locks HEKI_PAGE read-only with KVM_HC_PROTECT_MEMORY (RFC v2: one heki_page_list, next_pa 0). */
async function hekiLock(vm: ReturnType<typeof testVmm>['vm']): Promise<void> {
  const list = new DataView(new ArrayBuffer(48));
  list.setBigUint64(16, 1n, true); // npages
  list.setBigUint64(24, HEKI_PAGE, true); // pa
  list.setBigUint64(32, HEKI_PAGE + 0x1000n, true); // epa (exclusive)
  list.setBigUint64(40, abi.MEM_ATTR_READ, true);
  vm.memory.writeBytes(LIST, new Uint8Array(list.buffer));
  const r = await vm.perform(0, { op: 'hypercall', nr: 14n, args: [BigInt(LIST)] });
  if (!('ret' in r) || r.ret !== 0n) throw new Error(`KVM_HC_PROTECT_MEMORY failed: ${JSON.stringify(r, (_, v: unknown) => (typeof v === 'bigint' ? String(v) : v))}`);
}

function writable(vm: ReturnType<typeof testVmm>['vm'], gpa: bigint): boolean | undefined {
  return vm.memoryAttributes().permissions.find((p) => gpa >= p.address && gpa < p.address + p.size)?.write;
}

test('VM reset clears every protection — a control client\'s attributes, Heki\'s locks, MBEC, the delivery — then applies the policy\'s again', async (t) => {
  const { vm } = setUp();
  vm.setMemoryAttributes({ address: 0x600000n, size: 0x1000n, attributes: NX });
  await hekiLock(vm);
  t.false(writable(vm, HEKI_PAGE), 'Heki\'s lock holds');
  t.is(vm.modelVm('t').hekiMemoryLocks.v2.length, 1);
  vm.reset('control');
  t.deepEqual(vm.memoryAttributes().attributes, [POLICY_RANGE], 'the policy\'s range again, the control client\'s gone');
  t.true(writable(vm, HEKI_PAGE), 'Heki\'s lock cleared');
  t.deepEqual(vm.modelVm('t').hekiMemoryLocks.v2, []);
  t.false(writable(vm, 0x500000n));
});

test('VM reset puts MBEC and the delivery back to the VM\'s defaults, or to what the policy says', (t) => {
  const plain = setUp().vm;
  plain.setMemoryAttributes({ address: 0x500000n, size: 0x1000n, attributes: 0n });
  plain.enableCap(abi.KVM_CAP_PINBOX_MBEC, [1n]);
  plain.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [1n]);
  t.true(plain.memoryAttributes().mbec);
  plain.reset('control');
  t.like(plain.memoryAttributes(), { mbec: false, delivery: 'inject' });

  const v3 = testVmm({ profile: 'v3', memory: { mbec: true } }).vm;
  v3.enableCap(abi.KVM_CAP_PINBOX_MEMORY_FAULT_POLICY, [1n]);
  t.is(v3.memoryAttributes().delivery, 'inject');
  v3.reset('control');
  t.like(v3.memoryAttributes(), { mbec: true, delivery: 'exit' }, 'the policy\'s MBEC, the v3 default delivery');
});

test('a triple fault under onShutdown "reset" is a VM reset: the same clearing', async (t) => {
  const r = testVmm({ onShutdown: 'reset', memory: { protect: [{ gpa: '0x500000', size: '0x1000', deny: ['write'] }] } }).vm;
  r.setMemoryAttributes({ address: 0x600000n, size: 0x1000n, attributes: NX });
  // lidt to a zero-limit IDT, then ud2: the #UD cannot be delivered → #DF → triple fault.
  const shut = await r.perform(0, { op: 'exec', code: Uint8Array.of(0x0f, 0x01, 0x1b, 0x0f, 0x0b), regs: { rbx: 0x600800n } });
  t.is((shut as { stop: string }).stop, 'shutdown');
  t.deepEqual(r.memoryAttributes().attributes, [POLICY_RANGE]);
});

test('INIT keeps every protection: they are VM state, not vCPU state', async (t) => {
  const { vm } = setUp({ mbec: true });
  vm.setMemoryAttributes({ address: 0x600000n, size: 0x1000n, attributes: NX });
  await hekiLock(vm);
  const before = vm.memoryAttributes();
  const locks = vm.modelVm('t').hekiMemoryLocks;
  vm.initVcpu(0);
  t.deepEqual(vm.memoryAttributes(), before);
  t.deepEqual(vm.modelVm('t').hekiMemoryLocks, locks);
});

test('snapshot/restore keeps them: attributes, Heki\'s locks, MBEC and the delivery come back over a reset VM', async (t) => {
  const { vm } = setUp({ mbec: true });
  vm.setMemoryAttributes({ address: 0x600000n, size: 0x2000n, attributes: NX | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX });
  await hekiLock(vm);
  const before = vm.memoryAttributes();
  const locks = vm.modelVm('t').hekiMemoryLocks;
  const snap = takeSnapshot(vm);
  vm.reset('control');
  t.notDeepEqual(vm.memoryAttributes(), before);
  restoreSnapshot(vm, snap);
  t.deepEqual(vm.memoryAttributes(), before);
  t.deepEqual(vm.modelVm('t').hekiMemoryLocks, locks);
});

test('a snapshot from before memory protections loads with none, whatever the policy applies at a reset', async (t) => {
  const { vm } = setUp();
  const old = decodeMsgpack(takeSnapshot(vm)) as Record<string, unknown>;
  t.truthy(old.memoryProtection);
  delete old.memoryProtection;
  restoreSnapshot(vm, encodeMsgpack(old));
  t.deepEqual(vm.memoryAttributes().attributes, []);
  t.true(writable(vm, 0x500000n));
});

test('a tampered snapshot\'s protections are refused and the VM is reset instead', (t) => {
  const { vm } = setUp();
  const bad = decodeMsgpack(takeSnapshot(vm)) as { memoryProtection: { attributes: { address: bigint; size: bigint; attributes: bigint }[] } };
  bad.memoryProtection.attributes = [{ address: 0x500800n, size: 0x1000n, attributes: NW }];
  t.throws(() => restoreSnapshot(vm, encodeMsgpack(bad)), { message: /could not be loaded.*page-aligned.*the VM was reset instead/ });
  t.deepEqual(vm.memoryAttributes().attributes, [POLICY_RANGE]);
});
