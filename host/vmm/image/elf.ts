/**
 * ELF64 executables, as the System V gABI and its x86-64 psABI define them (field offsets and
 * constants from include/uapi/linux/elf.h): little-endian, EM_X86_64, ET_EXEC. Each PT_LOAD
 * segment becomes an ImageSegment; everything a loader relies on is checked first, and each
 * refusal says which part of the file is wrong.
 */
import { ImageError } from './errors.js';
import { hexAddress, type ImageSegment } from './segment.js';

export const ELF_MAGIC = Uint8Array.of(0x7f, 0x45, 0x4c, 0x46); // "\x7fELF"
const EI_CLASS = 4;
const EI_DATA = 5;
const EI_VERSION = 6;
const ELFCLASS32 = 1;
const ELFCLASS64 = 2;
const ELFDATA2LSB = 1;
const ELFDATA2MSB = 2;
const EV_CURRENT = 1;
const ET_REL = 1;
const ET_EXEC = 2;
const ET_DYN = 3;
const ET_CORE = 4;
const EM_X86_64 = 62;
const PT_LOAD = 1;
const PT_INTERP = 3;
const PN_XNUM = 0xffff;
const PF_X = 1;
const PF_W = 2;
const ELF64_EHDR_SIZE = 64;
const ELF64_PHDR_SIZE = 56;

const MACHINE_NAMES: Readonly<Record<number, string>> = {
  3: 'EM_386', 40: 'EM_ARM', 183: 'EM_AARCH64', 243: 'EM_RISCV', 8: 'EM_MIPS', 20: 'EM_PPC', 21: 'EM_PPC64',
};

export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && ELF_MAGIC.every((b, i) => bytes[i] === b);
}

export interface ElfImage {
  readonly entry: bigint;
  readonly segments: ImageSegment[];
}

/** The header fields and PT_LOAD segments of an ELF64 x86-64 executable. */
export function parseElf(bytes: Uint8Array, source?: string): ElfImage {
  const fail = (message: string): never => {
    throw new ImageError(message, source);
  };
  if (bytes.length < ELF64_EHDR_SIZE) fail(`truncated ELF header: the file has ${bytes.length} bytes, an ELF64 header needs 64`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  const cls = bytes[EI_CLASS]!;
  if (cls === ELFCLASS32) fail('file is ELF32; pinbox runs ELF64 x86-64 images');
  if (cls !== ELFCLASS64) fail(`EI_CLASS is ${cls}, neither ELFCLASS32 nor ELFCLASS64`);
  const order = bytes[EI_DATA]!;
  if (order === ELFDATA2MSB) fail('file is big-endian (ELFDATA2MSB); x86-64 images are little-endian');
  if (order !== ELFDATA2LSB) fail(`EI_DATA is ${order}, not ELFDATA2LSB`);
  if (bytes[EI_VERSION] !== EV_CURRENT) fail(`EI_VERSION is ${bytes[EI_VERSION]}, not EV_CURRENT (1)`);

  const type = view.getUint16(16, true);
  if (type === ET_DYN) fail('file is position-independent (ET_DYN); link it as a fixed-address executable (-no-pie, -static)');
  if (type === ET_REL) fail('file is a relocatable object (ET_REL), not an executable; link it first');
  if (type === ET_CORE) fail('file is a core dump (ET_CORE), not an executable');
  if (type !== ET_EXEC) fail(`e_type is ${type}, not ET_EXEC (2)`);
  const machine = view.getUint16(18, true);
  if (machine !== EM_X86_64) {
    fail(`e_machine is ${machine}${MACHINE_NAMES[machine] ? ` (${MACHINE_NAMES[machine]})` : ''}, not EM_X86_64 (62)`);
  }
  const version = view.getUint32(20, true);
  if (version !== EV_CURRENT) fail(`e_version is ${version}, not EV_CURRENT (1)`);
  const entry = view.getBigUint64(24, true);
  const phoff = view.getBigUint64(32, true);
  const phentsize = view.getUint16(54, true);
  const phnum = view.getUint16(56, true);
  if (phnum === 0) fail('file has no program headers (e_phnum is 0), so nothing to load');
  if (phnum === PN_XNUM) fail('file has PN_XNUM program headers (65535 or more), which pinbox does not read');
  if (phentsize !== ELF64_PHDR_SIZE) fail(`e_phentsize is ${phentsize}, not the 56 bytes of an Elf64_Phdr`);
  const tableEnd = phoff + BigInt(phnum * ELF64_PHDR_SIZE);
  if (tableEnd > BigInt(bytes.length)) {
    fail(`truncated program header table: ${phnum} headers at offset ${hexAddress(phoff)} end at ${hexAddress(tableEnd)}, past the end of the file (${hexAddress(bytes.length)} bytes)`);
  }

  const segments: ImageSegment[] = [];
  for (let i = 0; i < phnum; i++) {
    const at = Number(phoff) + i * ELF64_PHDR_SIZE;
    const pType = view.getUint32(at, true);
    if (pType === PT_INTERP) fail(`segment ${i} is PT_INTERP: the program is dynamically linked; link it -static`);
    if (pType !== PT_LOAD) continue;
    const flags = view.getUint32(at + 4, true);
    const offset = view.getBigUint64(at + 8, true);
    const vaddr = view.getBigUint64(at + 16, true);
    const paddr = view.getBigUint64(at + 24, true);
    const filesz = view.getBigUint64(at + 32, true);
    const memsz = view.getBigUint64(at + 40, true);
    const label = `segment ${i}`;
    if (memsz === 0n) continue;
    if (filesz > memsz) fail(`${label} has p_filesz ${hexAddress(filesz)} larger than p_memsz ${hexAddress(memsz)}`);
    if (offset + filesz > BigInt(bytes.length)) {
      fail(`${label}'s file bytes ${hexAddress(offset)}..${hexAddress(offset + filesz)} run past the end of the file (${hexAddress(bytes.length)} bytes)`);
    }
    if (paddr !== vaddr) {
      fail(`${label} has p_paddr ${hexAddress(paddr)} different from p_vaddr ${hexAddress(vaddr)}; pinbox maps guest memory 1:1, so they must agree`);
    }
    if (vaddr + memsz > 1n << 32n) {
      fail(`${label} at ${hexAddress(vaddr)}..${hexAddress(vaddr + memsz)} is beyond the 4 GiB that guest memory can have`);
    }
    segments.push({
      label,
      address: Number(vaddr),
      memsz: Number(memsz),
      data: bytes.subarray(Number(offset), Number(offset + filesz)),
      writable: (flags & PF_W) !== 0,
      executable: (flags & PF_X) !== 0,
    });
  }
  if (segments.length === 0) fail('file has no loadable segment (PT_LOAD with p_memsz > 0)');
  return { entry, segments };
}
