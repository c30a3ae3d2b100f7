/**
 * End to end: freestanding C compiled by gcc (-O2 -mgeneral-regs-only -mno-red-zone
 * -ffreestanding -nostdlib; test/x86/guest/build.sh) runs on the core at CPL 0 and produces,
 * byte for byte, what the same C compiled natively printed on the development machine
 * (expected.txt): formatting with varargs, quicksort, CRC32, 64- and 128-bit multiply and divide,
 * a jump table, recursion, function pointers, TZCNT/BSR/BSWAP.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { buildMachine, CODE } from './harness/machine.js';

const image = readFileSync(new URL('../../../test/x86/guest/program.bin', import.meta.url));
const expected = readFileSync(new URL('../../../test/x86/guest/expected.txt', import.meta.url));

for (const jit of [false, true]) {
  test(`gcc-built guest program produces the native output${jit ? ' (translated)' : ''}`, (t) => {
    const m = buildMachine({ jit });
    m.memory.writeBytes(CODE, image);
    m.cpu.setRip(BigInt(CODE));
    m.cpu.writeGpr(4, 0x1ff000n); // stack at the top of the RWX kernel exec area
    const r = m.cpu.run(50_000_000);
    t.deepEqual(r, { kind: 'hlt' });
    const out = m.memory.readBytes(Number(m.cpu.readGpr(0)), Number(m.cpu.readGpr(3)));
    t.is(Buffer.from(out).toString('latin1'), expected.toString('latin1'));
    t.true(m.cpu.instructionsRetired > 100_000);
    t.log(`${m.cpu.instructionsRetired} instructions retired`);
  });
}
