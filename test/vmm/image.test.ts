import test from 'ava';
import { readFileSync } from 'node:fs';
import { buildBootImage, layout as L } from '../../host/vmm/boot/index.js';
import { BOOT_REGIONS, ImageError, loadImage, parseImage, type ParsedImage } from '../../host/vmm/image/index.js';
import { PhysicalMemory } from '../../host/x86/memory.js';
import { buildElf, PF_R, PF_W, PF_X, type ElfSpec } from '../support/elf-writer.js';
import { translate } from '../support/page-walk.js';

const MIB = 1024 * 1024;
const MEMORY = 16 * MIB;
const CR3 = 0x1000; // the boot image's PML4 (host/vmm/boot/layout.ts)
const code = (n: number, byte = 0x90) => new Uint8Array(n).fill(byte);

function parseElfSpec(spec: ElfSpec, memorySize = MEMORY): ParsedImage {
  return parseImage(buildElf(spec), { memorySize, source: 'test.elf' });
}

function refusal(t: import('ava').ExecutionContext, spec: ElfSpec | Uint8Array, message: RegExp, options: object = {}): void {
  const bytes = spec instanceof Uint8Array ? spec : buildElf(spec);
  t.throws(() => parseImage(bytes, { memorySize: MEMORY, source: 'test.elf', ...options }), { instanceOf: ImageError, message });
}

function booted(size = MEMORY) {
  const memory = new PhysicalMemory(size);
  buildBootImage(memory, { vcpus: 1 });
  return memory;
}

test('a flat binary loads at 0x100000 and starts at its first byte, or where told', (t) => {
  const bytes = Uint8Array.of(0x48, 0x31, 0xc0, 0xf4); // xor rax, rax; hlt
  const image = parseImage(bytes, { memorySize: MEMORY });
  t.is(image.kind, 'flat');
  t.is(image.entry, 0x100000n);
  t.deepEqual(image.segments.map((s) => [s.address, s.memsz, s.writable, s.executable]), [[0x100000, 4, true, true]]);
  const high = parseImage(bytes, { memorySize: MEMORY, load: 0x800000n, entry: 0x800003n });
  t.is(high.entry, 0x800003n);
  const memory = booted();
  loadImage(memory, high);
  t.deepEqual(memory.readBytes(0x800000, 4), bytes);
  t.like(translate(memory, CR3, 0x800003), { writable: true, executable: true, user: false, pageSize: 4096 });
});

test('flat binaries: empty, outside memory, on the boot image, or an entry outside them', (t) => {
  refusal(t, new Uint8Array(0), /^test\.elf: the image is empty$/);
  refusal(t, code(16), /the image at 0xfffff8\.\.0x1000008 is beyond guest memory/, { load: 0xfffff8n });
  refusal(t, code(16), /the image at 0x8000\.\.0x8010 overlaps the boot image \(GDT at 0x8000\)/, { load: 0x8000n });
  refusal(t, code(0x100001), /the image at 0x100000\.\.0x200001 overlaps the boot image \(user region at 0x200000\)/);
  refusal(t, code(16), /entry 0x100010 is not in an executable segment/, { entry: 0x100010n });
});

test('an ELF image: PT_LOAD segments with their rights, the entry from e_entry', (t) => {
  const image = parseElfSpec({
    entry: 0x400010,
    segments: [
      { flags: PF_R | PF_X, vaddr: 0x400000, data: code(0x20) },
      { type: 4, flags: PF_R, vaddr: 0, data: code(8) }, // PT_NOTE: not loaded
      { flags: PF_R | PF_W, vaddr: 0x402000, data: code(0x10, 7), memsz: 0x3000 },
      { flags: PF_R, vaddr: 0x500000, memsz: 0 }, // empty: nothing to load
    ],
  });
  t.is(image.kind, 'elf');
  t.is(image.entry, 0x400010n);
  t.deepEqual(
    image.segments.map((s) => [s.label, s.address, s.memsz, s.data.length, s.writable, s.executable]),
    [
      ['segment 0', 0x400000, 0x20, 0x20, false, true],
      ['segment 2', 0x402000, 0x3000, 0x10, true, false],
    ],
  );
  t.is(parseImage(buildElf({ entry: 0x400000, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, data: code(4) }] }), { memorySize: MEMORY, entry: 0x400002n }).entry, 0x400002n);
});

