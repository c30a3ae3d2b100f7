/**
 * System instructions: MOV to/from CR, CLTS, LMSW, SMSW, RDMSR, WRMSR, CPUID, HLT, VMCALL,
 * VMMCALL, RDTSC, INVLPG, STAC, CLAC, SWAPGS, LGDT, LIDT, SGDT, SIDT, LLDT, LTR, UD2 (SDM vol. 2
 * per instruction).
 *
 * The checks hardware makes before a VM exit are made here (SDM vol. 3C §25.1.1: CPL and #UD
 * checks take priority over the exit): CPL > 0 → #GP(0) for MOV CR, CLTS, LMSW, RDMSR, WRMSR,
 * HLT, INVLPG, SWAPGS, LGDT/LIDT, LLDT, LTR; #UD for STAC/CLAC at CPL > 0; UMIP → #GP(0) for
 * SGDT/SIDT/SMSW at CPL > 0; CR4.TSD → #GP(0) for RDTSC at CPL > 0. Then the instruction either
 * runs, or stops the core with an intercept and leaves RIP on itself (the hypervisor skips it
 * or injects a fault).
 *
 * LGDT, LIDT, LLDT and LTR stop with a `descriptor_table` intercept while the hypervisor has
 * descriptor-table exiting on. MODEL DECISION: as for LMSW, the operand is read — and may fault —
 * before the intercept, and LGDT/LIDT check the base is canonical first (VMX exits before the
 * memory operand is read and leaves that to the VMM's emulator); LLDT/LTR check their
 * descriptor when the hypervisor executes them (`executeIntercepted`).
 */
import { X86_EFLAGS_AC } from '../../../protocol/abi.js';
import { DESC_TYPE_LDT, DESC_TYPE_TSS_AVAILABLE, DESC_TYPE_TSS_BUSY } from '../arch.js';
import { SEG_GS, type CpuCore } from '../core.js';
import { isCanonicalBase, readDescriptor, type Descriptor } from '../descriptors.js';
import { raiseGP, raiseNP, raiseUD } from '../fault.js';
import { materializeFlags } from '../flags.js';
import type { Insn } from '../decode/insn.js';
import type { ControlRegister } from '../guest-cpu.js';
import type { Segment } from '../state.js';
import { prepareWrite, read16, read64, write16, write64, writeImplicit32 } from '../mmu/access.js';
import { flushTlb, updateTlbContext } from '../mmu/tlb.js';
import { toBigInt, writeReg } from '../registers.js';
import { setSegmentBase } from '../segments.js';
import { linearAddress } from './address.js';
import { readE, writeE } from './operands.js';

function requireCpl0(c: CpuCore): void {
  if (c.cpl !== 0) raiseGP(c, 0);
}

function stopWith(c: CpuCore, i: Insn, intercept: NonNullable<CpuCore['stop']>): void {
  c.stop = intercept;
  c.interceptedLength = i.len;
}

/** Whether a descriptor-table load must stop for the hypervisor (not while it executes the load itself). */
function descriptorTableExit(c: CpuCore): boolean {
  return c.descriptorTableExiting && !c.executingIntercepted;
}

function stopAtTableLoad(c: CpuCore, i: Insn, insn: 'lgdt' | 'lidt' | 'lldt' | 'ltr', base: bigint, limit: number, selector: number): void {
  stopWith(c, i, { kind: 'descriptor_table', insn, base, limit, selector });
  c.interceptedInsn = i;
}

/** MOV r64, CRn (0F 20): always intercepted; the hypervisor writes the GPR. */
export function movFromCr(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  stopWith(c, i, { kind: 'mov_from_cr', cr: i.reg as ControlRegister, gpr: i.rm });
}

/** MOV CRn, r64 (0F 22): always intercepted; the hypervisor checks and commits the value. */
export function movToCr(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  stopWith(c, i, { kind: 'mov_to_cr', cr: i.reg as ControlRegister, gpr: i.rm, value: toBigInt(c.lo[i.rm]!, c.hi[i.rm]!) });
}

/** CLTS (0F 06). */
export function clts(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  stopWith(c, i, { kind: 'clts' });
}

