import test from 'ava';
import { PhysicalMemory } from '../../host/x86/memory.js';
import type { Regs, Sregs } from '../../host/kvm/api/regs.js';
import {
  BootError, bootVcpu, buildBootImage, DONE_VECTOR, layout as L, OPERATION_BYTES,
} from '../../host/vmm/boot/index.js';
import { disassemble, disassembleText } from '../support/disassemble.js';

const MIB = 1 << 20;

function booted(vcpus = 2, size = 16 * MIB) {
  const memory = new PhysicalMemory(size);
  const image = buildBootImage(memory, { vcpus });
  return { memory, image };
}

/**
 * An independent 4-level walk (SDM vol. 3A §4.5) over the raw tables, returning the combined
 * rights of the translation: writable and user are ANDed over all levels, NX ORed.
 */
function walk(memory: PhysicalMemory, cr3: number, va: number) {
  let table = cr3;
  let writable = true;
  let user = true;
  let nx = false;
  for (const [level, shift] of [[4, 39], [3, 30], [2, 21], [1, 12]] as const) {
    const index = Math.floor(va / 2 ** shift) % 512;
    const entry = memory.read64(table + 8 * index);
    if ((entry & 1n) === 0n) return undefined;
    writable &&= (entry & 2n) !== 0n;
    user &&= (entry & 4n) !== 0n;
    nx ||= (entry >> 63n) === 1n;
    const frame = Number(entry & 0x000f_ffff_ffff_f000n);
    const large = (entry & 0x80n) !== 0n && (level === 3 || level === 2);
    if (large || level === 1) {
      const pageSize = 2 ** shift;
      return { pa: frame - (frame % pageSize) + (va % pageSize), writable, user, nx, pageSize };
    }
    table = frame;
  }
  return undefined;
}

/** iced's NASM formatter prints immediates below 10 in decimal, others as 0x-hex. */
function nasmImmediate(v: number): string {
  return v < 10 ? String(v) : `0x${v.toString(16)}`;
}

test('rejects a vCPU count or memory size it cannot lay out, naming the value', (t) => {
  const memory = new PhysicalMemory(16 * MIB);
  t.throws(() => buildBootImage(memory, { vcpus: 0 }), { instanceOf: BootError, message: /vcpus .* got 0/ });
  t.throws(() => buildBootImage(memory, { vcpus: 65 }), { instanceOf: BootError, message: /got 65/ });
  t.throws(() => buildBootImage(new PhysicalMemory(2 * MIB), { vcpus: 1 }), {
    instanceOf: BootError,
    message: /got 2097152 bytes/,
  });
  t.throws(() => buildBootImage(new PhysicalMemory(5 * MIB), { vcpus: 1 }), { message: /multiple of 2 MiB/ });
});

test('every stub pushes an error code only where the CPU does not, then the vector, then joins the common path', (t) => {
  const { memory, image } = booted();
  const common = image.text.commonEntry;
  for (const [vector, cpuPushes] of [[0, false], [6, false], [8, true], [13, true], [14, true], [0x20, false], [0xff, false]] as const) {
    const at = L.STUBS + vector * L.STUB_STRIDE;
    const code = disassemble(memory.readBytes(at, L.STUB_STRIDE), at);
    const expected = [
      ...(cpuPushes ? [] : ['push 0']),
      `push ${nasmImmediate(vector)}`,
      `jmp 0x${common.toString(16)}`,
    ];
    t.deepEqual(code.slice(0, expected.length).map((c) => c.text), expected, `vector ${vector}`);
  }
});

