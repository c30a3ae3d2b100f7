/**
 * A tiny ELF64 writer for image tests: an Elf64_Ehdr, a program header table right after it,
 * and each segment's bytes after that, laid out from the System V gABI (field offsets as in
 * include/uapi/linux/elf.h). Every header field can be overridden to build broken files.
 */

export const PF_X = 1;
export const PF_W = 2;
export const PF_R = 4;
export const PT_LOAD = 1;

export interface ElfSegmentSpec {
  type?: number;
  flags: number;
  vaddr: bigint | number;
  paddr?: bigint | number;
  data?: Uint8Array;
  /** Default: data.length. */
  memsz?: bigint | number;
  /** Overrides for broken files. */
  filesz?: bigint | number;
  offset?: bigint | number;
}

export interface ElfSpec {
  entry: bigint | number;
  segments: ElfSegmentSpec[];
  ident?: Partial<Record<'class' | 'data' | 'version', number>>;
  type?: number;
  machine?: number;
  version?: number;
  phoff?: bigint | number;
  phentsize?: number;
  phnum?: number;
  /** Cut the file to this many bytes. */
  truncate?: number;
}

export function buildElf(spec: ElfSpec): Uint8Array {
  const phoff = 64;
  let cursor = phoff + 56 * spec.segments.length;
  const placed = spec.segments.map((s) => {
    const data = s.data ?? new Uint8Array(0);
    const offset = cursor;
    cursor += data.length;
    return { s, data, offset };
  });
  const bytes = new Uint8Array(cursor);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, spec.ident?.class ?? 2, spec.ident?.data ?? 1, spec.ident?.version ?? 1]);
  view.setUint16(16, spec.type ?? 2, true); // ET_EXEC
  view.setUint16(18, spec.machine ?? 62, true); // EM_X86_64
  view.setUint32(20, spec.version ?? 1, true);
  view.setBigUint64(24, BigInt(spec.entry), true);
  view.setBigUint64(32, BigInt(spec.phoff ?? phoff), true);
  view.setUint16(52, 64, true); // e_ehsize
  view.setUint16(54, spec.phentsize ?? 56, true);
  view.setUint16(56, spec.phnum ?? spec.segments.length, true);
  placed.forEach(({ s, data, offset }, i) => {
    const at = phoff + 56 * i;
    view.setUint32(at, s.type ?? PT_LOAD, true);
    view.setUint32(at + 4, s.flags, true);
    view.setBigUint64(at + 8, BigInt(s.offset ?? offset), true);
    view.setBigUint64(at + 16, BigInt(s.vaddr), true);
    view.setBigUint64(at + 24, BigInt(s.paddr ?? s.vaddr), true);
    view.setBigUint64(at + 32, BigInt(s.filesz ?? data.length), true);
    view.setBigUint64(at + 40, BigInt(s.memsz ?? data.length), true);
    view.setBigUint64(at + 48, 0x1000n, true);
    bytes.set(data, offset);
  });
  return spec.truncate === undefined ? bytes : bytes.slice(0, spec.truncate);
}
