/**
 * CR0 and CR4 bits by the names a policy may use for them — the kernel's X86_CR0_* and
 * X86_CR4_* names in lower case, without the prefix (arch/x86/include/uapi/asm/processor-flags.h).
 * The schema's enums list the same names; test/vmm/policy-schema.test.ts keeps them in step.
 */
import {
  X86_CR0_AM, X86_CR0_CD, X86_CR0_EM, X86_CR0_ET, X86_CR0_MP, X86_CR0_NE, X86_CR0_NW, X86_CR0_PE,
  X86_CR0_PG, X86_CR0_TS, X86_CR0_WP, X86_CR4_CET, X86_CR4_DE, X86_CR4_FRED, X86_CR4_FSGSBASE,
  X86_CR4_KL, X86_CR4_LA57, X86_CR4_LAM_SUP, X86_CR4_MCE, X86_CR4_OSFXSR, X86_CR4_OSXMMEXCPT,
  X86_CR4_OSXSAVE, X86_CR4_PAE, X86_CR4_PCE, X86_CR4_PCIDE, X86_CR4_PGE, X86_CR4_PKE, X86_CR4_PKS,
  X86_CR4_PSE, X86_CR4_PVI, X86_CR4_SMAP, X86_CR4_SMEP, X86_CR4_SMXE, X86_CR4_TSD, X86_CR4_UMIP,
  X86_CR4_VME, X86_CR4_VMXE,
} from '../../../protocol/abi.js';
import { toBigInt, type IntegerText } from './numbers.js';

export const CR0_BIT_NAMES: Readonly<Record<string, bigint>> = {
  pe: X86_CR0_PE, mp: X86_CR0_MP, em: X86_CR0_EM, ts: X86_CR0_TS, et: X86_CR0_ET, ne: X86_CR0_NE,
  wp: X86_CR0_WP, am: X86_CR0_AM, nw: X86_CR0_NW, cd: X86_CR0_CD, pg: X86_CR0_PG,
};

export const CR4_BIT_NAMES: Readonly<Record<string, bigint>> = {
  vme: X86_CR4_VME, pvi: X86_CR4_PVI, tsd: X86_CR4_TSD, de: X86_CR4_DE, pse: X86_CR4_PSE,
  pae: X86_CR4_PAE, mce: X86_CR4_MCE, pge: X86_CR4_PGE, pce: X86_CR4_PCE, osfxsr: X86_CR4_OSFXSR,
  osxmmexcpt: X86_CR4_OSXMMEXCPT, umip: X86_CR4_UMIP, la57: X86_CR4_LA57, vmxe: X86_CR4_VMXE,
  smxe: X86_CR4_SMXE, fsgsbase: X86_CR4_FSGSBASE, pcide: X86_CR4_PCIDE, osxsave: X86_CR4_OSXSAVE,
  kl: X86_CR4_KL, smep: X86_CR4_SMEP, smap: X86_CR4_SMAP, pke: X86_CR4_PKE, cet: X86_CR4_CET,
  pks: X86_CR4_PKS, lam_sup: X86_CR4_LAM_SUP, fred: X86_CR4_FRED,
};

/** A register written as a value or as a list of bit names (the schema checked the names). */
export type RegisterText = IntegerText | readonly string[];

export function registerValue(text: RegisterText, names: Readonly<Record<string, bigint>>): bigint {
  if (typeof text === 'number' || typeof text === 'string') return toBigInt(text);
  let value = 0n;
  for (const name of text) value |= names[name]!;
  return value;
}
