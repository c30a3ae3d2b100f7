/**
 * Near control transfers: CALL/RET/LOOP/Jcc/JRCXZ, indirect JMP/CALL, RET imm16, and the
 * canonical checks of SDM vol. 2 (a non-canonical target is #GP(0) on the branch itself, with
 * nothing pushed; a non-canonical stack access is #SS(0)).
 */
import test from 'ava';
import { buildMachine, CODE, KERNEL_STACK_TOP, runAt } from './harness/machine.js';

const modes = [false, true];

for (const jit of modes) {
  const tag = jit ? ' (translated)' : '';

  test(`call / ret / loop${tag}`, (t) => {
    const m = buildMachine({ jit });
    // mov ecx,5; xor eax,eax; 1: call f; loop 1b; hlt; f: add eax,3; ret
    t.deepEqual(runAt(m, 'b90500000031c0e803000000e2f9f483c003c3'), { kind: 'hlt' });
    t.is(m.cpu.readGpr(0), 15n);
    t.is(m.cpu.readGpr(1), 0n);
    t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP));
    t.is(m.cpu.getRip(), BigInt(CODE + 14));
  });

  test(`indirect jmp, push imm, ret imm16${tag}`, (t) => {
    const m = buildMachine({ jit });
    // lea rbx,[rip+1f]; jmp rbx; hlt; 1: push 0x11; push 0x22; call 2f; hlt; 2: ret 16
    t.deepEqual(runAt(m, '488d1d03000000ffe3f46a116a22e801000000f4c21000'), { kind: 'hlt' });
    t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP), 'ret 16 released the two pushes');
    t.is(m.cpu.getRip(), BigInt(CODE + 19), "stopped at the HLT after the call");
  });

  test(`call through memory${tag}`, (t) => {
    const m = buildMachine({ jit });
    // lea rax,[rip+1f]; mov [rsp-8],rax; call [rsp-8]; hlt; 1: mov edx,7; ret
    t.deepEqual(runAt(m, '488d050a00000048894424f8ff5424f8f4ba07000000c3'), { kind: 'hlt' });
    t.is(m.cpu.readGpr(2), 7n);
  });

  test(`jrcxz and loopne${tag}`, (t) => {
    const m = buildMachine({ jit });
    // xor ecx,ecx; jrcxz 1f; hlt; 1: mov ecx,3; xor eax,eax; 2: inc eax; cmp eax,2; loopne 2b; hlt
    t.deepEqual(runAt(m, '31c9e301f4b90300000031c0ffc083f802e0f9f4'), { kind: 'hlt' });
    t.is(m.cpu.readGpr(0), 2n, 'LOOPNE stops when ZF=1');
    t.is(m.cpu.readGpr(1), 1n, 'the counter was decremented twice');
  });

  test(`a non-canonical jump or call target is #GP(0) on the branch, nothing pushed${tag}`, (t) => {
    for (const [code, len] of [['48b80000000000800000ffe0', 10], ['48b80000000000800000ffd0', 10]] as const) {
      const m = buildMachine({ jit });
      m.cpu.exceptionBitmap = 1 << 13;
      t.deepEqual(runAt(m, code), { kind: 'exception', vector: 13, errorCode: 0 });
      t.is(m.cpu.getRip(), BigInt(CODE + len), 'RIP on the branch');
      t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP), 'RSP unchanged');
    }
  });

  test(`RET to a non-canonical address is #GP(0) with RSP unchanged${tag}`, (t) => {
    const m = buildMachine({ jit });
    m.cpu.exceptionBitmap = 1 << 13;
    // mov rax, 0x800000000000; push rax; ret
    t.deepEqual(runAt(m, '48b8000000000080000050c3'), { kind: 'exception', vector: 13, errorCode: 0 });
    t.is(m.cpu.getRip(), BigInt(CODE + 11));
    t.is(m.cpu.readGpr(4), BigInt(KERNEL_STACK_TOP - 8));
  });

  test(`a push through a non-canonical RSP is #SS(0)${tag}`, (t) => {
    const m = buildMachine({ jit });
    m.cpu.exceptionBitmap = 1 << 12;
    // mov rsp, 0x800000000008; push rax
    t.deepEqual(runAt(m, '48bc080000000080000050'), { kind: 'exception', vector: 12, errorCode: 0 });
    t.is(m.cpu.getRip(), BigInt(CODE + 10));
    t.is(m.cpu.readGpr(4), 0x800000000008n);
  });
}