/** LMSW Ew (0F 01 /6): the operand is read (and may fault) before the intercept. */
export function lmsw(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  const v = readE(c, i, 2);
  stopWith(c, i, { kind: 'lmsw', value: v & 0xffff });
}

/** SMSW Ew / Rv (0F 01 /4): the low bits of CR0 (16 bits to memory; the operand size to a register). */
export function smsw(c: CpuCore, i: Insn): void {
  if (c.umip && c.cpl > 0) raiseGP(c, 0);
  const cr0 = Number(c.cr0 & 0xffffffffn) | 0;
  if (i.rm < 0) writeE(c, i, 2, cr0, 0);
  else writeReg(c, i.rm, i.osize, cr0, Number(c.cr0 >> 32n) | 0);
}

/** RDMSR (0F 32). */
export function rdmsr(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  stopWith(c, i, { kind: 'rdmsr', index: c.lo[1]! >>> 0 });
}

/** WRMSR (0F 30). */
export function wrmsr(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  stopWith(c, i, { kind: 'wrmsr', index: c.lo[1]! >>> 0, value: toBigInt(c.lo[0]!, c.lo[2]!) });
}

/** CPUID (0F A2): always intercepted (VMX exit 10, unconditional). */
export function cpuid(c: CpuCore, i: Insn): void {
  stopWith(c, i, { kind: 'cpuid', leaf: c.lo[0]! >>> 0, subleaf: c.lo[1]! >>> 0 });
}

/** HLT (F4). */
export function hlt(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  stopWith(c, i, { kind: 'hlt' });
}

/** VMCALL (0F 01 C1) and VMMCALL (0F 01 D9): intercepted at any CPL. */
export function hypercall(c: CpuCore, i: Insn): void {
  stopWith(c, i, { kind: 'hypercall', insn: i.entry.modrm === 0xc1 ? 'vmcall' : 'vmmcall' });
}

/**
 * The time-stamp counter. Model decision: a nominal 1 GHz TSC derived from the host's monotonic
 * clock (one tick per host nanosecond) plus an offset that writes to IA32_TSC set.
 */
export function readTsc(c: CpuCore): bigint {
  return BigInt.asUintN(64, process.hrtime.bigint() + c.tscOffset);
}

/** RDTSC (0F 31): EDX:EAX ← TSC. */
export function rdtsc(c: CpuCore, _i: Insn): void {
  if (c.tsd && c.cpl > 0) raiseGP(c, 0);
  const t = readTsc(c);
  writeReg(c, 0, 4, Number(t & 0xffffffffn) | 0, 0);
  writeReg(c, 2, 4, Number(t >> 32n) | 0, 0);
}

/**
 * INVLPG M (0F 01 /7): invalidates the page's translations. The address is not checked for
 * canonicality (a non-canonical INVLPG is a no-op); we flush the whole TLB, which the
 * architecture permits (SDM vol. 3A §4.10.4.1).
 */
export function invlpg(c: CpuCore, _i: Insn): void {
  requireCpl0(c);
  flushTlb(c, false);
}

/** STAC (0F 01 CB, sub 1) / CLAC (0F 01 CA, sub 0): #UD at CPL > 0. */
export function setAc(c: CpuCore, i: Insn): void {
  if (c.cpl > 0) raiseUD(c);
  materializeFlags(c);
  c.flags = i.sub === 1 ? c.flags | X86_EFLAGS_AC : c.flags & ~X86_EFLAGS_AC;
  updateTlbContext(c);
}

/** SWAPGS (0F 01 F8): exchanges GS.base and IA32_KERNEL_GS_BASE. */
export function swapgs(c: CpuCore, _i: Insn): void {
  requireCpl0(c);
  const gs = c.seg[SEG_GS]!.base;
  setSegmentBase(c, SEG_GS, c.kernelGsBase);
  c.kernelGsBase = gs;
}

