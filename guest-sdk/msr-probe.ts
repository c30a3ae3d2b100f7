/**
 * Surveying MSRs from inside the guest: what RDMSR and WRMSR of each index do under the host's
 * MSR table, MSR filter and user-space exit policy, summarised as ranges of one class.
 */
import type { BatchItem } from '../protocol/index.js';
import { type Cpl, cplOption, oneOfArgument, optionsArgument } from './arguments.js';
import type { GuestChannel, ItemOutcome } from './guest-channel.js';
import { type ClassRange, type MsrRangeInput, normaliseMsrRanges, summariseClasses } from './msr-ranges.js';
import { RDMSR, type SafeResult, WRMSR, settle } from './operations.js';

/** The most MSRs one probeMsrs call covers. */
export const MAX_PROBE_MSRS = 65536;

/**
 * How MSRs are write-probed:
 * - `read-back` (default): WRMSR of the value just read, to each readable MSR. Unreadable MSRs
 *   are not written: there is no known-harmless value for them, and writing an arbitrary one
 *   can change the machine (enable a feature, trigger a command MSR such as PRED_CMD or
 *   FLUSH_CMD, move the TSC).
 * - `zero`: as `read-back`, and WRMSR of 0 to each unreadable MSR, for write-only MSRs. Only
 *   for hosts where that is known to be harmless.
 * - `none`: RDMSR only.
 * Even a read-back is not free of effects on a live counter: writing back the TSC rewinds it
 * by the time between the read and the write.
 */
export type WriteProbe = 'read-back' | 'zero' | 'none';

export interface ProbeMsrsOptions {
  /** Probe at this privilege level (default 0; at 3 every RDMSR and WRMSR raises #GP). */
  cpl?: Cpl;
  writeProbe?: WriteProbe;
}

/**
 * - `writable`: RDMSR succeeded and so did the write probe;
 * - `readable`: RDMSR succeeded; the write probe faulted, or was not made (`writeProbe: 'none'`);
 * - `write-only`: RDMSR faulted, WRMSR of 0 succeeded (only with `writeProbe: 'zero'`);
 * - `faulting`: RDMSR faulted; the write probe faulted too, or was not made.
 */
export type MsrClass = 'writable' | 'readable' | 'write-only' | 'faulting';

export interface MsrProbe {
  index: number;
  class: MsrClass;
  /** The RDMSR: the value, or the fault (with the exits it caused). */
  read: SafeResult<bigint>;
  /** The WRMSR probe, if one was made. */
  write: SafeResult<undefined> | undefined;
}

export type MsrClassRange = ClassRange<MsrClass>;

export interface MsrProbeReport {
  /** Every MSR probed, by increasing index (each index once). */
  msrs: MsrProbe[];
  /** Runs of consecutive indices with the same class. */
  ranges: MsrClassRange[];
  counts: Record<MsrClass, number>;
}

const OPTIONS = ['cpl', 'writeProbe'] as const;
const WRITE_PROBES = ['read-back', 'zero', 'none'] as const;

/** The SafeResult of a batched op; a host refusal rejects the whole probe. */
function safeResultOf<V>(kind: typeof RDMSR, item: BatchItem, outcome: ItemOutcome): SafeResult<V> {
  if (!outcome.ok) throw outcome.error;
  return settle(kind, true, item, outcome.result) as SafeResult<V>;
}

/**
 * Probes every MSR in `ranges`: first an RDMSR of each (in batches), then the write probes of
 * those that qualify — so every read sees the MSRs as they were before any probe wrote.
 */
export async function probeMsrs(channel: GuestChannel, ranges: readonly MsrRangeInput[], options?: ProbeMsrsOptions): Promise<MsrProbeReport> {
  const spans = normaliseMsrRanges('probeMsrs', ranges, MAX_PROBE_MSRS);
  const checked = optionsArgument<ProbeMsrsOptions>('probeMsrs', options, OPTIONS);
  const cpl = cplOption('probeMsrs', checked?.cpl);
  const writeProbe = checked?.writeProbe === undefined ? 'read-back' : oneOfArgument('probeMsrs', 'options.writeProbe', checked.writeProbe, WRITE_PROBES);

  const reads: BatchItem[] = [];
  for (const s of spans) for (let index = s.first; index <= s.last; index++) reads.push({ op: 'rdmsr', index, cpl });
  const readOutcomes = await channel.runBatch(reads);
  const msrs: MsrProbe[] = reads.map((item, i) => {
    const read = safeResultOf<bigint>(RDMSR, item, readOutcomes[i]!);
    return { index: (item as { index: number }).index, class: read.ok ? 'readable' : 'faulting', read, write: undefined };
  });

  const writes: BatchItem[] = [];
  const written: MsrProbe[] = [];
  for (const msr of msrs) {
    const value = msr.read.ok ? (writeProbe === 'none' ? undefined : msr.read.value) : writeProbe === 'zero' ? 0n : undefined;
    if (value === undefined) continue;
    writes.push({ op: 'wrmsr', index: msr.index, value, cpl });
    written.push(msr);
  }
  const writeOutcomes = await channel.runBatch(writes);
  for (let i = 0; i < written.length; i++) {
    const msr = written[i]!;
    msr.write = safeResultOf<undefined>(WRMSR, writes[i]!, writeOutcomes[i]!);
    if (msr.write.ok) msr.class = msr.read.ok ? 'writable' : 'write-only';
  }

  const counts: Record<MsrClass, number> = { writable: 0, readable: 0, 'write-only': 0, faulting: 0 };
  for (const msr of msrs) counts[msr.class]++;
  return { msrs, ranges: summariseClasses(msrs), counts };
}
