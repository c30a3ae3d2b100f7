/**
 * Debug exceptions (SDM vol. 3B ch. 18): the single-step trap of RFLAGS.TF (after the instruction,
 * DR6.BS), instruction breakpoints (DR0-DR3 with DR7, a fault before the instruction, DR6.Bn, RF
 * in the frame so that IRETQ resumes without hitting it again), MOV DR's rules (CPL 0, DR4/DR5
 * aliases without CR4.DE, #UD with it, reserved bits 63:32 of DR6/DR7, DR7.GD), the exception
 * bitmap's #DB intercept carrying the DR6 conditions, and the hypervisor's breakpoints in force
 * instead of the guest's (what KVM_GUESTDBG_USE_HW_BP does).
 */
import test from 'ava';
import { buildMachine, CODE, gate, KERNEL_CS, runAt, setGate, type Machine } from './harness/machine.js';

const HLT_HANDLER = CODE + 0x800; // hlt
const IRET_HANDLER = CODE + 0x900; // iretq
const DR6_BS = 1n << 14n;
const DR6_BD = 1n << 13n;
const RF = 1n << 16n;
const TF = 1n << 8n;
const DR6_FIXED = 0xffff0ff0n;

function machine(dbHandler = HLT_HANDLER): Machine {
  const m = buildMachine();
  m.memory.writeBytes(HLT_HANDLER, Uint8Array.of(0xf4));
  m.memory.writeBytes(IRET_HANDLER, Uint8Array.of(0x48, 0xcf));
  setGate(m.memory, 1, gate(BigInt(dbHandler), KERNEL_CS, 0xe, 0));
  return m;
}

function frame(m: Machine, n: number): bigint {
  return m.memory.read64(Number(m.cpu.readGpr(4)) + 8 * n);
}

test('TF: POPF sets it, the next instruction runs, then #DB traps with DR6.BS and the next RIP', (t) => {
  const m = machine();
  // pushfq; or qword [rsp], 0x100; popfq; nop; nop; hlt
  t.deepEqual(runAt(m, '9c48810c24000100009d9090f4'), { kind: 'hlt' });
  t.is(m.cpu.getRip(), BigInt(HLT_HANDLER), 'stopped at the #DB handler\'s HLT');
  t.is(frame(m, 0), BigInt(CODE + 11), 'RIP after the NOP that followed POPF (at +10): a trap');
  t.is(frame(m, 2) & (TF | RF), TF, 'the frame\'s RFLAGS has TF and no RF (a trap)');
  t.is(m.cpu.getRflags() & TF, 0n, 'the handler runs with TF clear');
  t.is(m.cpu.getDebugRegs().dr6, DR6_FIXED | DR6_BS);
});

test('TF under the exception bitmap: one #DB intercept per instruction, each with DR6.BS, RIP on the next', (t) => {
  const m = machine();
  m.cpu.exceptionBitmap = 1 << 1;
  m.cpu.setRflags(0x2n | TF);
  const rips: bigint[] = [];
  m.memory.writeBytes(CODE, Uint8Array.of(0x90, 0x90, 0x90, 0xf4));
  m.cpu.setRip(BigInt(CODE));
  for (let k = 0; k < 3; k++) {
    t.deepEqual(m.cpu.run(100), { kind: 'exception', vector: 1, errorCode: undefined, dr6: Number(DR6_BS) });
    rips.push(m.cpu.getRip());
  }
  t.deepEqual(rips, [CODE + 1, CODE + 2, CODE + 3].map(BigInt));
  t.is(m.cpu.instructionsRetired, 3);
});

test('TF: a REP string instruction traps after each iteration; INT3 is not followed by a trap', (t) => {
  const m = machine();
  m.cpu.exceptionBitmap = 1 << 1;
  m.cpu.setRflags(0x2n | TF);
  m.cpu.writeGpr(1, 3n); // RCX
  m.cpu.writeGpr(7, 0x90000n); // RDI
  m.memory.writeBytes(CODE, Uint8Array.of(0xf3, 0xaa, 0xf4)); // rep stosb; hlt
  m.cpu.setRip(BigInt(CODE));
  const seen: [bigint, bigint][] = [];
  for (let k = 0; k < 3; k++) {
    const r = m.cpu.run(100);
    t.is(r.kind, 'exception');
    seen.push([m.cpu.getRip(), m.cpu.readGpr(1)]);
  }
  t.deepEqual(seen, [[BigInt(CODE), 2n], [BigInt(CODE), 1n], [BigInt(CODE + 2), 0n]]);

  const n = machine();
  setGate(n.memory, 3, gate(BigInt(HLT_HANDLER), KERNEL_CS, 0xe, 0));
  n.cpu.exceptionBitmap = 1 << 1;
  n.cpu.setRflags(0x2n | TF);
  t.deepEqual(runAt(n, 'cc90f4'), { kind: 'hlt' }, 'INT3 is delivered, its handler runs with TF clear: no #DB');
  t.is(n.cpu.getRip(), BigInt(HLT_HANDLER));
});