test('ELF files pinbox cannot run are refused with what is wrong', (t) => {
  const ok: ElfSpec = { entry: 0x400000, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, data: code(16) }] };
  refusal(t, buildElf(ok).slice(0, 40), /truncated ELF header: the file has 40 bytes/);
  refusal(t, { ...ok, ident: { class: 1 } }, /^test\.elf: file is ELF32/);
  refusal(t, { ...ok, ident: { class: 3 } }, /EI_CLASS is 3/);
  refusal(t, { ...ok, ident: { data: 2 } }, /big-endian/);
  refusal(t, { ...ok, ident: { version: 0 } }, /EI_VERSION is 0/);
  refusal(t, { ...ok, type: 3 }, /position-independent \(ET_DYN\)/);
  refusal(t, { ...ok, type: 1 }, /relocatable object \(ET_REL\)/);
  refusal(t, { ...ok, type: 4 }, /core dump/);
  refusal(t, { ...ok, machine: 3 }, /e_machine is 3 \(EM_386\), not EM_X86_64 \(62\)/);
  refusal(t, { ...ok, machine: 183 }, /EM_AARCH64/);
  refusal(t, { ...ok, version: 2 }, /e_version is 2/);
  refusal(t, { ...ok, phnum: 0 }, /no program headers/);
  refusal(t, { ...ok, phnum: 0xffff }, /PN_XNUM/);
  refusal(t, { ...ok, phentsize: 32 }, /e_phentsize is 32/);
  refusal(t, { ...ok, phnum: 3 }, /truncated program header table: 3 headers at offset 0x40 end at 0xe8, past the end of the file \(0x88 bytes\)/);
  refusal(t, { ...ok, truncate: 100 }, /truncated program header table/);
  refusal(t, { ...ok, segments: [{ type: 3, flags: PF_R, vaddr: 0, data: code(8) }, ...ok.segments] }, /segment 0 is PT_INTERP/);
  refusal(t, { ...ok, segments: [{ type: 4, flags: PF_R, vaddr: 0, data: code(8) }] }, /no loadable segment/);
  refusal(t, { ...ok, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, data: code(16), memsz: 8 }] }, /segment 0 has p_filesz 0x10 larger than p_memsz 0x8/);
  refusal(t, { ...ok, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, data: code(16), filesz: 0x1000, memsz: 0x1000 }] }, /segment 0's file bytes 0x78\.\.0x1078 run past the end of the file \(0x88 bytes\)/);
  refusal(t, { ...ok, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, paddr: 0x1400000, data: code(16) }] }, /p_paddr 0x1400000 different from p_vaddr 0x400000/);
  refusal(t, { ...ok, segments: [{ flags: PF_R | PF_X, vaddr: 0xffffffff80000000n, data: code(16) }] }, /beyond the 4 GiB/);
});

test('below high memory, every page but the kernel exec area belongs to a named part of the boot image', (t) => {
  for (let page = 0; page < L.HIGH_MEMORY; page += L.PAGE) {
    const named = BOOT_REGIONS.filter((r) => page >= r.start && page < r.end).length;
    t.is(named, page >= L.KERNEL_EXEC && page < L.KERNEL_EXEC_END ? 0 : 1, `page 0x${page.toString(16)}`);
  }
});

