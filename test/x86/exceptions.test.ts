/**
 * Exception delivery through the 64-bit IDT (SDM vol. 3A §6.12, §6.14): the frame, gate types,
 * gate DPL for software interrupts, stack switches (TSS.RSP0, IST), 16-byte alignment, RF in the
 * saved RFLAGS of faults; and escalation (§6.15): contributory-on-contributory and #PF-on-#PF are
 * #DF, a fault while delivering #DF is a triple fault; the exception bitmap; injected events.
 * The full #DF/triple-fault suite is written separately against the public API.
 */
import test from 'ava';
import {
  buildMachine, CODE, gate, KERNEL_CS, KERNEL_DS, KERNEL_STACK_TOP, PT, runAt, setGate, TSS, USER_CODE, USER_CS,
  USER_DS, USER_STACK_TOP, type Machine,
} from './harness/machine.js';

const HANDLER = CODE + 0x800; // hlt
const INTERRUPT_GATE = 0xe, TRAP_GATE = 0xf;
const IST1_TOP = 0x50fc0; // boot's TSS.IST1 for vCPU 0

function machine(opts: Parameters<typeof buildMachine>[0] = {}): Machine {
  const m = buildMachine(opts);
  m.memory.writeBytes(HANDLER, Uint8Array.of(0xf4));
  for (const v of [0, 3, 6, 8, 11, 12, 13, 14, 0x80]) {
    setGate(m.memory, v, gate(BigInt(HANDLER), KERNEL_CS, INTERRUPT_GATE, v === 3 || v === 0x80 ? 3 : 0));
  }
  return m;
}

/** The n-th quadword of the exception frame at RSP. */
function frame(m: Machine, n: number): bigint {
  return m.memory.read64(Number(m.cpu.readGpr(4)) + 8 * n);
}

test('a fault at CPL 0 pushes SS, RSP, RFLAGS (with RF), CS, RIP on a 16-byte-aligned stack', (t) => {
  const m = machine();
  m.cpu.setRflags(0x202n);
  // sub rsp, 8; ud2
  t.deepEqual(runAt(m, '4883ec080f0b'), { kind: 'hlt' });
  t.is(m.cpu.getRip(), BigInt(HANDLER));
  const oldRsp = BigInt(KERNEL_STACK_TOP - 8);
  t.is(m.cpu.readGpr(4), (oldRsp & ~0xfn) - 40n, 'aligned down, five quadwords pushed');
  t.is(frame(m, 0), BigInt(CODE + 4), 'RIP of the faulting instruction');
  t.is(frame(m, 1), BigInt(KERNEL_CS));
  t.is(frame(m, 2) & 0x10202n, 0x10202n, 'RFLAGS image with RF (and IF) for a fault');
  t.is(frame(m, 3), oldRsp);
  t.is(frame(m, 4), BigInt(KERNEL_DS));
  t.is(m.cpu.getRflags() & 0x200n, 0n, 'an interrupt gate clears IF');
});

test('an exception with an error code pushes it last; a trap gate keeps IF', (t) => {
  const m = machine();
  setGate(m.memory, 13, gate(BigInt(HANDLER), KERNEL_CS, TRAP_GATE, 0));
  m.cpu.setRflags(0x202n);
  // mov rbx, 0x800000000000; mov rax, [rbx]   → #GP(0)
  t.deepEqual(runAt(m, '48bb0000000000800000488b03'), { kind: 'hlt' });
  t.is(frame(m, 0), 0n, 'error code');
  t.is(frame(m, 1), BigInt(CODE + 10));
  t.is(m.cpu.getRflags() & 0x200n, 0x200n);
});

