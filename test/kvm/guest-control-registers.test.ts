/**
 * KVM's control-register checks on real MOV to CR0/CR2/CR3/CR4/CR8, LMSW and CLTS, from a
 * booted 64-bit guest: kvm_is_valid_cr0() / kvm_set_cr0(), __cr4_reserved_bits() /
 * kvm_set_cr4(), kvm_set_cr3() with kvm_vcpu_is_legal_cr3(), kvm_set_cr8(), kvm_lmsw() and the
 * CLTS case of handle_cr() (arch/x86/kvm/x86.c, x86.h, vmx/vmx.c). A refused write is #GP(0)
 * with the register unchanged and RIP on the instruction; CPL > 0 faults in the CPU before
 * any exit. CR8 is the LAPIC's TPR[7:4].
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import type { GuestCpuidOptions } from '../../host/kvm/api/cpuid.js';
import { Guest } from './guest.js';

const GP = abi.GP_VECTOR;
const bit = (n: number): bigint => 1n << BigInt(n);

interface CrCase {
  readonly what: string;
  readonly cr: 0 | 3 | 4;
  readonly cpuid?: GuestCpuidOptions;
  /** The value to write, from the current one. */
  readonly value: (current: bigint) => bigint;
  /** The value the register then holds; undefined for #GP(0). */
  readonly loads?: (current: bigint) => bigint;
}

const { X86_CR0_PE: PE, X86_CR0_PG: PG, X86_CR0_NW: NW, X86_CR0_CD: CD, X86_CR0_ET: ET, X86_CR0_WP: WP } = abi;
const { X86_CR0_MP: MP, X86_CR0_EM: EM, X86_CR0_TS: TS } = abi;

const CASES: readonly CrCase[] = [
  // kvm_is_valid_cr0()
  { what: 'CR0 bit 32', cr: 0, value: (c) => c | bit(32) },
  { what: 'CR0.NW without CD', cr: 0, value: (c) => c | NW },
  { what: 'CR0.PG without PE', cr: 0, value: (c) => c & ~PE },
  // kvm_set_cr0()
  { what: 'CR0.PG cleared in 64-bit mode', cr: 0, value: (c) => c & ~PG },
  { what: 'CR0.CD|NW', cr: 0, value: (c) => c | CD | NW, loads: (c) => c | CD | NW },
  { what: 'CR0 reserved bits 6 and 17 (ignored)', cr: 0, value: (c) => c | bit(6) | bit(17), loads: (c) => c },
  { what: 'CR0.ET cleared (hardwired to 1)', cr: 0, value: (c) => c & ~ET, loads: (c) => c },
  { what: 'CR0.MP|EM|TS toggled', cr: 0, value: (c) => c ^ (MP | EM | TS), loads: (c) => c ^ (MP | EM | TS) },
  { what: 'CR0.WP cleared (no CET)', cr: 0, value: (c) => c & ~WP, loads: (c) => c & ~WP },
  // __cr4_reserved_bits() for the default guest, then kvm_set_cr4()
  { what: 'CR4.SMXE (never offered)', cr: 4, value: (c) => c | abi.X86_CR4_SMXE },
  { what: 'CR4 bit 63', cr: 4, value: (c) => c | bit(63) },
  { what: 'CR4.PKE without PKU', cr: 4, value: (c) => c | abi.X86_CR4_PKE },
  { what: 'CR4.PKE with PKU', cr: 4, cpuid: { pku: true }, value: (c) => c | abi.X86_CR4_PKE, loads: (c) => c | abi.X86_CR4_PKE },
  { what: 'CR4.LA57 without LA57', cr: 4, value: (c) => c | abi.X86_CR4_LA57 },
  { what: 'CR4.LA57 toggled in long mode', cr: 4, cpuid: { la57: true }, value: (c) => c | abi.X86_CR4_LA57 },
  { what: 'CR4.VMXE without VMX', cr: 4, value: (c) => c | abi.X86_CR4_VMXE },
  { what: 'CR4.VMXE with VMX', cr: 4, cpuid: { vmx: true }, value: (c) => c | abi.X86_CR4_VMXE, loads: (c) => c | abi.X86_CR4_VMXE },
  { what: 'CR4.OSXSAVE without XSAVE', cr: 4, value: (c) => c | abi.X86_CR4_OSXSAVE },
  { what: 'CR4.PCIDE without PCID', cr: 4, value: (c) => c | abi.X86_CR4_PCIDE },
  { what: 'CR4.PCIDE with PCID, CR3[11:0] = 0', cr: 4, cpuid: { pcid: true }, value: (c) => c | abi.X86_CR4_PCIDE, loads: (c) => c | abi.X86_CR4_PCIDE },
  { what: 'CR4.CET without CET', cr: 4, value: (c) => c | abi.X86_CR4_CET },
  { what: 'CR4.CET with CET (CR0.WP set)', cr: 4, cpuid: { cet: true }, value: (c) => c | abi.X86_CR4_CET, loads: (c) => c | abi.X86_CR4_CET },
  { what: 'CR4.PAE cleared in long mode', cr: 4, value: (c) => c & ~abi.X86_CR4_PAE },
  { what: 'CR4.SMEP cleared (unpinned)', cr: 4, value: (c) => c & ~abi.X86_CR4_SMEP, loads: (c) => c & ~abi.X86_CR4_SMEP },
  {
    what: 'CR4.VME|PVI|TSD|DE|MCE|PCE set',
    cr: 4,
    value: (c) => c | abi.X86_CR4_VME | abi.X86_CR4_PVI | abi.X86_CR4_TSD | abi.X86_CR4_DE | abi.X86_CR4_MCE | abi.X86_CR4_PCE,
    loads: (c) => c | abi.X86_CR4_VME | abi.X86_CR4_PVI | abi.X86_CR4_TSD | abi.X86_CR4_DE | abi.X86_CR4_MCE | abi.X86_CR4_PCE,
  },
  // kvm_set_cr3(): bits at and above MAXPHYADDR (46 in the default guest) are reserved
  { what: 'CR3 bit 46', cr: 3, value: (c) => c | bit(46) },
  { what: 'CR3 bit 63 without PCIDE', cr: 3, value: (c) => c | bit(63) },
  { what: 'CR3 with PWT|PCD', cr: 3, value: (c) => c | 0x18n, loads: (c) => c | 0x18n },
  { what: 'CR3 rewritten', cr: 3, value: (c) => c, loads: (c) => c },
  { what: 'CR3 bit 45 under MAXPHYADDR 48', cr: 3, cpuid: { maxPhysAddr: 48 }, value: (c) => c | bit(45), loads: (c) => c | bit(45) },
];