test('the common path records vector, error code and RIP in the fault record and resumes at the fix-up or halts', (t) => {
  const { memory, image } = booted();
  const text = disassembleText(memory.readBytes(image.text.commonEntry, 64), image.text.commonEntry);
  // After push rax the record is at rsp+64 (layout.FAULT_RECORD_SIZE): count +0, vector +8,
  // error code +16, fix-up +24, rip +32. The frame: vector +8, error code +16, RIP +24.
  t.deepEqual(text.slice(0, 16), [
    'push rax',
    'mov rax, [rsp+8]',
    'mov [rsp+0x48], rax',
    'mov rax, [rsp+0x10]',
    'mov [rsp+0x50], rax',
    'mov rax, [rsp+0x18]',
    'mov [rsp+0x60], rax',
    'inc qword [rsp+0x40]',
    'mov rax, [rsp+0x58]',
    'test rax, rax',
    `je short 0x${image.text.faultHalt.toString(16)}`,
    'mov [rsp+0x18], rax',
    'pop rax',
    'add rsp, 0x10',
    'iretq',
    'hlt',
  ]);
  t.deepEqual(disassembleText(memory.readBytes(image.text.doneHalt, 3), image.text.doneHalt), [
    'hlt',
    `jmp short 0x${image.text.doneHalt.toString(16)}`,
  ]);
  t.deepEqual(disassembleText(memory.readBytes(image.text.iretq, 2), image.text.iretq), ['iretq']);
});

test('each operation template is its one instruction followed by hlt (CPL0) or int3, the done gate (CPL3)', (t) => {
  const { memory, image } = booted();
  const expected: Record<string, string> = {
    rdmsr: 'rdmsr', wrmsr: 'wrmsr',
    readCr0: 'mov rax, cr0', readCr2: 'mov rax, cr2', readCr3: 'mov rax, cr3', readCr4: 'mov rax, cr4',
    readCr8: 'mov rax, cr8',
    writeCr0: 'mov cr0, rax', writeCr2: 'mov cr2, rax', writeCr3: 'mov cr3, rax', writeCr4: 'mov cr4, rax',
    writeCr8: 'mov cr8, rax',
    lmsw: 'lmsw ax', clts: 'clts', vmcall: 'vmcall', vmmcall: 'vmmcall', cpuid: 'cpuid',
  };
  t.deepEqual(Object.keys(expected).sort(), Object.keys(OPERATION_BYTES).sort());
  for (const [name, insn] of Object.entries(expected)) {
    const k = image.text.kernelOps[name as keyof typeof OPERATION_BYTES];
    const u = image.text.userOps[name as keyof typeof OPERATION_BYTES];
    t.deepEqual(disassembleText(memory.readBytes(k.entry, k.epilogue + 1 - k.entry), k.entry), [insn, 'hlt'], name);
    t.deepEqual(disassembleText(memory.readBytes(u.entry, u.epilogue + 1 - u.entry), u.entry), [insn, 'int3'], name);
    t.true(k.entry >= L.KERNEL_TEXT && k.epilogue < L.KERNEL_TEXT + L.PAGE);
    t.true(u.entry >= L.USER_TEXT && u.epilogue < L.USER_TEXT + L.PAGE);
  }
});

test('the identity map gives each region the rights layout.ts documents', (t) => {
  const { memory } = booted();
  const cr3 = L.PML4;
  t.is(walk(memory, cr3, 0x0), undefined, 'null page not present');
  t.is(walk(memory, cr3, 0xfff), undefined);
  const expect = (va: number, rights: { writable: boolean; user: boolean; nx: boolean; pageSize: number }) => {
    const w = walk(memory, cr3, va);
    t.truthy(w, `0x${va.toString(16)} mapped`);
    t.like(w, { pa: va, ...rights }, `0x${va.toString(16)}`);
  };
  expect(L.PML4, { writable: true, user: false, nx: true, pageSize: 4096 });
  expect(L.GDT, { writable: true, user: false, nx: true, pageSize: 4096 });
  expect(L.RODATA + 8, { writable: false, user: false, nx: true, pageSize: 4096 });
  expect(L.STUBS, { writable: false, user: false, nx: false, pageSize: 4096 });
  expect(L.KERNEL_TEXT + 0x10, { writable: false, user: false, nx: false, pageSize: 4096 });
  expect(L.kernelStackTop(0) - 8, { writable: true, user: false, nx: true, pageSize: 4096 });
  expect(L.KERNEL_EXEC + 0x123, { writable: true, user: false, nx: false, pageSize: 4096 });
  expect(L.USER_REGION + 0x1234, { writable: true, user: true, nx: false, pageSize: 2 * MIB });
  expect(L.userStackTop(0) - 8, { writable: true, user: true, nx: false, pageSize: 2 * MIB });
  expect(L.HIGH_MEMORY, { writable: true, user: false, nx: true, pageSize: 2 * MIB });
  expect(16 * MIB - 1, { writable: true, user: false, nx: true, pageSize: 2 * MIB });
  t.is(walk(memory, cr3, 16 * MIB), undefined, 'nothing beyond memory');
});

