/**
 * The exceptions of one event as it is raised (delivery.ts): the first, then each its delivery
 * raised — kept in preallocated arrays of the core, so that the common case (one exception,
 * delivered) allocates nothing — and, when the processor shuts down, the report a triple fault
 * carries: each exception with the IDT gate its delivery read (SDM vol. 3A §6.14.1 for the
 * gate's fields). What a kernel developer reads off a QEMU `-d int` log, as data.
 */
import type { CpuCore } from '../core.js';
import type { ChainedException, IdtGateView } from '../intercept.js';
import { physRead32 } from '../mmu/physical.js';
import { ACC_READ, walk } from '../mmu/walk.js';

const CHAIN_MAX = 8;
const PF_VECTOR = 14;

/** Starts the chain of a new event. */
export function startChain(c: CpuCore): void {
  c.chainLength = 0;
}

/** Notes one exception of the current event (beyond CHAIN_MAX they are dropped). */
export function noteException(c: CpuCore, vector: number, errorCode: number, address: number): void {
  const k = c.chainLength;
  if (k >= CHAIN_MAX) return;
  c.chainVector[k] = vector;
  c.chainErrorCode[k] = errorCode;
  c.chainRip[k] = c.rip;
  c.chainAddress[k] = address;
  c.chainLength = k + 1;
}

function u64(v: number): bigint {
  return BigInt.asUintN(64, BigInt(v));
}

/**
 * The IDT entry of `vector` as IDTR locates it, read through the page tables as a debugger
 * would: no accessed bits set, no fault raised.
 */
export function readGate(c: CpuCore, vector: number): IdtGateView {
  const address = BigInt.asUintN(64, c.idtBase + BigInt(vector * 16));
  if (vector * 16 + 15 > c.idtLimit) return { kind: 'beyond-limit', address, limit: c.idtLimit };
  const lin = Number(BigInt.asIntN(64, address));
  const words: number[] = [];
  for (let k = 0; k < 4; k++) {
    const pa = walk(c, lin + 4 * k, ACC_READ, false, true, false);
    if (pa < 0) return { kind: 'unreadable', address, pageFault: -pa - 1 };
    words.push(physRead32(c, pa) >>> 0);
  }
  const [w0, w1, w2, w3] = words as [number, number, number, number];
  return {
    kind: 'gate',
    address,
    low: (BigInt(w1) << 32n) | BigInt(w0),
    high: (BigInt(w3) << 32n) | BigInt(w2),
    offset: (BigInt(w2) << 32n) | BigInt(((w1 & 0xffff0000) | (w0 & 0xffff)) >>> 0),
    selector: w0 >>> 16,
    type: (w1 >>> 8) & 0xf,
    dpl: (w1 >>> 13) & 3,
    present: (w1 & 0x8000) !== 0,
    ist: w1 & 7,
  };
}

/** The chain as a triple fault reports it. */
export function chainReport(c: CpuCore): ChainedException[] {
  const out: ChainedException[] = [];
  for (let k = 0; k < c.chainLength; k++) {
    const vector = c.chainVector[k]!;
    const errorCode = c.chainErrorCode[k]!;
    const address = c.chainAddress[k]!;
    out.push({
      vector,
      ...(errorCode >= 0 && { errorCode }),
      rip: u64(c.chainRip[k]!),
      ...(vector === PF_VECTOR && { address: u64(address) }),
      gate: readGate(c, vector),
    });
  }
  return out;
}
