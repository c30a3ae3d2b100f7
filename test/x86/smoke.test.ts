import test from 'ava';
import { buildMachine, CODE, hex } from './harness/machine.js';

test('a counting loop runs and stops at HLT', (t) => {
  const { memory, cpu } = buildMachine();
  memory.writeBytes(CODE, hex('b90a00000031c001c8ffc975faf4'));
  const r = cpu.run(1000);
  t.deepEqual(r, { kind: 'hlt' });
  t.is(cpu.readGpr(0), 55n);
  t.is(cpu.getRip(), BigInt(CODE + 13));
});