test('an instruction breakpoint is a fault before the instruction: DR6.B0, RF in the frame; IRETQ resumes past it', (t) => {
  const m = machine(IRET_HANDLER);
  m.cpu.writeGpr(0, BigInt(CODE + 1));
  m.cpu.writeGpr(2, 1n); // DR7.L0, R/W0 = 00 (execute), LEN0 = 00
  m.cpu.writeGpr(1, 0n);
  // mov dr0, rax; ... no: the breakpoint is armed first, then the code runs.
  m.memory.writeBytes(CODE + 0x100, Uint8Array.of(0x0f, 0x23, 0xc0, 0x0f, 0x23, 0xfa, 0xff, 0xe3)); // mov dr0, rax; mov dr7, rdx; jmp rbx
  m.memory.writeBytes(CODE, Uint8Array.of(0x90, 0x48, 0xff, 0xc1, 0xf4)); // nop; inc rcx; hlt
  m.cpu.writeGpr(3, BigInt(CODE));
  m.cpu.setRip(BigInt(CODE + 0x100));
  m.cpu.exceptionBitmap = 1 << 1;
  t.deepEqual(m.cpu.run(100), { kind: 'exception', vector: 1, errorCode: undefined, dr6: 1 });
  t.is(m.cpu.getRip(), BigInt(CODE + 1), 'RIP on the instruction, which has not run');
  t.is(m.cpu.readGpr(1), 0n);

  // Delivered to the guest instead: the handler's IRETQ returns with RF set, the INC runs once.
  m.cpu.exceptionBitmap = 0;
  t.deepEqual(m.cpu.run(100), { kind: 'hlt' });
  t.is(m.cpu.readGpr(1), 1n, 'INC ran once, after the handler');
  t.is(m.cpu.getRip(), BigInt(CODE + 4));
  t.is(m.cpu.getDebugRegs().dr6 & 0xfn, 1n, 'DR6.B0');
  t.is(m.cpu.getRflags() & RF, 0n, 'RF is cleared once the instruction completes');
});

test('MOV DR: CPL 0 only; DR4/DR5 alias DR6/DR7 without CR4.DE and are #UD with it; bits 63:32 of DR7 are #GP', (t) => {
  const m = machine();
  m.cpu.writeGpr(0, 0x1234_5678_9abcn);
  // mov dr0, rax; mov rbx, dr0; mov rcx, dr7; mov rdx, dr6; hlt
  t.deepEqual(runAt(m, '0f23c00f21c30f21f90f21f2f4'), { kind: 'hlt' });
  t.is(m.cpu.readGpr(3), 0x1234_5678_9abcn);
  t.is(m.cpu.readGpr(1), 0x400n, 'DR7 reads with bit 10 set');
  t.is(m.cpu.readGpr(2), DR6_FIXED, 'DR6 after reset');

  const alias = machine();
  alias.cpu.writeGpr(0, 0n);
  t.deepEqual(runAt(alias, '0f21e0f4'), { kind: 'hlt' }, 'mov rax, dr4 without CR4.DE');
  t.is(alias.cpu.readGpr(0), DR6_FIXED, 'DR4 reads DR6');
  const de = machine();
  de.cpu.setSregs({ ...de.cpu.getSregs(), cr4: de.cpu.getSregs().cr4 | 8n });
  de.cpu.exceptionBitmap = 1 << 6;
  t.deepEqual(runAt(de, '0f21e0f4'), { kind: 'exception', vector: 6, errorCode: undefined }, 'with CR4.DE: #UD');

  const high = machine();
  high.cpu.exceptionBitmap = 1 << 13;
  high.cpu.writeGpr(0, 1n << 32n);
  t.deepEqual(runAt(high, '0f23f8f4'), { kind: 'exception', vector: 13, errorCode: 0 }, 'mov dr7, rax with bit 32');

  const user = buildMachine({ user: true, userPdes: [0] });
  user.cpu.exceptionBitmap = 1 << 13;
  t.deepEqual(runAt(user, '0f21c0f4', 100, 0x201000), { kind: 'exception', vector: 13, errorCode: 0 }, 'CPL 3: #GP(0)');
});

test('DR7.GD: the next MOV DR raises #DB with DR6.BD instead, and GD is cleared', (t) => {
  const m = machine();
  m.cpu.writeGpr(0, 0x2000n); // GD
  m.cpu.exceptionBitmap = 1 << 1;
  // mov dr7, rax; mov rbx, dr0; hlt
  t.deepEqual(runAt(m, '0f23f80f21c3f4'), { kind: 'exception', vector: 1, errorCode: undefined, dr6: Number(DR6_BD) });
  t.is(m.cpu.getRip(), BigInt(CODE + 3), 'on the second MOV DR');
  t.is(m.cpu.getDebugRegs().dr7 & 0x2000n, 0n);
});

test('the hypervisor\'s breakpoints are in force instead of the guest\'s, which MOV DR still sees', (t) => {
  const m = machine();
  m.cpu.exceptionBitmap = 1 << 1;
  m.memory.writeBytes(CODE, Uint8Array.of(0x90, 0x90, 0x90, 0xf4));
  m.cpu.setHostBreakpoints({ dr: [0n, BigInt(CODE + 2), 0n, 0n], dr7: 0x8n }); // G1
  m.cpu.setRip(BigInt(CODE));
  t.deepEqual(m.cpu.run(100), { kind: 'exception', vector: 1, errorCode: undefined, dr6: 2 });
  t.is(m.cpu.getRip(), BigInt(CODE + 2));
  t.is(m.cpu.getDebugRegs().dr7, 0x400n, 'the guest\'s DR7 is its own');
  m.cpu.setHostBreakpoints(null);
  t.deepEqual(m.cpu.run(100), { kind: 'hlt' }, 'with the guest\'s (none) in force again, it runs on');
});
