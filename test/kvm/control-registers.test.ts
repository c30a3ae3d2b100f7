/**
 * kvm_set_cr0/cr3/cr4/cr8, kvm_lmsw and CLTS as in arch/x86/kvm/x86.c; each expectation is
 * the kernel's return (undefined stands for "return 1": #GP) or the value it loads.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import {
  cltsValue,
  kvmIsValidCr0,
  kvmIsValidCr4,
  kvmIsValidCr8,
  kvmLmswValue,
  kvmSetCr0,
  kvmSetCr3,
  kvmSetCr4,
  type CrWriteContext,
} from '../../host/kvm/control-registers.js';
import { cr4GuestReservedBits, resolveGuestCpuid } from '../../host/kvm/cpuid.js';

const BOOT_CR4 =
  abi.X86_CR4_PAE | abi.X86_CR4_PGE | abi.X86_CR4_OSFXSR | abi.X86_CR4_OSXMMEXCPT |
  abi.X86_CR4_SMEP | abi.X86_CR4_SMAP | abi.X86_CR4_UMIP | abi.X86_CR4_FSGSBASE;

/** A vCPU in 64-bit mode as the VMM boots it, with the default guest CPUID. */
function longMode(over: Partial<CrWriteContext> = {}): CrWriteContext {
  return {
    cr0: 0x80050033n,
    cr3: 0x1000n,
    cr4: BOOT_CR4,
    efer: abi.EFER_SCE | abi.EFER_LME | abi.EFER_LMA | abi.EFER_NXE,
    csL: true,
    cr4ReservedBits: cr4GuestReservedBits(resolveGuestCpuid(undefined, 'test')),
    maxPhysAddr: 46,
    pins: null,
    ...over,
  };
}

test('kvm_is_valid_cr0: bits 63:32, NW without CD, PG without PE', (t) => {
  t.true(kvmIsValidCr0(0x80050033n));
  t.false(kvmIsValidCr0(0x80050033n | (1n << 32n)));
  t.false(kvmIsValidCr0(abi.X86_CR0_NW | abi.X86_CR0_PE));
  t.true(kvmIsValidCr0(abi.X86_CR0_NW | abi.X86_CR0_CD | abi.X86_CR0_PE));
  t.false(kvmIsValidCr0(abi.X86_CR0_PG));
});

test('kvm_set_cr0: ET is forced on and unknown low bits are dropped, not refused', (t) => {
  t.is(kvmSetCr0(longMode(), 0x80050023n), 0x80050033n);
  t.is(kvmSetCr0(longMode(), 0x80050033n | (1n << 6n) | (1n << 17n)), 0x80050033n);
});

test('kvm_set_cr0: clearing PG in 64-bit mode or with CR4.PCIDE is refused', (t) => {
  t.is(kvmSetCr0(longMode(), 0x00050033n), undefined);
  t.is(kvmSetCr0(longMode({ csL: false, efer: 0n, cr4: abi.X86_CR4_PCIDE }), 0x00050033n), undefined);
  t.is(kvmSetCr0(longMode({ csL: false, efer: 0n, cr4: 0n }), 0x00050033n), 0x00050033n);
});

test('kvm_set_cr0: turning paging on with EFER.LME needs CR4.PAE and CS.L clear', (t) => {
  const off = { cr0: 0x00050033n, efer: abi.EFER_LME, csL: false };
  t.is(kvmSetCr0(longMode({ ...off, cr4: 0n }), 0x80050033n), undefined);
  t.is(kvmSetCr0(longMode({ ...off, csL: true }), 0x80050033n), undefined);
  t.is(kvmSetCr0(longMode(off), 0x80050033n), 0x80050033n);
});

test('kvm_set_cr0: WP may not be cleared while CR4.CET is set', (t) => {
  const cet = longMode({ cr4: BOOT_CR4 | abi.X86_CR4_CET });
  t.is(kvmSetCr0(cet, 0x80040033n), undefined);
  t.is(kvmSetCr0(longMode(), 0x80040033n), 0x80040033n);
});

test('kvm_set_cr4: a bit the guest CPUID lacks (CET, PKE, LA57, VMXE, PCIDE, OSXSAVE) or KVM does not know is refused', (t) => {
  for (const bit of [abi.X86_CR4_CET, abi.X86_CR4_PKE, abi.X86_CR4_LA57, abi.X86_CR4_VMXE, abi.X86_CR4_PCIDE, abi.X86_CR4_OSXSAVE, abi.X86_CR4_LAM_SUP, abi.X86_CR4_FRED, 1n << 15n, 1n << 40n]) {
    t.is(kvmSetCr4(longMode(), BOOT_CR4 | bit), undefined, `bit 0x${bit.toString(16)}`);
  }
  t.is(kvmSetCr4(longMode(), BOOT_CR4 | abi.X86_CR4_VME | abi.X86_CR4_DE | abi.X86_CR4_TSD), BOOT_CR4 | abi.X86_CR4_VME | abi.X86_CR4_DE | abi.X86_CR4_TSD, 'never CPUID-gated');
});

