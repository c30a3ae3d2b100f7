/** What a parsed image is made of: pieces of guest memory to fill, with their page rights. */

export interface ImageSegment {
  /** How messages name it: "segment 2" (its ELF program header) or "the image" (flat). */
  readonly label: string;
  /** First guest-physical (= linear: memory is identity-mapped) address. */
  readonly address: number;
  /** Bytes it occupies in memory; those past `data` are zeroed (an ELF BSS). */
  readonly memsz: number;
  /** The bytes to copy (a view into the image, not a copy). */
  readonly data: Uint8Array;
  readonly writable: boolean;
  readonly executable: boolean;
}

export interface ParsedImage {
  readonly kind: 'flat' | 'elf';
  readonly entry: bigint;
  readonly segments: readonly ImageSegment[];
  /** The guest memory size the image was checked against. */
  readonly memorySize: number;
}

export function hexAddress(n: number | bigint): string {
  return '0x' + n.toString(16);
}

/** "segment 2 at 0x8000..0x9000" (end exclusive). */
export function describeSegment(s: ImageSegment): string {
  return `${s.label} at ${hexAddress(s.address)}..${hexAddress(s.address + s.memsz)}`;
}
