/**
 * Exception loops (issue 9, finding 1): guest code that breaks the handler of an exception and
 * then raises it makes every delivery succeed and every handler fetch fault again — with the
 * boot IDT's IST1 stack the state repeats exactly and no instruction ever retires. The core must
 * end such a run (the `budget` intercept, with `exceptionLoop` naming the exception), and every
 * delivery costs the budget a unit, so that a storm that does not repeat exactly ends too.
 *
 * The four loops are the ones the fuzzing found: the #PF gate's offset rewritten (the
 * issue's exact bytes), a gate offset changed by `add [rax],al`, XD set in PML4E[0], and the
 * stub page's PTE pointed at memory that is not there.
 */
import test from 'ava';
import { CODE, IDT, PML4, PT, buildMachine, gate, KERNEL_CS, runAt, setGate } from './harness/machine.js';
import { layout as L } from '../../host/vmm/boot/index.js';

const PF = 14;
const UD = 6;

for (const jit of [true, false]) {
  const mode = jit ? 'translated' : 'interpreted';

  test(`the issue's 25 bytes (#PF gate offset 63:32 rewritten, then a #PF) stop as an exception loop at once (${mode})`, (t) => {
    const m = buildMachine({ jit });
    // mov rax,0x90e8; mov dword [rax],0xffff8000; mov rax,0xffff800000000000; mov al,[rax]
    const r = runAt(m, '48c7c0e8900000 c7000080ffff 48b8000000000080ffff 8a00', 1_000_000);
    t.deepEqual(r, { kind: 'budget' });
    t.deepEqual(m.cpu.exceptionLoop, { vector: PF, errorCode: 0x10, rip: 0xffff80000000e0e0n, deliveries: 3 });
    t.is(m.cpu.instructionsRetired, 3, 'the three instructions before the fault; nothing after');
    t.is(m.cpu.getRip(), 0xffff80000000e0e0n, 'the guest stays where the loop is: it could be resumed');
  });

  test(`a gate offset changed by add [rax],al, then a #PF: an exception loop (${mode})`, (t) => {
    const m = buildMachine({ jit });
    // mov eax,0x90e8; add [rax],al (offset 63:32 of the #PF gate becomes 0xe8); xor ecx,ecx; mov cl,[rcx]
    const r = runAt(m, 'b8e8900000 0000 31c9 8a09', 1_000_000);
    t.deepEqual(r, { kind: 'budget' });
    t.like(m.cpu.exceptionLoop, { vector: PF, errorCode: 0x10, rip: 0xe8_0000_e0e0n });
  });

  test(`XD set in PML4E[0]: every fetch, the handler's too, is a #PF (${mode})`, (t) => {
    const m = buildMachine({ jit });
    // mov eax,PML4; bts qword [rax],63; mov eax,CODE; invlpg [rax]; mov eax,STUBS; invlpg [rax]; jmp $+2
    const code = `b8${le32(PML4)} 480fba283f b8${le32(CODE)} 0f0138 b8${le32(L.STUBS)} 0f0138 eb00 90`;
    const r = runAt(m, code, 1_000_000);
    t.deepEqual(r, { kind: 'budget' });
    t.like(m.cpu.exceptionLoop, { vector: PF, errorCode: 0x11, rip: BigInt(L.STUBS + PF * L.STUB_STRIDE) });
  });

  test(`the stub page's PTE pointed at unbacked memory: fetching a stub is #UD, for ever (${mode})`, (t) => {
    const m = buildMachine({ jit });
    const pte = PT + (L.STUBS >> 12) * 8;
    // mov eax,pte; mov qword [rax],0x7ffff001 (present, beyond 16 MiB); mov eax,STUBS; invlpg [rax]; ud2
    const r = runAt(m, `b8${le32(pte)} 48c70001f0ff7f b8${le32(L.STUBS)} 0f0138 0f0b`, 1_000_000);
    t.deepEqual(r, { kind: 'budget' });
    t.like(m.cpu.exceptionLoop, { vector: UD, errorCode: undefined, rip: BigInt(L.STUBS + UD * L.STUB_STRIDE) });
  });

  test(`deliveries that never repeat exactly still cost the budget: a storm down the stack ends with it (${mode})`, (t) => {
    const m = buildMachine({ jit });
    // The #PF gate without IST: each delivery pushes a frame below the last, so no two states are
    // the same; the handler is not mapped, so each delivery faults again. Without the cost per
    // delivery the run would go on until the stack ran into read-only memory.
    setGate(m.memory, PF, gate(0xe8_0000_0000n, KERNEL_CS, 0xe, 0, 0));
    const r = runAt(m, '31c9 8a09', 40); // xor ecx,ecx; mov cl,[rcx]
    t.deepEqual(r, { kind: 'budget' });
    t.is(m.cpu.exceptionLoop, null, 'not an exact loop');
    t.is(m.cpu.instructionsRetired, 1);
    const frames = (L.kernelStackTop(0) - Number(m.cpu.getRegs().rsp)) / 48;
    t.is(frames, 39, 'one instruction and 39 deliveries: 40 units');
  });
}

test('a run after an exception loop starts with no loop reported, and an ordinary fault is no loop', (t) => {
  const m = buildMachine();
  runAt(m, '48c7c0e8900000 c7000080ffff 48b8000000000080ffff 8a00', 1000);
  t.not(m.cpu.exceptionLoop, null);
  // Mend the gate (offset 63:32 back to 0) and fault once: the boot IDT records it and halts.
  m.memory.write32(IDT + PF * 16 + 8, 0);
  const r = runAt(m, '31c9 8a09', 1000);
  t.is(r.kind, 'hlt');
  t.is(m.cpu.exceptionLoop, null);
});

function le32(n: number): string {
  return [0, 8, 16, 24].map((s) => ((n >>> s) & 0xff).toString(16).padStart(2, '0')).join('');
}

