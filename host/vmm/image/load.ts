/**
 * `loadImage(memory, parsed)`: copies a parsed image into a booted guest's memory — segment
 * bytes, zeros for each BSS tail (p_memsz past p_filesz) — and gives high-memory segments their
 * page rights (page-rights.ts). Call it after buildBootImage() on the same memory and before
 * any vCPU runs; then set RIP to `entry` (bootVcpu() + setRegs). Everything is checked before
 * the first byte is written.
 */
import { PML4 } from '../boot/layout.js';
import { PTE_P } from '../boot/page-tables.js';
import { PAGE_SHIFT, PAGE_SIZE, type GuestMemory } from '../../kvm/api/guest-memory.js';
import { ImageError } from './errors.js';
import { planPageRights } from './page-rights.js';
import type { ParsedImage } from './segment.js';

export interface LoadedImage {
  readonly entry: bigint;
  /** Pages now holding page tables made for the image. */
  readonly pageTablePages: readonly number[];
}

/** Zeros [from, to), touching only frames that hold data (the others already read as zero). */
function zeroRange(memory: GuestMemory, from: number, to: number): void {
  for (let a = from; a < to; ) {
    const frameEnd = Math.min(to, ((a >>> PAGE_SHIFT) + 1) * PAGE_SIZE);
    if (memory.isAllocated(a >>> PAGE_SHIFT)) memory.writeBytes(a, new Uint8Array(frameEnd - a));
    a = frameEnd;
  }
}

export function loadImage(memory: GuestMemory, image: ParsedImage, source?: string): LoadedImage {
  if (memory.size !== image.memorySize) {
    throw new ImageError(`the image was checked for ${image.memorySize} bytes of guest memory, not ${memory.size}`, source);
  }
  if ((memory.read64(PML4) & PTE_P) === 0n) {
    throw new ImageError('guest memory has no boot image yet: call buildBootImage() before loadImage()', source);
  }
  const plan = planPageRights(image.segments, memory.size, source);
  for (const s of image.segments) {
    memory.writeBytes(s.address, s.data);
    zeroRange(memory, s.address + s.data.length, s.address + s.memsz);
  }
  for (const [address, value] of plan.writes) memory.write64(address, value);
  return { entry: image.entry, pageTablePages: plan.tablePages };
}
