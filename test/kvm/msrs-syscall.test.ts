/**
 * EFER, the SYSCALL/SYSENTER MSRs and the FS/GS bases: set_efer(), __kvm_set_msr() and
 * vmx_set_msr() (arch/x86/kvm/msrs.c, vmx.c). Host-initiated is KVM_SET_MSRS.
 */
import test from 'ava';
import * as abi from '../../protocol/abi.js';
import { INVALID, MsrHarness } from './msr-harness.js';

const BOOT_EFER = abi.EFER_SCE | abi.EFER_LME | abi.EFER_LMA | abi.EFER_NXE;

test('EFER: bits outside SCE|LME|LMA|NX are refused for guest and host alike', (t) => {
  const h = new MsrHarness();
  for (const bit of [1n << 1n, 1n << 12n /* SVME */, 1n << 14n /* FFXSR */, 1n << 15n, 1n << 63n]) {
    t.is(h.write(abi.MSR_EFER, BOOT_EFER | bit), INVALID, `guest bit 0x${bit.toString(16)}`);
    t.is(h.write(abi.MSR_EFER, BOOT_EFER | bit, true), INVALID, `host bit 0x${bit.toString(16)}`);
  }
  t.is(h.read(abi.MSR_EFER)[1], BOOT_EFER);
});

test('EFER: NX needs NX in the guest CPUID, for the guest only', (t) => {
  const h = new MsrHarness({ cpuid: { nx: false } });
  t.is(h.write(abi.MSR_EFER, BOOT_EFER), INVALID);
  t.is(h.write(abi.MSR_EFER, BOOT_EFER & ~abi.EFER_NXE), 0);
  t.is(h.write(abi.MSR_EFER, BOOT_EFER, true), 0);
});

test('EFER: the guest may not toggle LME while paging is on; the host may', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_EFER, BOOT_EFER & ~abi.EFER_LME), INVALID);
  h.cpu.cr0 &= ~abi.X86_CR0_PG;
  t.is(h.write(abi.MSR_EFER, BOOT_EFER & ~abi.EFER_LME), 0);
  h.cpu.cr0 |= abi.X86_CR0_PG;
  t.is(h.write(abi.MSR_EFER, BOOT_EFER, true), 0);
});

test('EFER: a write never changes LMA (it is the CPU\'s), not even from the host', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_EFER, BOOT_EFER & ~abi.EFER_LMA), 0);
  t.is(h.read(abi.MSR_EFER)[1], BOOT_EFER);
  t.is(h.write(abi.MSR_EFER, abi.EFER_LME | abi.EFER_SCE, true), 0);
  t.is(h.read(abi.MSR_EFER)[1], abi.EFER_LME | abi.EFER_SCE | abi.EFER_LMA);
  t.is(h.write(abi.MSR_EFER, BOOT_EFER & ~abi.EFER_SCE), 0, 'SCE may be cleared');
});

test('FS_BASE, GS_BASE, KERNEL_GS_BASE, LSTAR, CSTAR must be canonical for the host\'s 48-bit width', (t) => {
  const h = new MsrHarness();
  for (const msr of [abi.MSR_FS_BASE, abi.MSR_GS_BASE, abi.MSR_KERNEL_GS_BASE, abi.MSR_LSTAR, abi.MSR_CSTAR]) {
    t.is(h.write(msr, 0x0000_7fff_ffff_f000n), 0);
    t.is(h.read(msr)[1], 0x0000_7fff_ffff_f000n);
    t.is(h.write(msr, 0xffff_8000_0000_0000n), 0);
    t.is(h.write(msr, 0x0000_8000_0000_0000n), INVALID, `0x${msr.toString(16)} non-canonical`);
    t.is(h.write(msr, 0x0000_8000_0000_0000n, true), INVALID, 'host too');
    t.is(h.read(msr)[1], 0xffff_8000_0000_0000n, 'unchanged');
  }
});

test('the canonical width is the host\'s (57 with host LA57), not the guest CPUID\'s', (t) => {
  const guestLa57 = new MsrHarness({ cpuid: { la57: true } });
  t.is(guestLa57.write(abi.MSR_FS_BASE, 0x0000_8000_0000_0000n), INVALID);
  const hostLa57 = new MsrHarness({ hostVirtAddrBits: 57 });
  t.is(hostLa57.write(abi.MSR_FS_BASE, 0x0000_8000_0000_0000n), 0);
  t.is(hostLa57.write(abi.MSR_FS_BASE, 0x0100_0000_0000_0000n), INVALID);
  t.is(hostLa57.write(abi.MSR_FS_BASE, 0xff00_0000_0000_0000n), 0);
});

test('SYSENTER_ESP/EIP are made canonical instead of refused; SYSENTER_CS keeps 32 bits', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_IA32_SYSENTER_ESP, 0x0000_8000_0000_1234n), 0);
  t.is(h.read(abi.MSR_IA32_SYSENTER_ESP)[1], 0xffff_8000_0000_1234n);
  t.is(h.write(abi.MSR_IA32_SYSENTER_EIP, 0x1234_0000_0000_0000n), 0);
  t.is(h.read(abi.MSR_IA32_SYSENTER_EIP)[1], 0n);
  t.is(h.write(abi.MSR_IA32_SYSENTER_CS, 0xffff_ffff_0000_0010n), 0);
  t.is(h.read(abi.MSR_IA32_SYSENTER_CS)[1], 0x10n);
});

test('STAR takes any value; SYSCALL_MASK (model decision) refuses bits 63:32', (t) => {
  const h = new MsrHarness();
  t.is(h.write(abi.MSR_STAR, 0xffff_ffff_ffff_ffffn), 0);
  t.is(h.read(abi.MSR_STAR)[1], 0xffff_ffff_ffff_ffffn);
  t.is(h.write(abi.MSR_SYSCALL_MASK, 0x4_7700n), 0);
  t.is(h.write(abi.MSR_SYSCALL_MASK, 1n << 32n), INVALID);
  t.is(h.read(abi.MSR_SYSCALL_MASK)[1], 0x4_7700n);
});
