/**
 * Where image segments may go in a booted guest (host/vmm/boot/layout.ts): the kernel exec
 * area 0x100000..0x200000, which boot maps RWX, or high memory from 0x400000, which boot maps
 * supervisor RW and no-execute until page-rights.ts gives loaded segments their own rights.
 * Everything else belongs to the boot image, and a segment there is refused by name.
 */
import {
  EXCEPTION_STACKS, GDT, IDT, KERNEL_SCRATCH, KERNEL_SCRATCH_END, KERNEL_STACKS, KERNEL_TEXT, NULL_PAGE, PAGE, PD_BASE, PDPT, PML4, PT0, RODATA,
  STUBS, TSS_BASE, USER_REGION, USER_REGION_END,
} from '../boot/layout.js';
import { formatSize } from '../policy/numbers.js';
import { ImageError } from './errors.js';
import { describeSegment, hexAddress, type ImageSegment } from './segment.js';

interface NamedRegion {
  readonly start: number;
  readonly end: number;
  readonly name: string;
}

/** The boot image, part by part, in address order. */
export const BOOT_REGIONS: readonly NamedRegion[] = [
  { start: NULL_PAGE, end: NULL_PAGE + PAGE, name: 'null page' },
  { start: PML4, end: PDPT, name: 'PML4' },
  { start: PDPT, end: PD_BASE, name: 'PDPT' },
  { start: PD_BASE, end: PT0, name: 'page directories' },
  { start: PT0, end: GDT, name: 'page table of the first 2 MiB' },
  { start: GDT, end: IDT, name: 'GDT' },
  { start: IDT, end: TSS_BASE, name: 'IDT' },
  { start: TSS_BASE, end: RODATA, name: 'TSSs' },
  { start: RODATA, end: STUBS, name: 'read-only data page' },
  { start: STUBS, end: KERNEL_TEXT, name: 'IDT stubs' },
  { start: KERNEL_TEXT, end: KERNEL_STACKS, name: 'kernel code' },
  { start: KERNEL_STACKS, end: EXCEPTION_STACKS, name: 'kernel stacks' },
  { start: EXCEPTION_STACKS, end: KERNEL_SCRATCH, name: 'exception stacks' },
  { start: KERNEL_SCRATCH, end: KERNEL_SCRATCH_END, name: 'kernel scratch' },
  { start: USER_REGION, end: USER_REGION_END, name: 'user region' },
];

/** Refuses a segment outside memory or on the boot image, naming what it collides with. */
export function checkPlacement(segment: ImageSegment, memorySize: number, source?: string): void {
  const start = segment.address;
  const end = segment.address + segment.memsz;
  if (end > memorySize) {
    throw new ImageError(`${describeSegment(segment)} is beyond guest memory (${formatSize(memorySize)}, up to ${hexAddress(memorySize)})`, source);
  }
  for (const r of BOOT_REGIONS) {
    if (start < r.end && r.start < end) {
      throw new ImageError(`${describeSegment(segment)} overlaps the boot image (${r.name} at ${hexAddress(r.start)})`, source);
    }
  }
  // BOOT_REGIONS cover all of 0..HIGH_MEMORY but the exec area (image.test.ts checks it), so
  // what passes is in the exec area or in high memory.
}

/** Refuses segments that share bytes. */
export function checkDisjoint(segments: readonly ImageSegment[], source?: string): void {
  const sorted = [...segments].sort((a, b) => a.address - b.address);
  for (let i = 1; i < sorted.length; i++) {
    const a = sorted[i - 1]!;
    const b = sorted[i]!;
    if (b.address < a.address + a.memsz) {
      throw new ImageError(`${describeSegment(a)} and ${describeSegment(b)} overlap`, source);
    }
  }
}

/** Refuses an entry point that is not inside an executable segment. */
export function checkEntry(entry: bigint, segments: readonly ImageSegment[], source?: string): void {
  const inside = segments.some((s) => s.executable && entry >= BigInt(s.address) && entry < BigInt(s.address + s.memsz));
  if (!inside) throw new ImageError(`entry ${hexAddress(entry)} is not in an executable segment`, source);
}
