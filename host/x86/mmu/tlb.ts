/**
 * The TLB: a direct-mapped cache of 4 KiB translations, keyed by linear page, holding for each
 * slot whether reads, writes and fetches may use it *in the current access context* (CPL class
 * and, with SMAP, RFLAGS.AC). Large pages are cached 4 KiB at a time.
 *
 * Flush rules (SDM vol. 3A §4.10.4): a CR3 write drops every non-global entry (global ones
 * stay when CR4.PGE=1); INVLPG drops the page's translation (we drop all, which the
 * architecture allows: large pages may be cached under any of their 4 KiB pieces); changes of
 * CR0.WP/PG, CR4.PGE/PAE/PSE/SMEP/SMAP and EFER.NXE flush everything. A change of access
 * context drops the permission tags only.
 *
 * A write tag is set only when the leaf is already dirty (a write through a clean entry must
 * walk again to set D) and the frame holds no decoded code (so stores to code always take the
 * slow path, which invalidates decoded blocks).
 *
 * Tags carry the second stage's rights too (second-stage.ts): no read tag on a frame it makes
 * unreadable, no write tag on one it makes read-only, and an instruction-TLB entry only after a
 * fetch it allowed. So the hit paths, interpreted or translated, never need to look at it, and
 * a change of its permissions flushes everything (Cpu registers flushTlb with it), as INVEPT.
 */
import { X86_EFLAGS_AC } from '../../../protocol/abi.js';
import { ITLB_MASK, ITLB_SIZE, TLB_EMPTY, TLB_EMPTY32, TLB_MASK, TLB_SIZE, type CpuCore } from '../core.js';
import { S2_ALL, S2_READ, S2_WRITE } from './second-stage.js';
import { ACC_FETCH, ACC_WRITE, protectionFault, type Access } from './walk.js';

/** Sets slot `idx`'s read tag (TLB_EMPTY: none), in both forms. */
function setReadTag(c: CpuCore, idx: number, page: number): void {
  c.tlbTagR[idx] = page;
  c.tlbTags32[4 * idx] = page === TLB_EMPTY ? TLB_EMPTY32 : page | 0;
  c.tlbTags32[4 * idx + 1] = Math.floor(page / 4294967296) | 0;
}

/** Sets slot `idx`'s write tag (TLB_EMPTY: none), in both forms. */
function setWriteTag(c: CpuCore, idx: number, page: number): void {
  c.tlbTagW[idx] = page;
  c.tlbTags32[4 * idx + 2] = page === TLB_EMPTY ? TLB_EMPTY32 : page | 0;
  c.tlbTags32[4 * idx + 3] = Math.floor(page / 4294967296) | 0;
}

export function flushTlb(c: CpuCore, keepGlobal: boolean): void {
  if (!keepGlobal) {
    clearTags(c);
    return;
  }
  const g = c.tlbGlobal;
  for (let i = 0; i < TLB_SIZE; i++) {
    if (g[i] !== 0) continue;
    setReadTag(c, i, TLB_EMPTY);
    setWriteTag(c, i, TLB_EMPTY);
  }
  const x = c.itlbTag, xg = c.itlbGlobal;
  for (let i = 0; i < ITLB_SIZE; i++) if (xg[i] === 0) x[i] = TLB_EMPTY;
  c.tlbGeneration++;
}

function clearTags(c: CpuCore): void {
  c.tlbTagR.fill(TLB_EMPTY);
  c.tlbTagW.fill(TLB_EMPTY);
  c.tlbTags32.fill(TLB_EMPTY32);
  c.tlbGlobal.fill(0);
  c.itlbTag.fill(TLB_EMPTY);
  c.itlbGlobal.fill(0);
  c.tlbGeneration++;
}

/** Re-establishes the access context after CPL or RFLAGS.AC may have changed. */
export function updateTlbContext(c: CpuCore): void {
  const ac = (c.flags & X86_EFLAGS_AC) !== 0;
  if ((c.cpl === 3) !== (c.tlbCpl === 3) || (c.smap && ac !== c.tlbAc)) clearTags(c);
  c.tlbCpl = c.cpl;
  c.tlbAc = ac;
}

/** Drops write tags that point at a frame which now holds decoded code. */
export function dropWriteTagsForFrame(c: CpuCore, frame: number): void {
  const f = c.tlbFrame;
  for (let i = 0; i < TLB_SIZE; i++) if (f[i] === frame) setWriteTag(c, i, TLB_EMPTY);
}

/** Drops every write tag whose frame became code since this CPU last looked. */
export function syncCodeFrames(c: CpuCore): void {
  const m = c.memory;
  if (c.codeEpochSeen === m.codeEpoch) return;
  c.codeEpochSeen = m.codeEpoch;
  const f = c.tlbFrame, code = m.codeFrames;
  for (let i = 0; i < TLB_SIZE; i++) if (code[f[i]!] !== 0) setWriteTag(c, i, TLB_EMPTY);
}

/** Caches a successful walk (its results are in c.walk*) for the page of `lin`. */
export function fillTlb(c: CpuCore, lin: number, pa: number, access: Access): void {
  const m = c.memory;
  if (pa >= m.size) return; // unbacked addresses always take the slow path
  const page = lin - (lin & 0xfff);
  const frame = (pa - (pa & 0xfff)) / 4096;
  const global = c.walkGlobal && c.pge ? 1 : 0;
  if (access === ACC_FETCH) {
    const x = (lin >>> 12) & ITLB_MASK;
    c.itlbTag[x] = page;
    c.itlbFrame[x] = frame;
    c.itlbGlobal[x] = global;
    return;
  }
  const idx = (lin >>> 12) & TLB_MASK;
  if (c.tlbFrame[idx] !== frame || !(c.tlbTagR[idx] === page || c.tlbTagW[idx] === page)) {
    setWriteTag(c, idx, TLB_EMPTY);
    c.tlbFrame[idx] = frame;
    c.tlbView[idx] = m.frameView(frame);
  }
  c.tlbGlobal[idx] = global;
  // The second stage's rights join the guest's (second-stage.ts): a tag is set only for what both allow.
  const s2 = c.secondStage.active ? c.secondStage.perms[frame]! : S2_ALL;
  setReadTag(c, idx, (s2 & S2_READ) !== 0 ? page : TLB_EMPTY);
  const writeOk = access === ACC_WRITE ||
    (c.walkDirty && !protectionFault(c, ACC_WRITE, c.cpl === 3, false, c.walkUser, c.walkWritable, c.walkNx));
  setWriteTag(c, idx, writeOk && (s2 & S2_WRITE) !== 0 && m.codeFrames[frame] === 0 ? page : TLB_EMPTY);
}

