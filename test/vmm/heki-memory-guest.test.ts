/**
 * guest.hekiMemory through a pinbox server (docs/memory-protection.md §5, §6): the guest writes a
 * heki_page_list with its own stores and calls KVM_HC_PROTECT_MEMORY (14, RFC v2); a store to the
 * page it made read-only then takes the #PF KVM injects on a v2-profile VM (W|P = 3, as
 * __vmx_handle_ept_violation() makes of a write to a readable page). The v3 profile has no memory
 * hypercall: -KVM_ENOSYS.
 */
import test from 'ava';
import { KVM_EINVAL, KVM_ENOSYS, MEM_ATTR_READ, PF_VECTOR } from '../../protocol/abi.js';
import { connect } from '../../guest-sdk/index.js';
import { withServer } from './server-support.js';

const BUFFER = 0x60_0000n;
const PAGE = 0x50_0000n;
const STORE = Uint8Array.of(0x48, 0x89, 0x03); // mov [rbx], rax

test('protectMemory locks a page read-only; the guest\'s store then faults with #PF(W|P)', async (t) => {
  await withServer({}, async (s) => {
    const guest = await connect(s.guestUrl, { vm: 'mem' });
    const r = await guest.hekiMemory.protectMemory(BUFFER, [{ pa: PAGE, epa: PAGE + 0x1000n, permissions: MEM_ATTR_READ }]);
    t.like(r, { ok: true, ret: 0n, value: 0n, errno: undefined });
    const before = await guest.exec(STORE, { regs: { rbx: PAGE + 0x1000n, rax: 7n } });
    t.is(before.stop, 'end', 'the next page is not locked');
    const after = await guest.exec(STORE, { regs: { rbx: PAGE + 8n, rax: 7n } });
    t.is(after.stop, 'fault');
    t.deepEqual(after.fault, { vector: PF_VECTOR, errorCode: 3 });
    const bad = await guest.hekiMemory.protectMemory(BUFFER, [{ pa: PAGE + 8n, epa: PAGE + 0x1000n, permissions: MEM_ATTR_READ }]);
    t.like(bad, { ok: false, value: -BigInt(KVM_EINVAL), errno: 'EINVAL' });
    guest.close();
  });
});

test('a v3-profile VM has no memory hypercall', async (t) => {
  await withServer({ profile: 'v3' }, async (s) => {
    const guest = await connect(s.guestUrl, { vm: 'v3' });
    const r = await guest.hekiMemory.protectMemory(BUFFER, [{ pa: PAGE, epa: PAGE + 0x1000n, permissions: MEM_ATTR_READ }]);
    t.like(r, { ok: false, value: -BigInt(KVM_ENOSYS), errno: 'ENOSYS' });
    guest.close();
  });
});
