/**
 * Checks of the caller's arguments, before anything is sent. They are plain `typeof` tests (the
 * protocol validates every request again on its way out), here so that a bad argument fails
 * its own operation with a message naming the method and the argument — in a batch, only that
 * operation — rather than a whole frame.
 */
import { InvalidArgumentError } from './errors.js';
import { hex } from '../protocol/notation.js';

/**
 * A 64-bit input: a bigint 0..2^64-1, or a number that is a safe integer (0..2^53-1), which
 * holds the same value exactly. Results are always bigint.
 */
export type U64 = bigint | number;

/** Privilege level a guest action runs at: kernel (0, the default) or user (3). */
export type Cpl = 0 | 3;

/** The control registers MOV to/from CR can name. */
export type CrNumber = 0 | 2 | 3 | 4 | 8;

/** Every guest operation's trailing options. */
export interface OpOptions {
  /** Run the action at this privilege level (default 0). */
  cpl?: Cpl;
}

const TWO_POW_64 = 1n << 64n;

function show(v: unknown): string {
  if (typeof v === 'bigint') return `${v}n`;
  // Every integer-valued double is exact; String() would round 2^60 to 1152921504606847000.
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v).toString();
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || typeof v !== 'object') return String(v);
  return Array.isArray(v) ? 'an array' : v instanceof Uint8Array ? `${v.length} bytes` : 'an object';
}

export function uintArgument(op: string, name: string, v: unknown, max: number): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max) return v;
  if (typeof v === 'bigint' && v >= 0n && v <= BigInt(max)) return Number(v);
  throw new InvalidArgumentError(op, name, `must be an integer 0..${hex(max)}, got ${show(v)}`);
}

export const u32Argument = (op: string, name: string, v: unknown): number => uintArgument(op, name, v, 0xffff_ffff);

export function u64Argument(op: string, name: string, v: unknown): U64 {
  if (typeof v === 'bigint') {
    if (v >= 0n && v < TWO_POW_64) return v;
  } else if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) {
    return v;
  }
  const hint = typeof v === 'number' && Number.isInteger(v) && v > Number.MAX_SAFE_INTEGER
    ? ' (numbers above 2^53-1 lose bits: pass a bigint)'
    : '';
  throw new InvalidArgumentError(op, name, `must be a bigint 0..2^64-1 or a safe non-negative integer, got ${show(v)}${hint}`);
}

const CRS: ReadonlySet<unknown> = new Set([0, 2, 3, 4, 8]);

export function crArgument(op: string, v: unknown): CrNumber {
  if (CRS.has(v)) return v as CrNumber;
  throw new InvalidArgumentError(op, 'cr', `must be 0, 2, 3, 4 or 8, got ${show(v)}`);
}

/**
 * Checks an options object against the keys the operation knows (a misspelt `cpl` must not
 * silently run the action at CPL 0) and returns it.
 */
export function optionsArgument<T extends object>(op: string, v: unknown, keys: readonly string[]): T | undefined {
  if (v === undefined) return undefined;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    throw new InvalidArgumentError(op, 'options', `must be an object, got ${show(v)}`);
  }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) throw new InvalidArgumentError(op, `options.${k}`, `is not an option of ${op} (known: ${keys.join(', ')})`);
  }
  return v as T;
}

export function cplOption(op: string, cpl: unknown): Cpl | undefined {
  if (cpl === undefined || cpl === 0 || cpl === 3) return cpl;
  throw new InvalidArgumentError(op, 'options.cpl', `must be 0 or 3, got ${show(cpl)}`);
}

/** The cpl of an operation whose only option is cpl. */
export function cplOf(op: string, options: unknown): Cpl | undefined {
  return options === undefined ? undefined : cplOption(op, optionsArgument<OpOptions>(op, options, CPL_ONLY)!.cpl);
}
const CPL_ONLY = ['cpl'] as const;

export function bytesArgument(op: string, name: string, v: unknown, min: number, max: number): Uint8Array {
  if (v instanceof Uint8Array && v.length >= min && v.length <= max) return v;
  throw new InvalidArgumentError(op, name, `must be a Uint8Array of ${min}..${max} bytes, got ${show(v)}`);
}

export function oneOfArgument<T extends string>(op: string, name: string, v: unknown, allowed: readonly T[]): T {
  if (allowed.includes(v as T)) return v as T;
  throw new InvalidArgumentError(op, name, `must be one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}, got ${show(v)}`);
}