const TEMPLATE = { 0: 'writeCr0', 3: 'writeCr3', 4: 'writeCr4' } as const;

for (const c of CASES) {
  const verdict = c.loads === undefined ? '#GP(0)' : 'loaded';
  test(`MOV to ${c.what}: ${verdict}`, (t) => {
    const g = new Guest({ guestCpuid: c.cpuid });
    const before = g.cr(c.cr);
    const op = g.start(TEMPLATE[c.cr], { rax: c.value(before) });
    const out = g.finish();
    if (c.loads === undefined) {
      t.deepEqual(out.fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
      t.is(out.faults, 1);
      t.is(g.cr(c.cr), before, 'unchanged');
    } else {
      t.is(out.fault, null);
      t.is(g.cr(c.cr), c.loads(before));
      t.is(out.regs.rip, BigInt(op.epilogue + 1));
    }
  });
}

test('CR0.WP cannot be cleared while CR4.CET is set, and CR4.CET cannot be set while CR0.WP is clear', (t) => {
  const g = new Guest({ guestCpuid: { cet: true } });
  const cr0 = g.cr(0);
  const cr4 = g.cr(4);
  g.start('writeCr4', { rax: cr4 | abi.X86_CR4_CET });
  t.is(g.finish().fault, null);
  const op = g.start('writeCr0', { rax: cr0 & ~WP });
  t.is(g.finish().fault?.rip, BigInt(op.entry));
  t.is(g.cr(0), cr0);
  g.start('writeCr4', { rax: cr4 });
  t.is(g.finish().fault, null);
  g.start('writeCr0', { rax: cr0 & ~WP });
  t.is(g.finish().fault, null);
  const cet = g.start('writeCr4', { rax: cr4 | abi.X86_CR4_CET });
  t.is(g.finish().fault?.rip, BigInt(cet.entry));
  t.is(g.cr(4), cr4);
});

test('CR4.PCIDE cannot be turned on while CR3[11:0] is non-zero; with PCIDE, CR3 bit 63 is "no flush" and never loaded', (t) => {
  const g = new Guest({ guestCpuid: { pcid: true } });
  const cr3 = g.cr(3);
  const cr4 = g.cr(4);
  g.start('writeCr3', { rax: cr3 | 1n });
  t.is(g.finish().fault, null);
  const op = g.start('writeCr4', { rax: cr4 | abi.X86_CR4_PCIDE });
  t.is(g.finish().fault?.rip, BigInt(op.entry));
  g.start('writeCr3', { rax: cr3 });
  t.is(g.finish().fault, null);
  g.start('writeCr4', { rax: cr4 | abi.X86_CR4_PCIDE });
  t.is(g.finish().fault, null);
  g.start('writeCr3', { rax: cr3 | 2n | bit(63) });
  t.is(g.finish().fault, null);
  t.is(g.cr(3), cr3 | 2n);
});

test('MOV to CR2 loads any value; MOV from CR0, CR2, CR3 and CR4 read what the CPU holds', (t) => {
  const g = new Guest();
  g.start('writeCr2', { rax: 0xdead_beef_cafe_f00dn });
  t.is(g.finish().fault, null);
  const s = g.vcpu().getSregs();
  t.is(s.cr2, 0xdead_beef_cafe_f00dn);
  const reads = [['readCr0', s.cr0], ['readCr2', s.cr2], ['readCr3', s.cr3], ['readCr4', s.cr4]] as const;
  for (const [op, value] of reads) {
    g.start(op, { rax: 0n });
    t.is(g.finish().regs.rax, value, op);
  }
});

test('CR8 is the TPR: MOV to CR8 sets TPR[7:4], an x2APIC TPR write shows in MOV from CR8, values above 15 #GP', (t) => {
  const g = new Guest();
  // x2APIC on (EN | EXTD | BSP), to reach the TPR as MSR 0x808.
  g.start('wrmsr', { rcx: BigInt(abi.MSR_IA32_APICBASE), rax: 0xfee00d00n, rdx: 0n });
  t.is(g.finish().fault, null);
  g.start('writeCr8', { rax: 5n });
  t.is(g.finish().fault, null);
  g.start('rdmsr', { rcx: 0x808n });
  t.is(g.finish().regs.rax, 0x50n, 'TPR = CR8 << 4');
  t.is(g.vcpu().getSregs().cr8, 5n);
  t.is(g.vcpu().kvmRun.cr8, 5n, 'kvm_run.cr8 travels with the exit');

  g.start('wrmsr', { rcx: 0x808n, rax: 0x7fn, rdx: 0n });
  t.is(g.finish().fault, null);
  g.start('readCr8', { rax: 0n });
  t.is(g.finish().regs.rax, 7n, 'CR8 = TPR[7:4]');

  const op = g.start('writeCr8', { rax: 16n });
  t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(op.entry) });
  t.is(g.vcpu().getSregs().cr8, 7n);
});

