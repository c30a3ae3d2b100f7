/**
 * Decoded basic blocks, cached per guest-physical frame and offset (Halfix's traces keyed by
 * physical address, docs/x86-model.md §1.3). A block runs from its first instruction to the
 * first one that branches or may stop the core, to the end of its page, or to MAX_BLOCK
 * instructions. Decoded instructions hold no virtual address (RIP-relative operands and branch
 * targets are computed from RIP at run time), so one block serves every alias of its code.
 *
 * Writes to a frame whose code is cached (by this CPU, another one, or the host) invalidate its
 * blocks through memory.onCodeWrite; store fast paths never reach such frames (mmu/tlb.ts).
 */
import type { CpuCore } from './core.js';
import { raiseGP } from './fault.js';
import { decode, DECODE_INVALID, DECODE_NEED_MORE, DECODE_TOO_LONG, MAX_INSN_LENGTH } from './decode/decoder.js';
import { Insn } from './decode/insn.js';
import type { OpcodeEntry } from './decode/table-types.js';
import { undefinedOpcode } from './execute/system.js';
import { dropWriteTagsForFrame } from './mmu/tlb.js';
import { PAGE_SIZE } from './memory.js';

/** Longest block, in instructions. */
export const MAX_BLOCK = 32;

export class Block {
  readonly insns: Insn[];
  /** Bytes from the block's start to the end of its last instruction. */
  readonly byteLength: number;
  /** The last instruction sets RIP itself (a branch). */
  readonly endsWithBranch: boolean;
  valid = true;
  /** Guest-physical frame and offset of its first instruction. */
  readonly frame: number;
  readonly offset: number;
  /** Executions so far (for the translator's hotness threshold). */
  runs = 0;
  /** The translated form of the trace starting here, once hot (jit/), and how many instructions it counts up front. */
  compiled: ((c: CpuCore, rip: number, retired: number) => void) | null = null;
  compiledLength = 0;
  /** Number of instructions. */
  readonly length: number;
  /**
   * Successor cache, two entries (a RET returns to several places): the block that ran after
   * this one at RIP `nextRipN`, valid while the TLB generation is `nextGeneration` (a flush or a
   * change of access context may change what a RIP maps to) and the block is valid.
   */
  next0: Block | null = null;
  nextRip0 = 0.5;
  next1: Block | null = null;
  nextRip1 = 0.5;
  nextGeneration = -1;

  constructor(insns: Insn[], frame: number, offset: number) {
    this.insns = insns;
    this.frame = frame;
    this.offset = offset;
    this.length = insns.length;
    const last = insns[insns.length - 1]!;
    this.byteLength = last.offset + last.len;
    this.endsWithBranch = last.entry.flow === 'branch';
  }
}

function syntheticEntry(mnemonic: string, exec: (c: CpuCore, i: Insn) => void): OpcodeEntry {
  return {
    name: mnemonic, mnemonic, map: 0, opcode: -1, ext: -1, mod: 'any', modrm: -1, prefix: 0, operands: [], size: 'v',
    lockable: false, family: 'system', flow: 'stop', flagsRead: 0, flagsWritten: 0, flagsUndefined: 0,
    flagsConditional: false, jit: 'handler', sub: 0,
    exec, hasModrm: false, rexB: -1, unsupported: false, sizeMnemonics: undefined, mnemonic32: undefined,
  };
}

/** What an undecodable encoding executes as: #UD. */
export const UD_ENTRY = syntheticEntry('(bad)', undefinedOpcode);
/** An instruction longer than 15 bytes: #GP(0) (SDM vol. 2 §2.3.11). */
export const TOO_LONG_ENTRY = syntheticEntry('(too long)', (c) => raiseGP(c, 0));

function faultInsn(entry: OpcodeEntry): Insn {
  const i = new Insn(entry.exec, entry);
  i.len = 1;
  return i;
}

/**
 * Decodes the block starting at `offset` in `frame`. Returns null when its first instruction
 * crosses into the next page (run once, uncached, by the interpreter).
 */
export function buildBlock(c: CpuCore, frame: number, offset: number): Block | null {
  const bytes = c.memory.frameForRead(frame);
  const insns: Insn[] = [];
  let at = offset;
  while (insns.length < MAX_BLOCK && at < PAGE_SIZE) {
    const r = decode(bytes, at, PAGE_SIZE);
    let i: Insn;
    if (r === DECODE_NEED_MORE) break;
    if (r === DECODE_INVALID) i = faultInsn(UD_ENTRY);
    else if (r === DECODE_TOO_LONG) i = faultInsn(TOO_LONG_ENTRY);
    else i = r;
    i.offset = at - offset;
    insns.push(i);
    at += i.len;
    if (i.entry.flow !== 'next') break;
  }
  if (insns.length === 0) return null;
  const block = new Block(insns, frame, offset);
  let region = c.codeCache[frame >>> 9];
  if (region === undefined) {
    region = new Array<(Block | undefined)[] | undefined>(512).fill(undefined);
    c.codeCache[frame >>> 9] = region;
  }
  let page = region[frame & 511];
  if (page === undefined) {
    page = new Array<Block | undefined>(PAGE_SIZE);
    region[frame & 511] = page;
    c.memory.markCode(frame);
    dropWriteTagsForFrame(c, frame);
  }
  page[offset] = block;
  return block;
}

/** The cached block at a frame and offset, if any. */
export function cachedBlock(c: CpuCore, frame: number, offset: number): Block | undefined {
  const region = c.codeCache[frame >>> 9];
  if (region === undefined) return undefined;
  const page = region[frame & 511];
  return page === undefined ? undefined : page[offset];
}

/** Drops a frame's blocks (its code was written). */
export function invalidateFrame(c: CpuCore, frame: number): void {
  const region = c.codeCache[frame >>> 9];
  const page = region?.[frame & 511];
  if (region === undefined || page === undefined) return;
  for (const b of page) if (b !== undefined) b.valid = false;
  region[frame & 511] = undefined;
  c.codeInvalidated = true;
}

/**
 * Decodes an instruction from up to 15 bytes fetched across a page boundary: `first` holds the
 * bytes to the end of the first page; `fetchRest` supplies the following bytes (translating the
 * next page, which may fault) only if the instruction needs them.
 */
export function decodeStraddling(first: Uint8Array, fetchRest: () => Uint8Array): Insn {
  let r = decode(first, 0, first.length);
  if (r === DECODE_NEED_MORE) {
    const rest = fetchRest();
    const all = new Uint8Array(MAX_INSN_LENGTH);
    all.set(first.subarray(0, MAX_INSN_LENGTH));
    all.set(rest.subarray(0, MAX_INSN_LENGTH - first.length), first.length);
    r = decode(all, 0, MAX_INSN_LENGTH);
  }
  if (r === DECODE_INVALID || r === DECODE_NEED_MORE) return faultInsn(UD_ENTRY);
  if (r === DECODE_TOO_LONG) return faultInsn(TOO_LONG_ENTRY);
  return r;
}

