/**
 * Decoded code stays coherent with memory when several CPUs share it: a store by one vCPU into
 * a frame another vCPU has decoded invalidates that vCPU's blocks (memory.onCodeWrite), even when
 * the storing vCPU's TLB had a write entry for the frame from before it held code.
 */
import test from 'ava';
import { Cpu } from '../../host/index.js';
import { layout as L } from '../../host/vmm/boot/index.js';
import { bootVcpu } from '../../host/vmm/boot/index.js';
import { buildMachine, CODE, hex } from './harness/machine.js';

test('a store by another vCPU into decoded code is seen by the vCPU that decoded it', (t) => {
  for (const jit of [false, true]) {
    const m = buildMachine({ jit });
    const a = m.cpu;
    const b = new Cpu(m.memory, { jit, jitThreshold: 0 });
    bootVcpu(b, m.boot, 0);
    const target = CODE + 0x1000; // the code A runs: mov eax, N; hlt
    const writer = CODE + 0x2000; // B's code: mov [rbx], eax; hlt
    m.memory.writeBytes(writer, hex('8903f4'));
    m.memory.writeBytes(target, hex('b801000000f4'));

    // B writes the frame first (its TLB now has a write entry for it), restoring the same bytes.
    b.writeGpr(3, BigInt(target));
    b.writeGpr(0, 0x000001b8n);
    b.setRip(BigInt(writer));
    t.deepEqual(b.run(10), { kind: 'hlt' });

    // A decodes and runs the frame.
    a.setRip(BigInt(target));
    t.deepEqual(a.run(10), { kind: 'hlt' });
    t.is(a.readGpr(0), 1n);

    // B patches the immediate: mov eax, 2.
    b.writeGpr(0, 0x000002b8n);
    b.setRip(BigInt(writer));
    t.deepEqual(b.run(10), { kind: 'hlt' });

    a.setRip(BigInt(target));
    t.deepEqual(a.run(10), { kind: 'hlt' });
    t.is(a.readGpr(0), 2n, `A runs the patched code${jit ? ' (translated)' : ''}`);
  }
  t.is(L.KERNEL_EXEC, CODE);
});

test('SMSW reads CR0: all of it into a 64-bit register, the low 16 bits to memory', (t) => {
  const m = buildMachine();
  m.cpu.writeGpr(3, BigInt(L.KERNEL_SCRATCH));
  m.memory.write16(L.KERNEL_SCRATCH, 0xffff);
  m.memory.writeBytes(CODE, hex('480f01e00f0123f4')); // smsw rax; smsw [rbx]; hlt
  m.cpu.setRip(BigInt(CODE));
  t.deepEqual(m.cpu.run(10), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 0x80050033n);
  t.is(m.memory.read16(L.KERNEL_SCRATCH), 0x0033);
});