test('LMSW loads CR0 bits 3:1 and can set PE but never clear it', (t) => {
  const g = new Guest();
  const cr0 = g.cr(0);
  g.start('lmsw', { rax: MP | EM | TS });
  t.is(g.finish().fault, null);
  t.is(g.cr(0), cr0 | MP | EM | TS, 'PE kept although the source has it clear');
  g.start('lmsw', { rax: 0xfff0n | PE });
  t.is(g.finish().fault, null);
  t.is(g.cr(0), cr0 & ~(MP | EM | TS), 'only bits 3:0 of the source count');
});

test('CLTS clears CR0.TS, and is harmless when TS is already clear', (t) => {
  const g = new Guest();
  const cr0 = g.cr(0);
  g.start('writeCr0', { rax: cr0 | TS });
  t.is(g.finish().fault, null);
  g.start('clts');
  t.is(g.finish().fault, null);
  t.is(g.cr(0), cr0 & ~TS);
  g.start('clts');
  t.is(g.finish().fault, null);
  t.is(g.cr(0), cr0 & ~TS);
});

test('at CPL3, MOV to/from CR, LMSW and CLTS are #GP(0) from the CPU, before any KVM check', (t) => {
  const g = new Guest();
  const cr0 = g.cr(0);
  const cr4 = g.cr(4);
  for (const op of ['writeCr0', 'writeCr4', 'writeCr8', 'readCr0', 'readCr8', 'lmsw', 'clts'] as const) {
    const tpl = g.startUser(op, { rax: 0n });
    t.deepEqual(g.finish().fault, { vector: GP, errorCode: 0, rip: BigInt(tpl.entry) }, op);
  }
  t.is(g.cr(0), cr0);
  t.is(g.cr(4), cr4);
});
