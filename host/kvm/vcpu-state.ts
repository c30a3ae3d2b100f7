/**
 * Checks on the register state user space loads (KVM_SET_REGS, KVM_SET_SREGS): the shape
 * the C structs would force, then kvm_is_valid_sregs() (arch/x86/kvm/x86.c).
 */
import { EFER_LMA, EFER_LME, X86_CR0_PG, X86_CR4_PAE } from '../../protocol/abi.js';
import type { Regs, Segment, Sregs } from './api/regs.js';
import { kvmIsValidCr0, kvmIsValidCr4 } from './control-registers.js';
import { KvmError } from './api/errors.js';
import { GPR_NAMES } from '../x86/state.js';
import { toU64 } from './u64.js';
import { hex } from '../../protocol/notation.js';

function u64Field(ioctl: string, where: string, value: unknown): void {
  if (typeof value !== 'bigint' || toU64(value) === undefined) {
    throw new KvmError('EINVAL', ioctl, `${where} must be a u64 bigint, got ${String(value)}`);
  }
}

function intField(ioctl: string, where: string, value: unknown, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new KvmError('EINVAL', ioctl, `${where} must be an integer 0..${max}, got ${String(value)}`);
  }
}

/** `struct kvm_regs`: 18 u64 fields. */
export function checkRegs(regs: Regs): void {
  const ioctl = 'KVM_SET_REGS';
  if (typeof regs !== 'object' || regs === null) throw new KvmError('EINVAL', ioctl, 'regs must be an object');
  for (const name of [...GPR_NAMES, 'rip', 'rflags'] as const) u64Field(ioctl, name, regs[name]);
}

const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;

function checkSegment(ioctl: string, name: string, s: Segment): void {
  if (typeof s !== 'object' || s === null) throw new KvmError('EINVAL', ioctl, `${name} must be an object`);
  u64Field(ioctl, `${name}.base`, s.base);
  intField(ioctl, `${name}.limit`, s.limit, 0xffff_ffff);
  intField(ioctl, `${name}.selector`, s.selector, 0xffff);
  intField(ioctl, `${name}.type`, s.type, 15);
  intField(ioctl, `${name}.dpl`, s.dpl, 3);
  for (const flag of ['present', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const) {
    if (typeof s[flag] !== 'boolean') throw new KvmError('EINVAL', ioctl, `${name}.${flag} must be a boolean`);
  }
}

/**
 * `struct kvm_sregs` and kvm_is_valid_sregs(): with EFER.LME and CR0.PG the CPU is in long
 * mode, so CR4.PAE and EFER.LMA must be set and CR3 legal; otherwise EFER.LMA and CS.L must
 * be clear; CR0 and CR4 must pass kvm_is_valid_cr0/cr4. Heki pins are not consulted: host
 * writes bypass them (docs/heki.md §2.1, §8 case 12).
 */
export function checkSregs(s: Sregs, cr4ReservedBits: bigint, maxPhysAddr: number): void {
  const ioctl = 'KVM_SET_SREGS';
  if (typeof s !== 'object' || s === null) throw new KvmError('EINVAL', ioctl, 'sregs must be an object');
  for (const seg of SEGMENTS) checkSegment(ioctl, seg, s[seg]);
  for (const dt of ['gdt', 'idt'] as const) {
    if (typeof s[dt] !== 'object' || s[dt] === null) throw new KvmError('EINVAL', ioctl, `${dt} must be an object`);
    u64Field(ioctl, `${dt}.base`, s[dt].base);
    intField(ioctl, `${dt}.limit`, s[dt].limit, 0xffff);
  }
  for (const f of ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const) u64Field(ioctl, f, s[f]);
  if ((s.efer & EFER_LME) !== 0n && (s.cr0 & X86_CR0_PG) !== 0n) {
    if ((s.cr4 & X86_CR4_PAE) === 0n) throw new KvmError('EINVAL', ioctl, 'long mode (EFER.LME and CR0.PG) needs CR4.PAE');
    if ((s.efer & EFER_LMA) === 0n) throw new KvmError('EINVAL', ioctl, 'long mode (EFER.LME and CR0.PG) needs EFER.LMA');
    if (s.cr3 >> BigInt(maxPhysAddr)) throw new KvmError('EINVAL', ioctl, `CR3 ${hex(s.cr3)} has bits at or above MAXPHYADDR ${maxPhysAddr}`);
  } else if ((s.efer & EFER_LMA) !== 0n || s.cs.l) {
    throw new KvmError('EINVAL', ioctl, 'EFER.LMA or CS.L set outside long mode');
  }
  if (!kvmIsValidCr4(cr4ReservedBits, s.cr4)) throw new KvmError('EINVAL', ioctl, `CR4 ${hex(s.cr4)} sets bits reserved for this guest`);
  if (!kvmIsValidCr0(s.cr0)) throw new KvmError('EINVAL', ioctl, `CR0 ${hex(s.cr0)} is invalid`);
}
