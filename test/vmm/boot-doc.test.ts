/**
 * docs/boot.md's numbers are what a guest finds: each expectation below is copied from the page
 * (its tables and formulas), and checked against a booted VM and against code run in it.
 */
import test from 'ava';
import { code, testVmm } from './vmm-support.js';

type ExecResult = { stop: string; regs: Record<string, bigint> };

test('§1: the processor state after boot, per vCPU', (t) => {
  const { vm } = testVmm({ vcpus: 4 });
  for (const v of [0, 3]) {
    const s = vm.getSregs(v);
    const r = vm.getRegs(v);
    t.like(s, {
      cr0: 0x80050033n, cr4: 0x310ea0n, efer: 0xd01n, cr3: 0x1000n, cr2: 0n, cr8: 0n,
      apicBase: v === 0 ? 0xfee00900n : 0xfee00800n,
      cs: { selector: 0x10, l: true, dpl: 0 }, ss: { selector: 0x18 }, ds: { selector: 0x18 },
      tr: { selector: 0x40 + 16 * v }, gdt: { base: 0x8000n, limit: 0x40 + 16 * 4 - 1 }, idt: { base: 0x9000n, limit: 0xfff },
    }, `vCPU ${v}`);
    t.is(r.rsp, BigInt(0x10000 + 4096 * (v + 1)), 'RSP at the top of the kernel stack');
    t.is(r.rflags, 0x2n);
  }
});

test('§3.2: where exec code runs and the stack it starts on, at CPL0 and CPL3', async (t) => {
  const vcpus = 4;
  const { vm } = testVmm({ vcpus });
  // lea rax, [rip + 0] (7 bytes): RAX is the address after it, so the code started at RAX - 7.
  const whereAmI = code(0x48, 0x8d, 0x05, 0, 0, 0, 0);
  const kernelSlot = Math.floor(0x100000 / vcpus / 4096) * 4096;
  const userSlot = Math.floor(0x1bf000 / vcpus / 4096) * 4096;
  for (const v of [0, 3]) {
    const k = await vm.perform(v, { op: 'exec', code: whereAmI }) as ExecResult;
    t.is(k.regs.rax - 7n, BigInt(0x100000 + v * kernelSlot), `CPL0 slot of vCPU ${v}`);
    t.is(k.regs.rsp, BigInt(0x10000 + 4096 * (v + 1)), 'the kernel stack');
    const u = await vm.perform(v, { op: 'exec', code: whereAmI, cpl: 3 }) as ExecResult;
    t.is(u.regs.rax - 7n, BigInt(0x201000 + v * userSlot), `CPL3 slot of vCPU ${v}`);
    t.is(u.regs.rsp, BigInt(0x400000 - 4096 * v), 'the user stack');
  }
});

test('§2: the null page faults, the read-only page refuses a supervisor write (CR0.WP), kernel scratch is writable', async (t) => {
  const { vm } = testVmm({});
  // mov rax, [0] ; hlt
  const nul = await vm.perform(0, { op: 'exec', code: code(0x48, 0x8b, 0x04, 0x25, 0, 0, 0, 0, 0xf4) }) as ExecResult & { fault?: { vector: number } };
  t.like(nul, { stop: 'fault', fault: { vector: 14 } });
  // mov byte [0xd000], 1 ; hlt
  const ro = await vm.perform(0, { op: 'exec', code: code(0xc6, 0x04, 0x25, 0x00, 0xd0, 0, 0, 1, 0xf4) }) as ExecResult & { fault?: { vector: number } };
  t.like(ro, { stop: 'fault', fault: { vector: 14 } });
  // mov byte [0x90000], 1 ; hlt
  t.like(await vm.perform(0, { op: 'exec', code: code(0xc6, 0x04, 0x25, 0x00, 0x00, 0x09, 0, 1, 0xf4) }), { stop: 'hlt' });
});
