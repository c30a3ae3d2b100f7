/**
 * The code guest.hekiMemory runs (docs/memory-protection.md §6), read back with iced-x86: the
 * structure's u64s stored at [rdi + 8k] in order, then RAX = the hypercall number and VMCALL
 * (a0..a2 in RBX, RCX, RDX are loaded by exec). v1's struct heki_pa_range is {gfn_start,
 * gfn_end, attributes}, 24 bytes (20230505152046.6575-5-mic@digikod.net).
 */
import test from 'ava';
import { hekiMemoryProgram, InvalidArgumentError } from '../../guest-sdk/index.js';
import { HEKI_ATTR_MEM_NOWRITE, KVM_HC_LOCK_MEM_PAGE_RANGES } from '../../protocol/index.js';
import { disassembleText } from '../support/disassemble.js';
import { connectedGuest, ScriptedHost } from './scripted-host.js';

test('a v1 range: three stores at [rdi], [rdi+8], [rdi+0x10], then mov rax, 13 and vmcall', (t) => {
  const code = hekiMemoryProgram(KVM_HC_LOCK_MEM_PAGE_RANGES, [0x500n, 0x5ffn, HEKI_ATTR_MEM_NOWRITE]);
  t.deepEqual(disassembleText(code, 0x100000), [
    'mov rax, 0x500', 'mov [rdi], rax',
    'mov rax, 0x5ff', 'mov [rdi+8], rax',
    'mov rax, 1', 'mov [rdi+0x10], rax',
    'mov rax, 0xd', 'vmcall',
  ]);
});

test('too many ranges or entries, and values that are not u64, are refused before anything is sent', async (t) => {
  const { guest, host } = await connectedGuest(new ScriptedHost());
  const range = { gfnStart: 1n, gfnEnd: 1n, attributes: 1n };
  await t.throwsAsync(guest.hekiMemory.lockMemPageRanges(0x60_0000n, Array(17).fill(range)), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(guest.hekiMemory.protectMemory(0x60_0000n, Array(170).fill({ pa: 0n, epa: 0x1000n, permissions: 1n })), { instanceOf: InvalidArgumentError });
  await t.throwsAsync(guest.hekiMemory.lockMemPageRanges(0x60_0000n, [{ ...range, gfnEnd: -1n }]), { instanceOf: InvalidArgumentError });
  t.deepEqual(host.log, []);
  guest.close();
});
