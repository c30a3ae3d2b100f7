/**
 * The memory-protection view in pieces (docs/memory-protection.md §7.3): with a limit, each list
 * holds at most that many runs, both end at `next`, a run the cut goes through is clipped there,
 * and the pieces asked for from each `next` put together are the whole view. The attribute and
 * permission runs differ where a Heki lock already takes what an attribute would: v1's NOWRITE
 * over a region in which user space denies write on every other page leaves one run of rights
 * but many runs of attributes (20230505152046.6575-5-mic@digikod.net: NOWRITE removes write).
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { memoryAttributesView, type MemoryAttributesView } from '../../host/vmm/memory-protection.js';
import { Guest } from '../kvm/guest.js';

const MIB = 1 << 20;
const ARGS = 0x60_0000;
const REGION = 0x50_0000n, PAGES = 16n;
const NW = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW;

function lockedRegion(): Guest {
  const g = new Guest({ hekiMemory: 'v1' });
  // struct heki_pa_range { gfn_start, gfn_end (inclusive), attributes = NOWRITE }
  g.vm.memory.write64(ARGS, REGION / 4096n);
  g.vm.memory.write64(ARGS + 8, REGION / 4096n + PAGES - 1n);
  g.vm.memory.write64(ARGS + 16, 1n);
  g.start('vmcall', { rax: BigInt(abi.KVM_HC_LOCK_MEM_PAGE_RANGES), rbx: BigInt(ARGS), rcx: 24n, rdx: 0n });
  if (g.finish().regs.rax !== 0n) throw new Error('the Heki v1 lock was refused');
  for (let p = 0n; p < PAGES; p += 2n) g.vm.setMemoryAttributes!({ address: REGION + p * 4096n, size: 4096n, attributes: NW, flags: 0n });
  return g;
}

test('a limit cuts both lists at one GPA, clips the run it goes through, and says where the rest begins', (t) => {
  const g = lockedRegion();
  const size = g.vm.memory.size;
  const piece = memoryAttributesView(g.vm, size, 0n, 2);
  // Attribute runs: every other page of the region, one page each; the third one starts the rest.
  t.deepEqual(piece.attributes, [
    { address: REGION, size: 4096n, attributes: NW },
    { address: REGION + 0x2000n, size: 4096n, attributes: NW },
  ]);
  t.is(piece.next, REGION + 0x4000n);
  // Rights: all of memory below the region, then the region read+execute — clipped at the cut.
  t.deepEqual(piece.permissions.map((p) => [p.address, p.size, p.write]), [[0n, REGION, true], [REGION, 0x4000n, false]]);
});

test('the pieces from each next, put together, are the whole view', (t) => {
  const g = lockedRegion();
  const size = g.vm.memory.size;
  const whole = memoryAttributesView(g.vm, size);
  t.is(whole.next, undefined, 'no limit, no cut');
  t.is(whole.attributes.length, Number(PAGES / 2n));
  const joined: MemoryAttributesView[] = [];
  for (let at: bigint | undefined = 0n; at !== undefined;) {
    const piece: MemoryAttributesView = memoryAttributesView(g.vm, size, at, 3);
    t.true(piece.attributes.length <= 3 && piece.permissions.length <= 3);
    joined.push(piece);
    at = piece.next;
  }
  t.true(joined.length > 1);
  t.deepEqual(joined.flatMap((p) => p.attributes), whole.attributes);
  // Rights runs cut between pieces are joined again; they cover memory without a gap.
  const rights = joined.flatMap((p) => p.permissions).reduce<{ address: bigint; size: bigint; write: boolean }[]>((out, r) => {
    const last = out[out.length - 1];
    if (last !== undefined && last.address + last.size === r.address && last.write === r.write) last.size += r.size;
    else out.push({ address: r.address, size: r.size, write: r.write });
    return out;
  }, []);
  t.deepEqual(rights, whole.permissions.map((p) => ({ address: p.address, size: p.size, write: p.write })));
  t.is(rights.reduce((s, r) => s + r.size, 0n), BigInt(size));
});

test('an address that is not page-aligned, or beyond memory, is refused', (t) => {
  const g = new Guest();
  for (const bad of [1n, 0x1000n + 8n, BigInt(64 * MIB) * 1024n]) {
    t.throws(() => memoryAttributesView(g.vm, g.vm.memory.size, bad), { message: /page-aligned and within guest memory/ });
  }
});
