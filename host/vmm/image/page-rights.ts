/**
 * Gives image segments in high memory their own page rights. Boot maps memory from 0x400000
 * with 2 MiB pages, supervisor RW and no-execute (boot/page-tables.ts); a segment needs
 * execute for code and no write for read-only data. 2 MiB pages that a segment covers whole
 * get the segment's rights in their PDE; the others are split into a page table of 4 KiB pages
 * (SDM vol. 3A §4.5: a PDE with PS = 0 points at a PT) where segment pages get the segment's
 * rights and the rest keep boot's. A 4 KiB page that two segments share gets the union of
 * their rights (linkers page-align segments with different rights, so this is rare).
 *
 * The new page tables take the highest 4 KiB pages of memory that no segment uses; they stay
 * mapped supervisor RW like the rest of high memory, as a kernel's own tables are. Exec-area
 * segments are left as boot maps that area: RWX.
 */
import { HIGH_MEMORY, MIB, PAGE, PD_BASE } from '../boot/layout.js';
import { PTE_AD, PTE_G, PTE_NX, PTE_P, PTE_PS, PTE_RW, PTE_US } from '../boot/page-tables.js';
import { ImageError } from './errors.js';
import type { ImageSegment } from './segment.js';

const TWO_MIB = 2 * MIB;
const PAGES_PER_CHUNK = TWO_MIB / PAGE;
/** Upper-level entries are P|RW|US, as boot writes them: the leaf alone decides. Accessed and dirty, as boot's. */
const TABLE = PTE_P | PTE_RW | PTE_US | PTE_AD;
/** What boot gives high memory. */
const HIGH_LEAF = PTE_P | PTE_RW | PTE_G | PTE_NX | PTE_AD;

interface Rights {
  writable: boolean;
  executable: boolean;
}

/** Page-table entries to write: [address, value] pairs, and the pages that hold new tables. */
export interface PageRightsPlan {
  readonly writes: readonly (readonly [number, bigint])[];
  readonly tablePages: readonly number[];
}

function leafFlags(r: Rights): bigint {
  return PTE_P | PTE_G | PTE_AD | (r.writable ? PTE_RW : 0n) | (r.executable ? 0n : PTE_NX);
}

/** The entries that give high-memory segments their rights, without writing anything. */
export function planPageRights(segments: readonly ImageSegment[], memorySize: number, source?: string): PageRightsPlan {
  // Rights per 4 KiB page of high memory that some segment touches.
  const pages = new Map<number, Rights>();
  for (const s of segments) {
    if (s.address < HIGH_MEMORY) continue;
    for (let p = s.address - (s.address % PAGE); p < s.address + s.memsz; p += PAGE) {
      const r = pages.get(p) ?? { writable: false, executable: false };
      r.writable ||= s.writable;
      r.executable ||= s.executable;
      pages.set(p, r);
    }
  }
  const chunks = new Map<number, Map<number, Rights>>();
  for (const [p, r] of pages) {
    const chunk = p - (p % TWO_MIB);
    if (!chunks.has(chunk)) chunks.set(chunk, new Map());
    chunks.get(chunk)!.set(p, r);
  }

  const writes: [number, bigint][] = [];
  const split: [number, Map<number, Rights>][] = [];
  for (const [chunk, inChunk] of chunks) {
    const first = inChunk.get(chunk);
    const uniform = inChunk.size === PAGES_PER_CHUNK && first !== undefined &&
      [...inChunk.values()].every((r) => r.writable === first.writable && r.executable === first.executable);
    const pde = PD_BASE + 8 * (chunk / TWO_MIB);
    if (uniform) writes.push([pde, BigInt(chunk) | leafFlags(first) | PTE_PS]);
    else split.push([chunk, inChunk]);
  }

  // Tables go in the highest free pages.
  const tablePages: number[] = [];
  for (let p = memorySize - PAGE; tablePages.length < split.length; p -= PAGE) {
    if (p < HIGH_MEMORY) throw new ImageError('no free page in high memory is left for the page tables the image needs', source);
    if (!pages.has(p)) tablePages.push(p);
  }
  split.forEach(([chunk, inChunk], k) => {
    const table = tablePages[k]!;
    for (let i = 0; i < PAGES_PER_CHUNK; i++) {
      const page = chunk + i * PAGE;
      const r = inChunk.get(page);
      writes.push([table + 8 * i, BigInt(page) | (r === undefined ? HIGH_LEAF : leafFlags(r))]);
    }
    writes.push([PD_BASE + 8 * (chunk / TWO_MIB), BigInt(table) | TABLE]);
  });
  return { writes, tablePages };
}