test('from CPL 3, delivery switches to TSS.RSP0 and pushes the user SS:RSP; IST overrides', (t) => {
  const m = machine({ user: true });
  t.deepEqual(runAt(m, '0f0b', 100, USER_CODE), { kind: 'hlt' });
  t.is(m.cpu.cpl, 0);
  t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP - 40));
  t.is(frame(m, 0), BigInt(USER_CODE));
  t.is(frame(m, 1), BigInt(USER_CS));
  t.is(frame(m, 3), BigInt(USER_STACK_TOP));
  t.is(frame(m, 4), BigInt(USER_DS));
  t.is(m.cpu.getSregs().ss.selector, 0, 'SS is the null selector with RPL 0');

  const i = machine();
  setGate(i.memory, 6, gate(BigInt(HANDLER), KERNEL_CS, INTERRUPT_GATE, 0, 1));
  t.deepEqual(runAt(i, '0f0b'), { kind: 'hlt' });
  t.is(i.cpu.readGpr(4), BigInt(IST1_TOP - 40), 'IST1, whatever the privilege');
});

test('INT n checks the gate DPL: #GP(n*8+2) from CPL 3 through a DPL 0 gate', (t) => {
  const m = machine({ user: true });
  t.deepEqual(runAt(m, 'cd80', 100, USER_CODE), { kind: 'hlt' }, 'DPL 3 gate: delivered');
  t.is(frame(m, 0), BigInt(USER_CODE + 2), 'a software interrupt pushes the next RIP');
  t.is(frame(m, 2) & 0x10000n, 0n, 'no RF for a software interrupt');
  const n = machine({ user: true });
  n.cpu.exceptionBitmap = 1 << 13;
  t.deepEqual(runAt(n, 'cd21', 100, USER_CODE), { kind: 'exception', vector: 13, errorCode: 0x21 * 8 + 2 });
  t.is(n.cpu.getRip(), BigInt(USER_CODE));
});

test('a not-present gate is #NP(vector*8+2+EXT)', (t) => {
  const m = machine();
  setGate(m.memory, 6, gate(BigInt(HANDLER), KERNEL_CS, INTERRUPT_GATE, 0, 0, false));
  m.cpu.exceptionBitmap = 1 << 11;
  t.deepEqual(runAt(m, '0f0b'), { kind: 'exception', vector: 11, errorCode: 6 * 8 + 2 + 1 });
});

test('#GP while delivering #GP becomes #DF (error code 0)', (t) => {
  const m = machine();
  setGate(m.memory, 13, gate(BigInt(HANDLER), 0x28, INTERRUPT_GATE, 0)); // selector 0x28: a data segment
  t.deepEqual(runAt(m, '48bb0000000000800000488b03'), { kind: 'hlt' });
  t.is(frame(m, 0), 0n, '#DF pushes error code 0');
  t.is(frame(m, 1), BigInt(CODE + 10), 'with the RIP of the instruction that raised the first fault');
  m.cpu.exceptionBitmap = 1 << 8;
  m.cpu.setRflags(2n);
  t.deepEqual(runAt(m, '48bb0000000000800000488b03'), { kind: 'exception', vector: 8, errorCode: 0 });
});

test('#PF while delivering #PF becomes #DF; #PF while delivering #GP is delivered instead', (t) => {
  // From CPL 3 with TSS.RSP0 on the not-present null page: every delivery's pushes #PF.
  const pfpf = machine({ user: true });
  pfpf.memory.write64(TSS + 4, 0x1000n);
  setGate(pfpf.memory, 8, gate(BigInt(HANDLER), KERNEL_CS, INTERRUPT_GATE, 0, 1));
  // mov eax, [0] → #PF; delivering it #PFs on the stack → #DF (IST1 stack works)
  t.deepEqual(runAt(pfpf, '8b042500000000', 100, USER_CODE), { kind: 'hlt' });
  t.is(pfpf.cpu.readGpr(4), BigInt(IST1_TOP - 48), '#DF frame with its error code on IST1');
  t.is(frame(pfpf, 0), 0n);
  t.is(pfpf.cpu.readCr(2), 0x1000n - 8n, 'CR2: the last #PF detected, on the push');

  const gppf = machine({ user: true });
  gppf.memory.write64(TSS + 4, 0x1000n);
  setGate(gppf.memory, 14, gate(BigInt(HANDLER), KERNEL_CS, INTERRUPT_GATE, 0, 1));
  // ud2 at CPL3 → #UD (benign); its delivery #PFs → the #PF is delivered (on IST1)
  t.deepEqual(runAt(gppf, '0f0b', 100, USER_CODE), { kind: 'hlt' });
  t.is(gppf.cpu.readGpr(4), BigInt(IST1_TOP - 48));
  t.is(frame(gppf, 0), 0x2n, '#PF error code: a supervisor write');
});