test('kvm_set_cr4: SMEP, SMAP, UMIP, FSGSBASE are refused for a guest without them', (t) => {
  const bare = longMode({ cr4ReservedBits: cr4GuestReservedBits(resolveGuestCpuid({ smep: false, smap: false, umip: false, fsgsbase: false }, 'test')) });
  const plain = abi.X86_CR4_PAE | abi.X86_CR4_PGE;
  for (const bit of [abi.X86_CR4_SMEP, abi.X86_CR4_SMAP, abi.X86_CR4_UMIP, abi.X86_CR4_FSGSBASE]) {
    t.is(kvmSetCr4(bare, plain | bit), undefined, `bit 0x${bit.toString(16)}`);
  }
  t.true(kvmIsValidCr4(bare.cr4ReservedBits, plain));
});

test('kvm_set_cr4: in long mode PAE may not be cleared nor LA57 toggled', (t) => {
  t.is(kvmSetCr4(longMode(), BOOT_CR4 & ~abi.X86_CR4_PAE), undefined);
  const la57 = longMode({ cr4ReservedBits: cr4GuestReservedBits(resolveGuestCpuid({ la57: true }, 'test')) });
  t.is(kvmSetCr4(la57, BOOT_CR4 | abi.X86_CR4_LA57), undefined);
  t.is(kvmSetCr4({ ...la57, cr4: BOOT_CR4 | abi.X86_CR4_LA57 }, BOOT_CR4), undefined);
});

test('kvm_set_cr4: PCIDE 0→1 needs CR3[11:0] = 0 and long mode', (t) => {
  const pcid = longMode({ cr4ReservedBits: cr4GuestReservedBits(resolveGuestCpuid({ pcid: true }, 'test')) });
  t.is(kvmSetCr4(pcid, BOOT_CR4 | abi.X86_CR4_PCIDE), BOOT_CR4 | abi.X86_CR4_PCIDE);
  t.is(kvmSetCr4({ ...pcid, cr3: 0x1005n }, BOOT_CR4 | abi.X86_CR4_PCIDE), undefined);
  t.is(kvmSetCr4({ ...pcid, efer: 0n, csL: false }, abi.X86_CR4_PCIDE), undefined);
});

test('kvm_set_cr4: CET needs CR0.WP', (t) => {
  const cet = longMode({ cr4ReservedBits: cr4GuestReservedBits(resolveGuestCpuid({ cet: true }, 'test')) });
  t.is(kvmSetCr4(cet, BOOT_CR4 | abi.X86_CR4_CET), BOOT_CR4 | abi.X86_CR4_CET);
  t.is(kvmSetCr4({ ...cet, cr0: 0x80040033n }, BOOT_CR4 | abi.X86_CR4_CET), undefined);
});

test('kvm_set_cr3: bits at or above MAXPHYADDR are reserved; with PCIDE bit 63 means no-flush and is not loaded', (t) => {
  t.is(kvmSetCr3(longMode(), 0x2000n), 0x2000n);
  t.is(kvmSetCr3(longMode(), 1n << 46n), undefined);
  t.is(kvmSetCr3(longMode(), (1n << 45n) | 0x1000n), (1n << 45n) | 0x1000n);
  t.is(kvmSetCr3(longMode(), (1n << 63n) | 0x2000n), undefined, 'NOFLUSH without PCIDE is a reserved bit');
  t.is(kvmSetCr3(longMode({ cr4: BOOT_CR4 | abi.X86_CR4_PCIDE }), (1n << 63n) | 0x2005n), 0x2005n);
  t.is(kvmSetCr3(longMode({ cr3: 0x1000n }), 0x1000n), 0x1000n, 'the current value');
});

test('kvm_set_cr8: only bits 3:0', (t) => {
  t.true(kvmIsValidCr8(0xfn));
  t.false(kvmIsValidCr8(0x10n));
  t.false(kvmIsValidCr8(1n << 63n));
});

test('LMSW loads MP/EM/TS and can set, never clear, PE; CLTS clears only TS', (t) => {
  t.is(kvmLmswValue(0x80050033n, 0x0), 0x80050031n, 'MP cleared, PE kept');
  t.is(kvmLmswValue(0x80050032n, 0xffff), 0x8005003fn, 'PE set, upper msw bits ignored');
  t.is(kvmLmswValue(0x8005003bn, 0x1), 0x80050031n);
  t.is(cltsValue(0x8005003bn), 0x80050033n);
  t.is(cltsValue(0x80050033n), 0x80050033n);
});