test('segments must lie in the exec area or high memory, apart, with the entry in code', (t) => {
  const one = (vaddr: number, memsz = 0x1000, flags = PF_R | PF_X): ElfSpec => ({ entry: vaddr, segments: [{ flags, vaddr, data: code(16), memsz }] });
  refusal(t, one(0x8000), /segment 0 at 0x8000\.\.0x9000 overlaps the boot image \(GDT at 0x8000\)/);
  refusal(t, one(0), /\(null page at 0x0\)/);
  refusal(t, one(0xf800), /\(kernel code at 0xf000\)/);
  t.notThrows(() => parseElfSpec(one(0x7ff000)));
  refusal(t, one(0x1ff000, 0x2000), /segment 0 at 0x1ff000\.\.0x201000 overlaps the boot image \(user region at 0x200000\)/);
  refusal(t, one(0x3ff000, 0x2000), /\(user region at 0x200000\)/);
  refusal(t, one(0xfff000, 0x2000), /segment 0 at 0xfff000\.\.0x1001000 is beyond guest memory \(16 MiB, up to 0x1000000\)/);
  refusal(
    t,
    { entry: 0x400000, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, data: code(0x100) }, { flags: PF_R, vaddr: 0x4000f0, data: code(0x20) }] },
    /segment 0 at 0x400000\.\.0x400100 and segment 1 at 0x4000f0\.\.0x400110 overlap/,
  );
  refusal(t, { entry: 0x402000, segments: [{ flags: PF_R | PF_X, vaddr: 0x400000, data: code(16) }, { flags: PF_R | PF_W, vaddr: 0x402000, data: code(16) }] }, /entry 0x402000 is not in an executable segment/);
  refusal(t, one(0x400000), /--load applies to flat binaries/, { load: 0x400000n });
  t.notThrows(() => parseElfSpec(one(0x100000, 0x100000)), 'the whole exec area');
});

test('loading copies segments, zeroes BSS tails (even over old data), and is refused before boot', (t) => {
  const image = parseElfSpec({
    entry: 0x100000,
    segments: [
      { flags: PF_R | PF_X, vaddr: 0x100000, data: Uint8Array.of(1, 2, 3) },
      { flags: PF_R | PF_W, vaddr: 0x600000, data: Uint8Array.of(9, 9), memsz: 0x3000 },
    ],
  });
  t.throws(() => loadImage(new PhysicalMemory(MEMORY), image), { instanceOf: ImageError, message: /call buildBootImage\(\) before loadImage\(\)/ });
  t.throws(() => loadImage(booted(32 * MIB), image), { instanceOf: ImageError, message: /checked for 16777216 bytes of guest memory, not 33554432/ });
  const memory = booted();
  memory.writeBytes(0x600000, new Uint8Array(0x3000).fill(0xee)); // what an earlier run left
  const loaded = loadImage(memory, image);
  t.is(loaded.entry, 0x100000n);
  t.deepEqual(memory.readBytes(0x100000, 4), Uint8Array.of(1, 2, 3, 0));
  t.deepEqual(memory.readBytes(0x600000, 3), Uint8Array.of(9, 9, 0));
  t.true(memory.readBytes(0x600002, 0x2ffe).every((b) => b === 0));
  t.is(memory.read8(0x603000), 0, 'nothing past memsz was touched');
});

test('high-memory segments get their rights; the rest of memory keeps boot\'s', (t) => {
  const image = parseElfSpec({
    entry: 0x400000,
    segments: [
      { flags: PF_R | PF_X, vaddr: 0x400000, data: code(0x1800) }, // two pages of code
      { flags: PF_R, vaddr: 0x402000, data: code(0x10) },
      { flags: PF_R | PF_W, vaddr: 0x403000, data: code(0x10), memsz: 0x1000 },
      { flags: PF_R | PF_X, vaddr: 0xa00000, data: code(0x10), memsz: 2 * MIB }, // a whole 2 MiB page
    ],
  });
  const memory = booted();
  const { pageTablePages } = loadImage(memory, image);
  t.deepEqual(pageTablePages, [MEMORY - 0x1000], 'one table, in the highest free page');
  const rights = (a: number) => {
    const tr = translate(memory, CR3, a)!;
    return { physical: tr.physical, writable: tr.writable, executable: tr.executable, user: tr.user, pageSize: tr.pageSize };
  };
  t.deepEqual(rights(0x401ffc), { physical: 0x401ffc, writable: false, executable: true, user: false, pageSize: 0x1000 });
  t.deepEqual(rights(0x402008), { physical: 0x402008, writable: false, executable: false, user: false, pageSize: 0x1000 });
  t.deepEqual(rights(0x403ff8), { physical: 0x403ff8, writable: true, executable: false, user: false, pageSize: 0x1000 });
  t.deepEqual(rights(0x404000), { physical: 0x404000, writable: true, executable: false, user: false, pageSize: 0x1000 }, 'boot rights after the image');
  t.deepEqual(rights(0x5ff000), { physical: 0x5ff000, writable: true, executable: false, user: false, pageSize: 0x1000 });
  t.deepEqual(rights(0xb00000), { physical: 0xb00000, writable: false, executable: true, user: false, pageSize: 2 * MIB });
  t.deepEqual(rights(0x800000), { physical: 0x800000, writable: true, executable: false, user: false, pageSize: 2 * MIB }, 'untouched 2 MiB pages stay');
  t.like(translate(memory, CR3, 0x100000), { writable: true, executable: true }, 'the exec area stays RWX');
  t.like(translate(memory, CR3, MEMORY - 0x1000), { writable: true, executable: false }, 'the new table is ordinary high memory');
});

