/**
 * The registers gdb sees, in the order of the target description this stub sends
 * (qXfer:features:read): gdb's amd64 core set — the 16 GPRs, RIP, EFLAGS, the six selectors and
 * the x87 registers its amd64 support insists on — then SSE (gdb expects it beside the core), the
 * FS and GS bases (gdb's "segments" feature: `$fs_base`), and pinbox's own feature with
 * KERNEL_GS_BASE and the control registers (`$cr0`…`$efer`). Feature and register names are
 * those gdb's i386 target knows (gdb/features/i386 in the gdb sources); the x87 and SSE registers
 * read as zero and cannot be written — pinbox's guests run general-register code only.
 */
import { MSR_KERNEL_GS_BASE } from '../../../protocol/abi.js';
import type { Regs, Sregs } from '../../kvm/api/regs.js';

export type RegisterSource =
  | { readonly kind: 'regs'; readonly field: keyof Regs }
  | { readonly kind: 'selector'; readonly segment: 'cs' | 'ss' | 'ds' | 'es' | 'fs' | 'gs' }
  | { readonly kind: 'base'; readonly segment: 'fs' | 'gs' }
  | { readonly kind: 'msr'; readonly index: number }
  | { readonly kind: 'sregs'; readonly field: 'cr0' | 'cr2' | 'cr3' | 'cr4' | 'cr8' | 'efer' }
  | { readonly kind: 'zero' };

export interface GdbRegister {
  readonly name: string;
  readonly bits: number;
  readonly type: string;
  readonly feature: string;
  readonly source: RegisterSource;
}

const GPRS = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15'] as const;
const CORE = 'org.gnu.gdb.i386.core';
const SSE = 'org.gnu.gdb.i386.sse';
const SEGMENTS = 'org.gnu.gdb.i386.segments';
/** pinbox's feature: what a kernel developer reads off `info registers` in QEMU's monitor. */
const SYS = 'org.pinbox.x86.sys';

function reg(name: string, bits: number, type: string, feature: string, source: RegisterSource): GdbRegister {
  return { name, bits, type, feature, source };
}

export const GDB_REGISTERS: readonly GdbRegister[] = [
  ...GPRS.map((n) => reg(n, 64, n === 'rbp' || n === 'rsp' ? 'data_ptr' : 'int64', CORE, { kind: 'regs', field: n })),
  reg('rip', 64, 'code_ptr', CORE, { kind: 'regs', field: 'rip' }),
  reg('eflags', 32, 'int32', CORE, { kind: 'regs', field: 'rflags' }),
  ...(['cs', 'ss', 'ds', 'es', 'fs', 'gs'] as const).map((s) => reg(s, 32, 'int32', CORE, { kind: 'selector', segment: s })),
  ...Array.from({ length: 8 }, (_, i) => reg(`st${i}`, 80, 'i387_ext', CORE, { kind: 'zero' })),
  ...['fctrl', 'fstat', 'ftag', 'fiseg', 'fioff', 'foseg', 'fooff', 'fop'].map((n) => reg(n, 32, 'int', CORE, { kind: 'zero' })),
  ...Array.from({ length: 16 }, (_, i) => reg(`xmm${i}`, 128, 'uint128', SSE, { kind: 'zero' })),
  reg('mxcsr', 32, 'int', SSE, { kind: 'zero' }),
  reg('fs_base', 64, 'int', SEGMENTS, { kind: 'base', segment: 'fs' }),
  reg('gs_base', 64, 'int', SEGMENTS, { kind: 'base', segment: 'gs' }),
  reg('k_gs_base', 64, 'int', SYS, { kind: 'msr', index: MSR_KERNEL_GS_BASE }),
  ...(['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer'] as const).map((n) => reg(n, 64, 'int', SYS, { kind: 'sregs', field: n })),
];

/** The target description (gdb's XML format, "Target Descriptions" in its manual). */
export function targetXml(): string {
  const features = [...new Set(GDB_REGISTERS.map((r) => r.feature))];
  const body = features.map((f) => {
    const regs = GDB_REGISTERS.map((r, n) => ({ r, n })).filter(({ r }) => r.feature === f)
      .map(({ r, n }) => `    <reg name="${r.name}" bitsize="${r.bits}" type="${r.type}" regnum="${n}"/>\n`).join('');
    return `  <feature name="${f}">\n${regs}  </feature>\n`;
  }).join('');
  return `<?xml version="1.0"?>\n<!DOCTYPE target SYSTEM "gdb-target.dtd">\n<target version="1.0">\n  <architecture>i386:x86-64</architecture>\n${body}</target>\n`;
}

/** What the registers are read from: the vCPU now, or the state a request ended in. */
export interface RegisterFile {
  getRegs(): Regs;
  getSregs(): Sregs;
  getMsr(index: number): bigint | undefined;
}

/** A register's value, or undefined when the vCPU cannot give it. */
export function readRegister(file: RegisterFile, r: GdbRegister): bigint | undefined {
  const s = r.source;
  switch (s.kind) {
    case 'regs':
      return file.getRegs()[s.field];
    case 'selector':
      return BigInt(file.getSregs()[s.segment].selector);
    case 'base':
      return file.getSregs()[s.segment].base;
    case 'msr':
      return file.getMsr(s.index);
    case 'sregs':
      return file.getSregs()[s.field];
    case 'zero':
      return 0n;
  }
}

/** A value as gdb's register packets carry it: little-endian hex, the register's width. */
export function registerHex(value: bigint | undefined, bits: number): string {
  const bytes = Math.ceil(bits / 8);
  if (value === undefined) return 'xx'.repeat(bytes);
  let out = '';
  let v = BigInt.asUintN(bytes * 8, value);
  for (let i = 0; i < bytes; i++) {
    out += Number(v & 0xffn).toString(16).padStart(2, '0');
    v >>= 8n;
  }
  return out;
}

/** Little-endian hex to a value (the caller has checked the length and the digits). */
export function parseRegisterHex(hex: string): bigint {
  let v = 0n;
  for (let i = hex.length - 2; i >= 0; i -= 2) v = (v << 8n) | BigInt(parseInt(hex.slice(i, i + 2), 16));
  return v;
}
