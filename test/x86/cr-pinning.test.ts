/**
 * Why CR pinning matters, at the level of the core: the two exploit steps Heki and the CR-pin
 * MSRs defend against. A guest that clears CR0.WP can then write a read-only kernel page; a
 * guest that clears CR4.SMEP can then execute a user page at CPL 0. When the hypervisor refuses
 * the CR write (pinned bits: it injects #GP instead of committing), the follow-up access faults
 * as the SDM says: a supervisor write to a read-only page with WP=1 is #PF(P|W); a supervisor
 * fetch from a user page with SMEP=1 is #PF(P|I/D).
 *
 * The hypervisor here is a minimal stand-in for host/kvm's handle_cr(): it commits CR writes,
 * or injects #GP(0) when a pinned bit would be cleared.
 */
import test from 'ava';
import type { Intercept } from '../../host/index.js';
import { layout as L } from '../../host/vmm/boot/index.js';
import { buildMachine, CODE, USER_CODE, hex, type Machine } from './harness/machine.js';

const WP = 1n << 16n;
const SMEP = 1n << 20n;
const RODATA = L.RODATA;

/** Runs the guest, emulating MOV CR as a hypervisor would, until a non-CR intercept. */
function runWithHypervisor(m: Machine, pinned: { cr0: bigint; cr4: bigint }): Intercept {
  for (;;) {
    const r = m.cpu.run(10_000);
    if (r.kind === 'mov_from_cr') {
      m.cpu.writeGpr(r.gpr, m.cpu.readCr(r.cr));
      m.cpu.skipInstruction();
    } else if (r.kind === 'mov_to_cr') {
      const pin = r.cr === 0 ? pinned.cr0 : r.cr === 4 ? pinned.cr4 : 0n;
      if ((r.value & pin) !== pin) {
        m.cpu.injectException(13, 0);
      } else {
        m.cpu.commitCr(r.cr, r.value);
        m.cpu.skipInstruction();
      }
    } else {
      return r;
    }
  }
}

function faultRecord(m: Machine): { count: bigint; vector: bigint; errorCode: bigint } {
  const rec = L.faultRecordAddress(0);
  return {
    count: m.memory.read64(rec + L.FAULT_RECORD.count),
    vector: m.memory.read64(rec + L.FAULT_RECORD.vector),
    errorCode: m.memory.read64(rec + L.FAULT_RECORD.errorCode),
  };
}

// mov rax, cr0; btr rax, 16; mov cr0, rax; mov byte [RODATA], 0x41; hlt
const CLEAR_WP_THEN_WRITE = '0f20c0480fbaf0100f22c0c6042500d0000041f4';
// mov rax, cr4; btr rax, 20; mov cr4, rax; mov rbx, USER_CODE; call rbx; hlt
const CLEAR_SMEP_THEN_CALL_USER = '0f20e0480fbaf0140f22e048c7c300102000ffd3f4';

test('CR0.WP: the same supervisor write to read-only memory succeeds with WP=0 and faults with WP=1', (t) => {
  t.is(RODATA, 0xd000);
  const open = buildMachine();
  open.memory.writeBytes(CODE, hex(CLEAR_WP_THEN_WRITE));
  t.deepEqual(runWithHypervisor(open, { cr0: 0n, cr4: 0n }), { kind: 'hlt' });
  t.is(open.cpu.readCr(0) & WP, 0n);
  t.is(open.memory.read8(RODATA), 0x41, 'unpinned: the read-only page was written');
  t.is(faultRecord(open).count, 0n);

  const pinned = buildMachine();
  pinned.memory.writeBytes(CODE, hex(CLEAR_WP_THEN_WRITE));
  const r = runWithHypervisor(pinned, { cr0: WP, cr4: 0n });
  t.is(r.kind, 'hlt', 'the boot stubs record the fault and halt');
  t.is(pinned.cpu.readCr(0) & WP, WP, 'CR0.WP stays set');
  t.is(faultRecord(pinned).vector, 13n, 'the CR write was refused with #GP');
  t.is(pinned.memory.read8(RODATA), 0, 'the read-only page is untouched');

  // With WP still set, the write itself is what the SDM says it is: #PF(P|W).
  const direct = buildMachine();
  direct.cpu.exceptionBitmap = 1 << 14;
  direct.memory.writeBytes(CODE, hex('c6042500d0000041f4'));
  direct.cpu.setRip(BigInt(CODE));
  t.deepEqual(direct.cpu.run(10), { kind: 'exception', vector: 14, errorCode: 0x3, address: BigInt(RODATA) });
});

test('CR4.SMEP: the same CPL 0 call into a user page runs with SMEP=0 and faults with SMEP=1', (t) => {
  const open = buildMachine();
  open.memory.writeBytes(CODE, hex(CLEAR_SMEP_THEN_CALL_USER));
  open.memory.writeBytes(USER_CODE, hex('b837130000c3')); // mov eax, 0x1337; ret
  t.deepEqual(runWithHypervisor(open, { cr0: 0n, cr4: 0n }), { kind: 'hlt' });
  t.is(open.cpu.readGpr(0), 0x1337n, 'unpinned: user code ran at CPL 0');
  t.is(open.cpu.cpl, 0);

  const pinned = buildMachine();
  pinned.memory.writeBytes(CODE, hex(CLEAR_SMEP_THEN_CALL_USER));
  pinned.memory.writeBytes(USER_CODE, hex('b837130000c3'));
  t.is(runWithHypervisor(pinned, { cr0: 0n, cr4: SMEP }).kind, 'hlt');
  t.is(pinned.cpu.readCr(4) & SMEP, SMEP);
  t.is(faultRecord(pinned).vector, 13n);
  t.not(pinned.cpu.readGpr(0), 0x1337n, 'user code never ran');

  const direct = buildMachine();
  direct.cpu.exceptionBitmap = 1 << 14;
  direct.memory.writeBytes(USER_CODE, hex('b837130000c3'));
  direct.memory.writeBytes(CODE, hex('48c7c300102000ffd3f4'));
  direct.cpu.setRip(BigInt(CODE));
  t.deepEqual(direct.cpu.run(10), { kind: 'exception', vector: 14, errorCode: 0x11, address: BigInt(USER_CODE) });
});
