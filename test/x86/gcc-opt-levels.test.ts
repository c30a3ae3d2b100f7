/**
 * Compiled C never meets a #UD for what gcc emits from general-register code: a varied program
 * (guest/varied.c: 8- to 128-bit arithmetic, bit-fields, struct copies, switch tables, VLAs,
 * atomics of every width with CMPXCHG16B, overflow and bit builtins) is compiled at test time at
 * -O0, -O1, -O2 and -Os with the C guest library's flags, run on the core to completion, interpreted
 * and translated, and must print what the same source compiled for the host prints. Where gcc
 * or objcopy is missing the tests show as "not run", never as passed.
 */
import test from 'ava';
import { fileURLToPath } from 'node:url';
import { buildGuest, runHosted, whyNoGuestCompiler } from '../support/gcc.js';
import { buildMachine, CODE } from './harness/machine.js';

const source = fileURLToPath(new URL('../../../test/x86/guest/varied.c', import.meta.url));
const script = fileURLToPath(new URL('../../../test/x86/guest/program.ld', import.meta.url));
const why = whyNoGuestCompiler();

if (why !== undefined) {
  test.todo(`varied C at -O0, -O1, -O2 and -Os runs to completion on the core — not run: ${why}`);
} else {
  const expected = runHosted([source]);
  for (const opt of ['-O0', '-O1', '-O2', '-Os']) {
    for (const jit of [false, true]) {
      test(`varied C compiled with ${opt} runs to completion and prints what the host build prints${jit ? ' (translated)' : ''}`, (t) => {
        const built = buildGuest([source], { opt, linkerScript: script });
        try {
          const m = buildMachine({ jit });
          m.memory.writeBytes(CODE, built.flat);
          m.cpu.setRip(BigInt(CODE));
          m.cpu.writeGpr(4, 0x1ff000n);
          const r = m.cpu.run(20_000_000);
          t.deepEqual(r, { kind: 'hlt' }, `stopped at ${m.cpu.getRip().toString(16)}`);
          const out = m.memory.readBytes(Number(m.cpu.readGpr(0)), Number(m.cpu.readGpr(3)));
          t.is(Buffer.from(out).toString('latin1'), expected);
        } finally {
          built.cleanup();
        }
      });
    }
  }
}
