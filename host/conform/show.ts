/**
 * Values as reports show them: 64-bit values and MSR indices as "0x…", exit reasons and
 * exit-reason bits by their kernel names (Heki numbers per profile), faults as "#GP(0)".
 */
import type { HekiProfileName } from '../../protocol/abi.js';
import { describeFault } from '../../protocol/notation.js';
import { exitReasonNames, HEKI_EXIT_REASONS, MEMORY_EXIT_FLAGS, MSR_EXIT_REASONS, nameOf } from './abi-names.js';
import { hex } from '../../protocol/notation.js';
import type { ExpectedExit } from './model.js';
import type { Shown } from './results.js';
import type { TargetExit } from './target.js';

/** "#GP(0)", "#UD", "vector 0x81" (protocol/notation.ts); "no fault" for undefined. */
export function showFault(fault: { readonly vector: number; readonly errorCode: number | undefined } | undefined): string {
  return fault === undefined ? 'no fault' : describeFault(fault);
}

export function showReason(profile: HekiProfileName, reason: number): Shown {
  return nameOf(exitReasonNames(profile), reason) ?? reason;
}

function showBit(table: Readonly<Record<string, number>>, bit: number): Shown {
  return nameOf(table, bit) ?? bit;
}

export const EXIT_PARTS = ['msr', 'heki', 'io', 'cr', 'intercept', 'memory'] as const;
export type ExitPart = (typeof EXIT_PARTS)[number];

/** kvm_run.memory_fault.flags by name ("WRITE|GVA_VALID"), with any unnamed bits in hex. */
function showMemoryFlags(flags: bigint): Shown {
  const names = Object.entries(MEMORY_EXIT_FLAGS).filter(([, bit]) => (flags & bit) !== 0n);
  const rest = names.reduce((r, [, bit]) => r & ~bit, flags);
  const parts = [...names.map(([name]) => name), ...(rest !== 0n ? [hex(rest)] : [])];
  return parts.length === 0 ? '0' : parts.join('|');
}

/** One field of an exit's msr, heki, io, cr, intercept or memory details. */
export function showExitField(part: ExitPart, key: string, value: bigint | number | string): Shown {
  if (typeof value === 'string') return value;
  if (key === 'reason') return showBit(part === 'msr' ? MSR_EXIT_REASONS : HEKI_EXIT_REASONS, Number(value));
  if (part === 'memory' && key === 'flags') return showMemoryFlags(BigInt(value));
  if ((key === 'size' && part !== 'memory') || key === 'cr') return Number(value);
  return hex(value);
}

/** An exit, expected or actual, as JSON with names; fields the expectation leaves out are absent. */
export function showExit(profile: HekiProfileName, exit: ExpectedExit | TargetExit): Shown {
  const out: Record<string, Shown> = { reason: showReason(profile, exit.reason) };
  for (const part of EXIT_PARTS) {
    const details = exit[part] as Readonly<Record<string, bigint | number | string | undefined>> | undefined;
    if (details === undefined) continue;
    const shown: Record<string, Shown> = {};
    for (const [key, value] of Object.entries(details)) if (value !== undefined) shown[key] = showExitField(part, key, value);
    out[part] = shown;
  }
  return out;
}