test('a fault while delivering #DF is a triple fault', (t) => {
  const m = machine();
  setGate(m.memory, 13, gate(BigInt(HANDLER), 0x28, INTERRUPT_GATE, 0));
  setGate(m.memory, 8, gate(BigInt(HANDLER), 0x28, INTERRUPT_GATE, 0));
  const i = runAt(m, '48bb0000000000800000488b03');
  t.is(i.kind, 'triple_fault');
  // mov rax, [rbx] with a non-canonical RBX: #GP(0); its gate's selector 0x28 is no code segment:
  // #GP(0x28 | EXT) → #DF(0); the #DF gate is just as bad: #GP(0x28 | EXT) again.
  if (i.kind === 'triple_fault') {
    t.deepEqual(i.chain.map((e) => [e.vector, e.errorCode]), [[13, 0], [13, 0x29], [8, 0], [13, 0x29]]);
    t.deepEqual(i.chain.map((e) => e.gate.kind === 'gate' && e.gate.selector), [0x28, 0x28, 0x28, 0x28]);
  }
});

test('the exception bitmap stops before delivery: no frame, no CR2, RIP on the instruction', (t) => {
  const m = machine();
  m.cpu.exceptionBitmap = 1 << 14;
  t.deepEqual(runAt(m, '8b042500000000'), { kind: 'exception', vector: 14, errorCode: 0, address: 0n });
  t.is(m.cpu.getRip(), BigInt(CODE));
  t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP));
  t.is(m.cpu.readCr(2), 0n);
});

test('an injected exception is delivered at the next run, with CR2 for a #PF', (t) => {
  const m = machine();
  m.memory.writeBytes(CODE, Uint8Array.of(0x90));
  m.cpu.setRip(BigInt(CODE));
  m.cpu.injectException(14, 0x6, 0xdead_b000n);
  t.deepEqual(m.cpu.run(100), { kind: 'hlt' });
  t.is(m.cpu.readCr(2), 0xdead_b000n);
  t.is(frame(m, 0), 0x6n);
  t.is(frame(m, 1), BigInt(CODE), 'the frame holds the RIP the event was injected at');
  m.cpu.setRip(BigInt(CODE));
  m.cpu.exceptionBitmap = 1 << 13;
  m.cpu.injectException(13);
  t.deepEqual(m.cpu.run(100), { kind: 'hlt' }, 'injection is not subject to the exception bitmap');
  t.is(frame(m, 0), 0n, 'a #GP without an explicit error code pushes 0');
});

test('INT3 traps with the next RIP, and IRETQ resumes after it', (t) => {
  const m = machine();
  m.memory.writeBytes(HANDLER, Uint8Array.of(0x48, 0xcf)); // iretq
  // int3; mov eax, 1; hlt
  t.deepEqual(runAt(m, 'ccb801000000f4'), { kind: 'hlt' });
  t.is(m.cpu.readGpr(0), 1n);
  t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP));
  t.is(m.cpu.getRip(), BigInt(CODE + 6));
});

test('SMAP applies to the implicit supervisor accesses of delivery regardless of RFLAGS.AC', (t) => {
  const m = machine();
  // The kernel stack is moved onto a user page: the delivery's pushes are implicit accesses.
  m.memory.write64(PT + 8 * (KERNEL_STACK_TOP / 0x1000 - 1), BigInt(KERNEL_STACK_TOP - 0x1000) | 0x7n);
  m.cpu.commitCr(3, m.cpu.readCr(3));
  m.cpu.exceptionBitmap = 1 << 8;
  // stac; ud2 → #UD delivery #PFs on the push (SMAP, AC ignored) → contributory? no: #UD is
  // benign, so the #PF is delivered, and #PF delivery faults again → #DF
  t.deepEqual(runAt(m, '0f01cb0f0b'), { kind: 'exception', vector: 8, errorCode: 0 });
});
