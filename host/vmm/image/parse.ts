/**
 * `parseImage(bytes, options)`: what `pinbox run --image FILE [--load ADDR] [--entry ADDR]`
 * boots. An ELF64 executable (recognised by its magic) goes where its PT_LOAD segments say and
 * starts at e_entry; anything else is a flat binary, loaded at `load` (default 0x100000, the
 * kernel exec area) and started at its first byte. `entry` overrides either. Pure: the result
 * is checked against the guest memory size and the boot layout, and loadImage() applies it.
 */
import { KERNEL_EXEC } from '../boot/layout.js';
import { isElf, parseElf } from './elf.js';
import { ImageError } from './errors.js';
import { checkDisjoint, checkEntry, checkPlacement } from './placement.js';
import { hexAddress, type ImageSegment, type ParsedImage } from './segment.js';

export const DEFAULT_FLAT_LOAD_ADDRESS = BigInt(KERNEL_EXEC);

export interface ParseImageOptions {
  /** Guest memory size in bytes (the policy's). */
  readonly memorySize: number;
  /** Flat binaries only: where to load (default 0x100000). */
  readonly load?: bigint;
  /** Where execution starts, instead of the load address / e_entry. */
  readonly entry?: bigint;
  /** Names the image in messages (its file name). */
  readonly source?: string;
}

function flatSegment(bytes: Uint8Array, load: bigint, memorySize: number, source?: string): ImageSegment {
  if (bytes.length === 0) throw new ImageError('the image is empty', source);
  if (load + BigInt(bytes.length) > BigInt(memorySize)) {
    throw new ImageError(
      `the image at ${hexAddress(load)}..${hexAddress(load + BigInt(bytes.length))} is beyond guest memory (${hexAddress(memorySize)} bytes)`,
      source,
    );
  }
  // A flat binary says nothing about rights: it is code and data at once.
  return { label: 'the image', address: Number(load), memsz: bytes.length, data: bytes, writable: true, executable: true };
}

export function parseImage(bytes: Uint8Array, options: ParseImageOptions): ParsedImage {
  const { memorySize, source } = options;
  let kind: ParsedImage['kind'];
  let segments: ImageSegment[];
  let entry: bigint;
  if (isElf(bytes)) {
    if (options.load !== undefined) {
      throw new ImageError('--load applies to flat binaries; an ELF image says where each segment goes', source);
    }
    const elf = parseElf(bytes, source);
    kind = 'elf';
    segments = elf.segments;
    entry = options.entry ?? elf.entry;
  } else {
    const load = options.load ?? DEFAULT_FLAT_LOAD_ADDRESS;
    kind = 'flat';
    segments = [flatSegment(bytes, load, memorySize, source)];
    entry = options.entry ?? load;
  }
  for (const s of segments) checkPlacement(s, memorySize, source);
  checkDisjoint(segments, source);
  checkEntry(entry, segments, source);
  return { kind, entry, segments, memorySize };
}
