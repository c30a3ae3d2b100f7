/**
 * The architectural and micro-architectural state of one modelled x86-64 core, as plain fields
 * that the decoder, the executors, the MMU and the exception logic share. `Cpu` (cpu.ts) builds
 * the hypervisor-facing API (`GuestCpu`) on top of it.
 *
 * Representation (docs/x86-model.md §7, measured there): each GPR is two 32-bit halves in
 * Int32Arrays (`lo`, `hi`), BigInt appears only at the public edge. RIP and every linear
 * address are JS numbers holding the signed, canonical 48-bit value: exact in a double, with a
 * cheap canonical check. RFLAGS arithmetic bits are lazy (flags.ts).
 */
import type { PhysicalMemory } from './memory.js';
import type { Intercept } from './intercept.js';
import type { Segment } from './state.js';
import type { FaultState } from './fault.js';
import type { Block } from './block.js';
import type { SecondStage } from './mmu/second-stage.js';
import type { Insn } from './decode/insn.js';

/**
 * TLBs, direct-mapped by linear page number: a data TLB (reads and writes) and, as in hardware,
 * a separate instruction TLB, so that code and data pages never evict each other.
 */
export const TLB_SIZE = 1024;
export const TLB_MASK = TLB_SIZE - 1;
export const ITLB_SIZE = 256;
export const ITLB_MASK = ITLB_SIZE - 1;
/** A tag no page base address can equal (page bases are whole multiples of 4096). */
export const TLB_EMPTY = 0.5;
export const TLB_EMPTY32 = 1;

/** Segment register numbers as ModRM/prefix encode them. */
export const SEG_ES = 0;
export const SEG_CS = 1;
export const SEG_SS = 2;
export const SEG_DS = 3;
export const SEG_FS = 4;
export const SEG_GS = 5;

export function nullSegment(): Segment {
  return {
    base: 0n, limit: 0, selector: 0, type: 0, present: false, dpl: 0,
    db: false, s: false, l: false, g: false, avl: false, unusable: true,
  };
}

export class CpuCore implements FaultState {
  readonly memory: PhysicalMemory;

  /** GPR bits 31:0 and 63:32, indexed by encoding number (0 = RAX ... 15 = R15). */
  readonly lo = new Int32Array(16);
  readonly hi = new Int32Array(16);
  /** Linear address of the instruction being executed (or about to be). */
  rip = 0;

  /**
   * RFLAGS. Its OF/SF/ZF/AF/PF/CF bits are valid only while `ccOp` is CC_NONE; otherwise they
   * are derived on demand from the last arithmetic operation (flags.ts).
   */
  flags = 2;
  ccOp = 0;
  /** Operand size in bytes (1, 2, 4, 8) of the operation that set the lazy flags. */
  ccSize = 4;
  /** Operands and result; for sizes below 8 shifted left so the sign is bit 31 (flags.ts). */
  ccDst = 0;
  ccSrc = 0;
  ccRes = 0;
  ccDstHi = 0;
  ccSrcHi = 0;
  ccResHi = 0;
  /** Carry-in (ADC/SBB), previous CF (INC/DEC), or explicit CF|AF|OF bits (CC_RES). */
  ccAux = 0;

  /** Scratch: the high half of the last 64-bit value a helper returned. */
  vhi = 0;

  /** Current privilege level. */
  cpl = 0;

  /** ES, CS, SS, DS, FS, GS in encoding order. */
  readonly seg: Segment[] = [nullSegment(), nullSegment(), nullSegment(), nullSegment(), nullSegment(), nullSegment()];
  tr: Segment = nullSegment();
  ldt: Segment = nullSegment();
  /** FS/GS bases as 32-bit halves, for address arithmetic (kept in step with seg[FS/GS].base). */
  fsBaseLo = 0;
  fsBaseHi = 0;
  gsBaseLo = 0;
  gsBaseHi = 0;
  gdtBase = 0n;
  gdtLimit = 0;
  idtBase = 0n;
  idtLimit = 0;

  cr0 = 0n;
  cr2 = 0n;
  cr3 = 0n;
  cr4 = 0n;
  cr8 = 0n;
  efer = 0n;
  apicBase = 0n;

  /** Paging controls derived from CR0/CR3/CR4/EFER (mmu/controls.ts). */
  pml4Base = 0;
  wp = false;
  smep = false;
  smap = false;
  nxe = false;
  pge = false;
  umip = false;
  tsd = false;
  /** Whether RFLAGS.AC was set when the TLB's access context was last established. */
  tlbAc = false;
  /** The CPL the TLB's access context was established for. */
  tlbCpl = 0;

  star = 0n;
  lstar = 0n;
  cstar = 0n;
  sfmask = 0n;
  kernelGsBase = 0n;
  sysenterCs = 0n;
  sysenterEsp = 0n;
  sysenterEip = 0n;
  tscAux = 0n;
  /** TSC = host nanoseconds + tscOffset (a nominal 1 GHz TSC; see system.ts). */
  tscOffset = 0n;

  faultVector = 0;
  faultErrorCode = -1;
  faultAddress = 0;
  /** The last second-stage violation (mmu/violation.ts): GPA, linear address, exit qualification. */
  violationGpa = 0;
  violationGva = 0;
  violationQualification = 0;
  /** The second stage over this CPU's memory (shared by every CPU of the VM). */
  readonly secondStage: SecondStage;