test('memory above 1 GiB is mapped through the next page directory', (t) => {
  const memory = new PhysicalMemory(1024 * MIB + 4 * MIB);
  buildBootImage(memory, { vcpus: 1 });
  const va = 1024 * MIB + 2 * MIB + 5;
  t.like(walk(memory, L.PML4, va), { pa: va, writable: true, user: false, nx: true });
  t.is(walk(memory, L.PML4, 1024 * MIB + 4 * MIB), undefined);
});

test('the GDT holds the Linux descriptors at the Linux selectors, 64-bit kernel code at 0x08 too, and one busy TSS per vCPU', (t) => {
  const { memory } = booted(3);
  // Linux's GDT_ENTRY_INIT values for these segments (arch/x86/kernel/cpu/common.c).
  t.is(memory.read64(L.GDT + 0x10), 0x00af9b000000ffffn, 'kernel CS, 64-bit');
  // 0x08 is the conventional layout's kernel code (null, code 0x08, data 0x10): 64-bit, DPL 0,
  // the same descriptor as 0x10, so the IDT's gates (which name it) work under either GDT.
  t.is(memory.read64(L.GDT + 0x08), 0x00af9b000000ffffn, 'the IDT gates\' CS, 64-bit');
  t.is(memory.read64(L.GDT + 0x18), 0x00cf93000000ffffn, 'kernel DS');
  t.is(memory.read64(L.GDT + 0x20), 0x00cffb000000ffffn, 'user32 CS');
  t.is(memory.read64(L.GDT + 0x28), 0x00cff3000000ffffn, 'user DS');
  t.is(memory.read64(L.GDT + 0x30), 0x00affb000000ffffn, 'user CS, 64-bit');
  for (let v = 0; v < 3; v++) {
    const sel = L.tssSelector(v);
    const low = memory.read64(L.GDT + sel);
    const base = L.tssAddress(v);
    t.is(Number(low & 0xffffn), 0x67, 'limit 103');
    t.is(Number((low >> 16n) & 0xffffffn) | (Number((low >> 56n) & 0xffn) << 24), base, 'base');
    t.is(Number((low >> 40n) & 0xffn), 0x8b, 'present, type 0xb (busy 64-bit TSS)');
    t.is(memory.read32(L.GDT + sel + 8), 0, 'base bits 63:32');
    // TSS: RSP0 at +4, IST1 at +36, I/O map base at +102.
    t.is(memory.read64(base + 4), BigInt(L.kernelStackTop(v)));
    t.is(memory.read64(base + 36), BigInt(L.faultRecordAddress(v)));
    t.is(memory.read16(base + 102), 104);
  }
  t.is(L.gdtLimit(3), 0x40 + 3 * 16 - 1);
});