test('segments that share a 4 KiB page give it the union of their rights; tables avoid segment pages', (t) => {
  const image = parseElfSpec({
    entry: 0x400000,
    segments: [
      { flags: PF_R | PF_X, vaddr: 0x400000, data: code(0x800) },
      { flags: PF_R | PF_W, vaddr: 0x400800, data: code(0x10) },
      { flags: PF_R, vaddr: 0xfff000, data: code(0x10) }, // the last page of memory
    ],
  });
  const memory = booted();
  const { pageTablePages } = loadImage(memory, image);
  t.deepEqual(pageTablePages, [MEMORY - 0x2000, MEMORY - 0x3000]);
  t.like(translate(memory, CR3, 0x400900), { writable: true, executable: true });
  t.like(translate(memory, CR3, 0xfff004), { writable: false, executable: false });
});

/** Reads `readelf -hlW` output: the entry point and the LOAD program headers. */
function readelfAccount(text: string) {
  const entry = BigInt(/Entry point address:\s+(0x[0-9a-f]+)/.exec(text)![1]!);
  const loads = [...text.matchAll(/^\s+LOAD\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(0x[0-9a-f]+)\s+(R?)\s?(W?)\s?(E?)\s+0x[0-9a-f]+$/gm)].map((m) => ({
    offset: Number(m[1]), vaddr: Number(m[2]), filesz: Number(m[4]), memsz: Number(m[5]), writable: m[7] === 'W', executable: m[8] === 'E',
  }));
  return { entry, loads };
}

test('a real gcc-built image parses as readelf describes it and loads with its rights', (t) => {
  const bytes = new Uint8Array(readFileSync('test/fixtures/images/hello.elf'));
  const account = readelfAccount(readFileSync('test/fixtures/images/hello.readelf.txt', 'utf8'));
  t.is(account.loads.length, 3, 'hello.ld asks for text, rodata and data segments');
  const image = parseImage(bytes, { memorySize: MEMORY, source: 'hello.elf' });
  t.is(image.kind, 'elf');
  t.is(image.entry, account.entry);
  t.deepEqual(
    image.segments.map((s) => ({ vaddr: s.address, filesz: s.data.length, memsz: s.memsz, writable: s.writable, executable: s.executable })),
    account.loads.map(({ vaddr, filesz, memsz, writable, executable }) => ({ vaddr, filesz, memsz, writable, executable })),
  );
  const memory = booted();
  loadImage(memory, image);
  for (const l of account.loads) {
    t.deepEqual(memory.readBytes(l.vaddr, l.filesz), bytes.subarray(l.offset, l.offset + l.filesz));
    t.true(memory.readBytes(l.vaddr + l.filesz, l.memsz - l.filesz).every((b) => b === 0));
    t.like(translate(memory, CR3, l.vaddr), { writable: l.writable, executable: l.executable, user: false });
  }
  // hello.c: "pinbox" in .rodata, multiplier = 3 in .data.
  t.is(new TextDecoder().decode(memory.readBytes(account.loads[1]!.vaddr, 6)), 'pinbox');
  t.is(memory.read64(account.loads[2]!.vaddr), 3n);
});