/** LGDT (0F 01 /2, sub 0) / LIDT (0F 01 /3, sub 1): 2-byte limit then 8-byte base; #GP(0) if the base is non-canonical. */
export function loadDescriptorTable(c: CpuCore, i: Insn): void {
  requireCpl0(c);
  const lin = linearAddress(c, i);
  const limit = read16(c, lin);
  const lo = read64(c, lin + 2);
  const base = toBigInt(lo, c.vhi);
  if (!isCanonicalBase(base)) raiseGP(c, 0);
  if (descriptorTableExit(c)) {
    stopAtTableLoad(c, i, i.sub === 0 ? 'lgdt' : 'lidt', base, limit, 0);
    return;
  }
  if (i.sub === 0) {
    c.gdtBase = base;
    c.gdtLimit = limit;
  } else {
    c.idtBase = base;
    c.idtLimit = limit;
  }
}

/** SGDT (0F 01 /0, sub 0) / SIDT (0F 01 /1, sub 1). */
export function storeDescriptorTable(c: CpuCore, i: Insn): void {
  if (c.umip && c.cpl > 0) raiseGP(c, 0);
  const lin = linearAddress(c, i);
  const base = i.sub === 0 ? c.gdtBase : c.idtBase;
  const limit = i.sub === 0 ? c.gdtLimit : c.idtLimit;
  prepareWrite(c, lin, 10); // both parts writable before either is written
  const lo = Number(base & 0xffffffffn) | 0, hi = Number(base >> 32n) | 0;
  write64(c, lin + 2, lo, hi);
  write16(c, lin, limit);
}

/**
 * The selector operand of LLDT/LTR, read — and the instruction stopped for the hypervisor while
 * descriptor-table exiting is on (null returned then).
 */
function tableSelector(c: CpuCore, i: Insn, insn: 'lldt' | 'ltr'): number | null {
  requireCpl0(c);
  const sel = readE(c, i, 2) & 0xffff;
  if (!descriptorTableExit(c)) return sel;
  stopAtTableLoad(c, i, insn, 0n, 0, sel);
  return null;
}

/**
 * The 16-byte system descriptor a non-null LLDT/LTR selector names, checked as both do: a GDT
 * selector, the system type wanted, present, a canonical base; #GP/#NP(selector) otherwise.
 */
function systemDescriptor(c: CpuCore, sel: number, type: number): Descriptor {
  const err = sel & 0xfffc;
  if ((sel & 4) !== 0) raiseGP(c, err);
  const d = readDescriptor(c, sel, 0, true);
  if (d.s || d.type !== type) raiseGP(c, err);
  if (!d.present) raiseNP(c, err);
  if (!isCanonicalBase(d.base)) raiseGP(c, err);
  return d;
}

/** The register cache a system descriptor loads. */
function systemSegment(d: Descriptor, sel: number, type: number): Segment {
  return {
    base: d.base, limit: d.limit, selector: sel, type, present: true, dpl: d.dpl,
    db: d.db, s: false, l: d.l, g: d.g, avl: d.avl, unusable: false,
  };
}

/**
 * LTR Ew (0F 00 /3): loads TR from an available 64-bit TSS descriptor in the GDT (16 bytes) and
 * marks it busy (SDM vol. 2 LTR).
 */
export function ltr(c: CpuCore, i: Insn): void {
  const sel = tableSelector(c, i, 'ltr');
  if (sel === null) return;
  if ((sel & 0xfffc) === 0) raiseGP(c, 0);
  const d = systemDescriptor(c, sel, DESC_TYPE_TSS_AVAILABLE);
  writeImplicit32(c, d.address + 4, d.high | (2 << 8));
  c.tr = systemSegment(d, sel, DESC_TYPE_TSS_BUSY);
}

/**
 * LLDT Ew (0F 00 /2): loads LDTR from an LDT descriptor (system type 2, 16 bytes in 64-bit mode)
 * in the GDT; a null selector leaves LDTR unusable (SDM vol. 2 LLDT).
 */
export function lldt(c: CpuCore, i: Insn): void {
  const sel = tableSelector(c, i, 'lldt');
  if (sel === null) return;
  if ((sel & 0xfffc) === 0) {
    c.ldt = { ...c.ldt, selector: sel, present: false, unusable: true };
    return;
  }
  c.ldt = systemSegment(systemDescriptor(c, sel, DESC_TYPE_LDT), sel, DESC_TYPE_LDT);
}

/** UD2 (0F 0B), and every encoding outside the supported set. */
export function undefinedOpcode(c: CpuCore, _i: Insn): void {
  raiseUD(c);
}