test('IDT gates are 64-bit interrupt gates on IST1; only #BP (the done gate) and #OF are reachable from CPL3', (t) => {
  const { memory, image } = booted();
  const gate = (v: number) => {
    const lo = memory.read64(L.IDT + 16 * v);
    const hi = memory.read32(L.IDT + 16 * v + 8);
    return {
      handler: Number(lo & 0xffffn) | (Number((lo >> 48n) & 0xffffn) << 16) | (hi * 2 ** 32),
      selector: Number((lo >> 16n) & 0xffffn),
      ist: Number((lo >> 32n) & 7n),
      type: Number((lo >> 40n) & 0xfn),
      dpl: Number((lo >> 45n) & 3n),
      present: ((lo >> 47n) & 1n) === 1n,
    };
  };
  t.is(DONE_VECTOR, 3, 'the done gate is #BP\'s: int3 reaches the guest from CPL3 on every host (INT n is #UD on PVM)');
  for (let v = 0; v < 256; v++) {
    const g = gate(v);
    t.true(g.present && g.selector === 0x08 && g.ist === 1 && g.type === 0xe, `vector ${v}`);
    t.is(g.dpl, v === 3 || v === 4 ? 3 : 0, `vector ${v} DPL`);
    t.is(g.handler, v === DONE_VECTOR ? image.text.doneHalt : L.STUBS + 16 * v, `vector ${v} handler`);
  }
});

test('bootVcpu loads 64-bit CPL0 state with paging, and only the CR4 features asked for', (t) => {
  const memory = new PhysicalMemory(8 * MIB);
  const image = buildBootImage(memory, { vcpus: 2, cpuFeatures: { smap: false, umip: false } });
  let sregs: Sregs | undefined;
  let regs: Regs | undefined;
  bootVcpu({ setSregs: (s) => (sregs = s), setRegs: (r) => (regs = r) }, image, 1);
  t.truthy(sregs && regs);
  t.is(sregs!.cr0, 0x80050033n);
  t.is(sregs!.cr3, 0x1000n);
  t.is(sregs!.cr4, 0x6a0n | (1n << 20n) | (1n << 16n), 'PAE|PGE|OSFXSR|OSXMMEXCPT|SMEP|FSGSBASE');
  t.is(sregs!.efer, 0xd01n, 'SCE|LME|LMA|NXE');
  t.like(sregs!.cs, { selector: 0x10, l: true, dpl: 0, present: true });
  t.like(sregs!.ss, { selector: 0x18, dpl: 0, db: true });
  t.like(sregs!.tr, { selector: 0x50, base: BigInt(L.tssAddress(1)), type: 0xb });
  t.is(sregs!.apicBase, 0xfee00800n, 'an AP: enabled, not BSP');
  t.is(regs!.rsp, BigInt(L.kernelStackTop(1)));
  t.is(regs!.rflags, 2n);
  t.throws(() => bootVcpu({ setSregs: () => {}, setRegs: () => {} }, image, 2), { message: /vcpu 2/ });
});

test('exec slots of different vCPUs do not overlap and stay inside their regions', (t) => {
  const { image } = booted(64);
  for (let v = 0; v < 64; v++) {
    const k = image.kernelExecSlot(v);
    const u = image.userExecSlot(v);
    t.true(k.size >= 4096 && k.base >= L.KERNEL_EXEC && k.base + k.size <= L.KERNEL_EXEC_END);
    t.true(u.size >= 4096 && u.base >= L.USER_EXEC && u.base + u.size <= L.USER_EXEC_END);
    if (v > 0) t.is(k.base, image.kernelExecSlot(v - 1).base + k.size);
  }
  t.true(L.USER_EXEC_END <= L.userStackTop(63) - 4096);
});

test('a booted 16 MiB guest holds only the frames the boot image wrote', (t) => {
  const { memory } = booted(1);
  t.true(memory.allocatedFrames < 24, `${memory.allocatedFrames} frames`);
});

test('every entry of the boot tables is accessed and dirty, as Linux writes its own (_PAGE_TABLE, __PAGE_KERNEL)', (t) => {
  const { memory } = booted();
  const tables = [L.PML4, L.PDPT, L.PD_BASE, L.PT0];
  let present = 0;
  for (const table of tables) {
    for (let i = 0; i < 512; i++) {
      const e = memory.read64(table + 8 * i);
      if ((e & 1n) === 0n) continue;
      present++;
      t.is(e & 0x60n, 0x60n, `entry ${i} of the table at 0x${table.toString(16)}: A (bit 5) and D (bit 6)`);
    }
  }
  t.true(present > 512, 'PT0 alone has 511 present entries');
});
