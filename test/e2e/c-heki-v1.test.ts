/**
 * The C library's RFC v1 call, heki_lock_mem_page_ranges() (guest-sdk/c/pinbox.h), run in a VM
 * made with `hekiMemory: 'v1'` — a KVM option no policy selects, so the VM is made in process
 * (test/kvm/guest.ts) and the console served here. Expectations from the v1 patches
 * (docs/memory-protection.md §4; 20230505152046.6575-5/-9-mic@digikod.net): 0 for a NOWRITE
 * range, after which the guest's store takes the #PF KVM injects (W|P = 3, CR2 the address) and
 * its load still works; EXEC without MBEC -KVM_EOPNOTSUPP (-95); more than 16 ranges in one call
 * -KVM_E2BIG (-7); a range whose start is after its end -KVM_EINVAL (-22).
 */
import test from 'ava';
import { KVM_EXIT_IO_IN } from '../../protocol/abi.js';
import { Guest } from '../kvm/guest.js';
import { buildGuest, whyNoGuestCompiler } from '../support/gcc.js';

const COM1 = 0x3f8;
const LSR_THRE_TEMT = 0x60;

/** Runs vCPU 0 from `entry` to its HLT, answering the UART as docs/boot.md §3.5 does; the console text. */
function runConsole(g: Guest, entry: number): string {
  g.setRegs({ rip: BigInt(entry), rdi: 0n });
  let out = '';
  for (let exits = 0; exits < 100_000; exits++) {
    const exit = g.run();
    if (exit.reason === 'KVM_EXIT_HLT') return out;
    if (exit.reason !== 'KVM_EXIT_IO') throw new Error(`unexpected ${exit.reason}; console so far:\n${out}`);
    if (exit.io.direction === KVM_EXIT_IO_IN) exit.io.data = exit.io.port === COM1 + 5 ? LSR_THRE_TEMT : 0xff;
    else if (exit.io.port === COM1) out += String.fromCharCode(exit.io.data & 0xff);
  }
  throw new Error(`no HLT after 100000 exits; console so far:\n${out}`);
}

const why = whyNoGuestCompiler();
if (why !== undefined) {
  test.todo(`heki_lock_mem_page_ranges() from C on a v1 VM — not run: ${why}`);
} else {
  test('heki_lock_mem_page_ranges(): the v1 lock, its #PF, and the returns of RFC v1 for EXEC without MBEC, 17 ranges and start > end', (t) => {
    const guest = buildGuest(['test/e2e/fixtures/c/memory.c'], {
      opt: '-O2 -Wall -Wextra -Werror', linkerScript: 'guest-sdk/c/pinbox.ld', include: ['guest-sdk/c'], defines: ['HEKI_V1'],
    });
    try {
      const g = new Guest({ hekiMemory: 'v1' });
      const LOAD = 0x10_0000; // pinbox.ld links the image there
      g.vm.memory.writeBytes(LOAD, guest.flat);
      const c = runConsole(g, LOAD);
      t.regex(c, /^v1 lock: 0$/m);
      t.regex(c, /^v1 write locked: vector 14 error 0x3 cr2 0x500000$/m);
      t.regex(c, /^v1 read locked: vector -1 value 0x1122334455667788$/m, 'NOWRITE leaves reads alone; the value the probes wrote before the lock');
      t.regex(c, /^v1 exec: -95$/m, 'EXEC needs MBEC: -KVM_EOPNOTSUPP');
      t.regex(c, /^v1 17 ranges: -7$/m, '17 × 24 bytes > 384: -KVM_E2BIG');
      t.regex(c, /^v1 start after end: -22$/m);
      t.regex(c, /^done$/m);
      t.deepEqual(g.vm.hekiMemoryLocks.v1.nowrite, [{ start: 0x500n, end: 0x500n }], 'the one range the guest locked, by GFN');
    } finally {
      guest.cleanup();
    }
  });
}