  /**
   * The data TLB: per slot, the linear page base it maps for reads and for writes in the current
   * access context (TLB_EMPTY when not), the frame and its view. A write tag is only set when the
   * leaf is dirty and the frame holds no decoded code.
   */
  readonly tlbTagR = new Float64Array(TLB_SIZE).fill(TLB_EMPTY);
  readonly tlbTagW = new Float64Array(TLB_SIZE).fill(TLB_EMPTY);
  /**
   * The same tags as 32-bit halves, four per slot (read: bits 31:0, 63:32; write: the same),
   * for translated code, which keeps addresses as halves (jit/emit-memory.ts). An empty tag has
   * low half TLB_EMPTY32, which no page base has.
   */
  readonly tlbTags32 = new Int32Array(4 * TLB_SIZE).fill(TLB_EMPTY32);
  readonly tlbFrame = new Int32Array(TLB_SIZE);
  readonly tlbGlobal = new Uint8Array(TLB_SIZE);
  readonly tlbView: DataView[];
  /** The instruction TLB: linear page base for fetches, and its frame. */
  readonly itlbTag = new Float64Array(ITLB_SIZE).fill(TLB_EMPTY);
  readonly itlbFrame = new Int32Array(ITLB_SIZE);
  readonly itlbGlobal = new Uint8Array(ITLB_SIZE);
  /** Bumped on every TLB flush, so that cached block successors can be revalidated cheaply. */
  tlbGeneration = 0;
  /** memory.codeEpoch when write tags were last known to miss every code frame. */
  codeEpochSeen = 0;

  /** Results of the last successful page walk (mmu/walk.ts). */
  walkUser = false;
  walkWritable = false;
  walkNx = false;
  walkDirty = false;
  walkGlobal = false;

  /** Instructions retired since creation, and the count at which the current run() stops. */
  retired = 0;
  retireLimit = 0;
  /** Set by an instruction that stops the core (an intercept); the instruction is not retired. */
  stop: Intercept | null = null;
  /** Length of the instruction that caused the last instruction intercept (skipInstruction). */
  interceptedLength = 0;
  /** False when the state must be re-checked before running (long mode, canonical RIP, ...). */
  stateChecked = false;

  /** VMX exception bitmap. */
  exceptionBitmap = 0;

  /**
   * Debug registers as MOV DR reads and writes them (debug.ts): DR0-DR3, DR6 and DR7 (32-bit
   * values: bits 63:32 of DR6/DR7 are reserved). The hypervisor may put its own breakpoints in
   * force instead (hostBreakpoints: KVM_GUESTDBG_USE_HW_BP loads vcpu->arch.eff_db and
   * guest_debug_dr7 into the hardware while the guest's values are kept aside).
   */
  readonly dr: bigint[] = [0n, 0n, 0n, 0n];
  dr6 = 0xffff0ff0;
  dr7 = 0x400;
  hostBreakpoints: { readonly dr: readonly bigint[]; readonly dr7: number } | null = null;
  /**
   * Linear addresses of the instruction breakpoints armed in the DR7 in force (enabled, R/W = 00),
   * NaN where none; `breakpointsArmed` says whether any is (debug.ts keeps both in step).
   */
  readonly breakpointAt = new Float64Array(4).fill(NaN);
  breakpointsArmed = false;
  /** DR6 condition bits (B0-B3, BD, BS) of the #DB being raised: its exit qualification. */
  debugTrapBits = 0;
  /** IRET loaded RF from its frame (the instruction is not followed by RF's clearing). */
  rfLoaded = false;
  /** Events delivered through the IDT so far (a single-step trap never follows one). */
  idtDeliveries = 0;

  /**
   * The exceptions of the event being raised (exceptions/delivery.ts): the first, then each
   * that its delivery raised, up to EVENT_CHAIN_MAX — what a triple fault reports.
   */
  readonly chainVector = new Int32Array(8);
  readonly chainErrorCode = new Int32Array(8);
  readonly chainRip = new Float64Array(8);
  readonly chainAddress = new Float64Array(8);
  chainLength = 0;

  /**
   * Decoded blocks by guest-physical frame and offset (block.ts), in two levels — 2 MiB regions,
   * then frames — so that the arrays stay small and dense whatever the memory size.
   */
  readonly codeCache: ((((Block | undefined)[] | undefined)[]) | undefined)[];
  /** Set when a store invalidated decoded code: the current block must not continue. */
  codeInvalidated = false;
  /**
   * Whether hot blocks are translated to JavaScript (jit/), and how many times a block is
   * interpreted first (0: translated before its first run).
   */
  jitEnabled = true;
  jitThreshold = 16;
  /** Entries into translated code, so that tests can tell the translator really ran. */
  translatedRuns = 0;
  /** VMX descriptor-table exiting, for loads (guest-cpu.ts). */
  descriptorTableExiting = false;
  /** Set while the hypervisor executes an intercepted instruction: it must not stop again. */
  executingIntercepted = false;
  /** The instruction the last `descriptor_table` intercept stopped at. */
  interceptedInsn: Insn | null = null;

  constructor(memory: PhysicalMemory) {
    this.memory = memory;
    this.secondStage = memory.secondStage;
    this.codeCache = new Array(Math.ceil(memory.frameCount / 512)).fill(undefined);
    const empty = new DataView(new ArrayBuffer(8));
    this.tlbView = new Array<DataView>(TLB_SIZE).fill(empty);
  }
}
