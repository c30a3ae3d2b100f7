/**
 * The paging matrix's test rig: one booted core (host/vmm/boot's image, identity-mapped), a test
 * region in PML4 slot 1 (the boot image maps only slot 0) whose page tables each case writes
 * afresh, and a stub per CPL that does exactly one access — a read, a write, a fetch, or the
 * implicit read of an IDT gate — and stops with an intercept. Nothing here decides what the
 * result should be; paging-model.ts does.
 *
 * The stubs never touch the stack, so cases with EFER.NXE = 0 run even though the boot image's
 * stacks are mapped XD (a reserved bit without NXE), and they end in CPUID, which stops the core
 * with an intercept at any CPL. Every exception vector is in the exception bitmap, so a #PF stops
 * before delivery with its error code and address, and any other exception shows up as itself.
 */
import type { Intercept, Sregs } from '../../../host/index.js';
import {
  X86_CR0_WP, X86_CR4_SMAP, X86_CR4_SMEP, EFER_NXE, X86_EFLAGS_AC, X86_EFLAGS_FIXED, UD_VECTOR,
} from '../../../protocol/abi.js';
import { interruptGate } from '../../../host/vmm/boot/descriptors.js';
import { layout as L } from '../../../host/vmm/boot/index.js';
import {
  buildMachine, CODE, KERNEL_CS, PML4, USER_CODE, USER_CS, USER_DS, type Machine,
} from '../harness/machine.js';
import {
  ENTRY_A, ENTRY_D, ENTRY_P, ENTRY_PS, ENTRY_RW, ENTRY_US, ENTRY_XD, LEVEL_NAMES,
  type Access, type PagingControls,
} from './paging-model.js';

export type PageSize = '4k' | '2m' | '1g';
export const PAGE_SIZES: readonly PageSize[] = ['4k', '2m', '1g'];

/**
 * The matrix's accesses: the model's explicit read, write and fetch, and an implicit
 * supervisor-mode read (XTF's "implicit" class) — here the IDT-gate read of an exception's
 * delivery, with the IDT placed on the page under test.
 */
export type MatrixAccess = Access | 'implicit';
export const MATRIX_ACCESSES: readonly MatrixAccess[] = ['read', 'write', 'fetch', 'implicit'];

/** The model's view of a matrix access. */
export function modelAccess(a: MatrixAccess): Access {
  return a === 'implicit' ? 'read' : a;
}

/** A change to one entry that the rights dimensions do not cover. */
export type Injection =
  | { kind: 'none' }
  | { kind: 'not-present'; level: number }
  | { kind: 'above-maxphyaddr'; level: number; bit: number }
  | { kind: 'ps-in-pml4e' }
  | { kind: 'large-page-low'; bit: number }
  /** A bit the walk must ignore (available to software, PKEY with CR4.PKE = 0, PAT, G). */
  | { kind: 'ignored'; level: number; bit: number };

export interface MatrixCase extends PagingControls {
  size: PageSize;
  leafUs: boolean;
  leafRw: boolean;
  leafNx: boolean;
  /** Index of an upper-level entry whose U/S is clear, or null. */
  upperUs: number | null;
  /** Index of an upper-level entry whose R/W is clear, or null. */
  upperRw: number | null;
  /** Index of an upper-level entry with XD set, or null. */
  upperNx: number | null;
  injection: Injection;
  /** A and D already set in the leaf before the access. */
  preset: 'none' | 'a' | 'ad';
  /** Read the address once before the access (access.c's AC_ACCESS_TWICE: primes the TLB). */
  primeRead: boolean;
  cpl: 0 | 3;
  access: MatrixAccess;
}

/** Physical pages of the test region's tables (free memory above the boot image's). */
const PDPT_T = 0x80_0000;
const PD_T = 0x80_1000;
const PT_T = 0x80_2000;

/** Where, in each page-size's page, the data quadword and the fetched CPUID live. */
export const DATA_OFFSET = 0x2a8;
export const CODE_OFFSET = 0x6f0;

interface Layout {
  /** Indices into PML4, PDPT, PD, PT as far as the walk goes. */
  readonly indices: readonly number[];
  /** Physical address of each entry the walk reads. */
  readonly entryAddresses: readonly number[];
  /** Page-aligned linear and physical addresses of the 4 KiB page under test. */
  readonly linearPage: number;
  readonly physicalPage: number;
  /** Physical frame the leaf's address field holds. */
  readonly frame: number;
}

const MIB2 = 2 ** 21;

function walkLayout(indices: number[], pageOffset: number, frame: number): Layout {
  const tables = [PML4, PDPT_T, PD_T, PT_T];
  const shifts = [39, 30, 21, 12];
  let linear = 0;
  indices.forEach((ix, level) => { linear += ix * 2 ** shifts[level]!; });
  return {
    indices,
    entryAddresses: indices.map((ix, level) => tables[level]! + 8 * ix),
    linearPage: linear + pageOffset,
    physicalPage: frame + pageOffset,
    frame,
  };
}

/**
 * 4 KiB: PML4[1] → PDPT[2] → PD[5] → PT[7]. 2 MiB: PML4[1] → PDPT[2] → PD[9], page offset
 * 0x54000 into a frame at 10 MiB. 1 GiB: PML4[1] → PDPT[6], page offset 13 MiB + 0x54000 into
 * the frame at 0 (the only 1 GiB-aligned frame inside 16 MiB).
 */
export const LAYOUTS: Record<PageSize, Layout> = {
  '4k': walkLayout([1, 2, 5, 7], 0, 0x93_4000),
  '2m': walkLayout([1, 2, 9], 0x5_4000, 5 * MIB2),
  '1g': walkLayout([1, 6], 0xd5_4000, 0),
};

export function linearOf(c: MatrixCase, access: MatrixAccess = c.access): number {
  return LAYOUTS[c.size].linearPage + (access === 'fetch' ? CODE_OFFSET : DATA_OFFSET);
}

const TABLE_ADDRESS = [PDPT_T, PD_T, PT_T];

/** The entry values of the case, in walk order. */
export function buildEntries(c: MatrixCase): bigint[] {
  const l = LAYOUTS[c.size];
  const leafLevel = l.indices.length - 1;
  const entries: bigint[] = [];
  for (let level = 0; level < leafLevel; level++) {
    let e = BigInt(TABLE_ADDRESS[level]!) | ENTRY_P | ENTRY_RW | ENTRY_US;
    if (c.upperUs === level) e &= ~ENTRY_US;
    if (c.upperRw === level) e &= ~ENTRY_RW;
    if (c.upperNx === level) e |= ENTRY_XD;
    entries.push(e);
  }
  let leaf = BigInt(l.frame) | ENTRY_P;
  if (leafLevel < 3) leaf |= ENTRY_PS;
  if (c.leafRw) leaf |= ENTRY_RW;
  if (c.leafUs) leaf |= ENTRY_US;
  if (c.leafNx) leaf |= ENTRY_XD;
  if (c.preset !== 'none') leaf |= ENTRY_A;
  if (c.preset === 'ad') leaf |= ENTRY_D;
  entries.push(leaf);
  const inj = c.injection;
  switch (inj.kind) {
    case 'none': break;
    case 'not-present': entries[inj.level]! &= ~ENTRY_P; break;
    case 'above-maxphyaddr':
    case 'ignored': entries[inj.level]! |= 1n << BigInt(inj.bit); break;
    case 'ps-in-pml4e': entries[0]! |= ENTRY_PS; break;
    case 'large-page-low': entries[leafLevel]! |= 1n << BigInt(inj.bit); break;
  }
  return entries;
}

/** Stub offsets, the same in the kernel and the user copy. */
const STUB_READ = 0x00; // mov rax, [rbx] ; cpuid
const STUB_WRITE = 0x10; // mov [rbx], rax ; cpuid
const STUB_FETCH = 0x20; // jmp rbx
const STUB_IMPLICIT = 0x30; // ud2: #UD's delivery reads its IDT gate
const STUB_BYTES: [number, number[]][] = [
  [STUB_READ, [0x48, 0x8b, 0x03, 0x0f, 0xa2]],
  [STUB_WRITE, [0x48, 0x89, 0x03, 0x0f, 0xa2]],
  [STUB_FETCH, [0xff, 0xe3]],
  [STUB_IMPLICIT, [0x0f, 0x0b]],
];
const STUB_OFFSET: Record<MatrixAccess, number> = {
  read: STUB_READ, write: STUB_WRITE, fetch: STUB_FETCH, implicit: STUB_IMPLICIT,
};
const CPUID = [0x0f, 0xa2];
/** The #UD handler of implicit cases (supervisor code): hlt. */
export const UD_HANDLER = CODE + 0x800;
/** #UD's gate, stored on the page under test: interrupt gate, kernel CS, IST1, DPL 0. */
const UD_GATE = interruptGate(UD_HANDLER, KERNEL_CS, 1, 0);
const ALL_VECTORS = 0xffffffff;

export interface AccessResult {
  intercept: Intercept;
  rip: bigint;
  rax: bigint;
}

export class PagingRig {
  readonly m: Machine;
  private readonly baseSregs: Sregs;
  /** Deliver every exception through the IDT instead of stopping at it. */
  throughIdt = false;

  constructor(jit = true) {
    this.m = buildMachine({ jit });
    this.m.cpu.exceptionBitmap = ALL_VECTORS;
    for (const base of [CODE, USER_CODE]) {
      for (const [off, bytes] of STUB_BYTES) this.m.memory.writeBytes(base + off, Uint8Array.from(bytes));
    }
    this.m.memory.write8(UD_HANDLER, 0xf4);
    this.baseSregs = this.m.cpu.getSregs();
  }

  stubAddress(cpl: 0 | 3, access: MatrixAccess): number {
    return (cpl === 3 ? USER_CODE : CODE) + STUB_OFFSET[access];
  }

  /**
   * Writes the entries, the data quadword (for an implicit case, #UD's gate instead) and the
   * CPUID the fetch lands on. Returns the quadword at the data address.
   */
  install(c: MatrixCase, entries: readonly bigint[], data: bigint): bigint {
    const l = LAYOUTS[c.size];
    entries.forEach((e, level) => this.m.memory.write64(l.entryAddresses[level]!, e));
    if (c.access === 'implicit') this.m.memory.writeBytes(l.physicalPage + DATA_OFFSET, UD_GATE);
    else this.m.memory.write64(l.physicalPage + DATA_OFFSET, data);
    this.m.memory.writeBytes(l.physicalPage + CODE_OFFSET, Uint8Array.from(CPUID));
    return this.readData(c);
  }

  /** The boot image's fault record of vCPU 0 (host/vmm/boot layout.ts FAULT_RECORD). */
  faultRecord(): { count: bigint; vector: bigint; errorCode: bigint; rip: bigint } {
    const at = L.faultRecordAddress(0);
    const q = (off: number) => this.m.memory.read64(at + off);
    const f = L.FAULT_RECORD;
    return { count: q(f.count), vector: q(f.vector), errorCode: q(f.errorCode), rip: q(f.rip) };
  }

  readEntries(c: MatrixCase): bigint[] {
    return LAYOUTS[c.size].entryAddresses.map((a) => this.m.memory.read64(a));
  }

  readData(c: MatrixCase): bigint {
    return this.m.memory.read64(LAYOUTS[c.size].physicalPage + DATA_OFFSET);
  }

  /**
   * KVM_SET_SREGS with the case's controls and CPL (which flushes the TLB), CR2 set to a sentinel
   * the intercepted #PF must not overwrite.
   */
  enter(c: MatrixCase, cr2Sentinel: bigint): void {
    const s: Sregs = structuredClone(this.baseSregs);
    s.cr0 = c.wp ? s.cr0 | X86_CR0_WP : s.cr0 & ~X86_CR0_WP;
    s.cr4 = (s.cr4 & ~(X86_CR4_SMEP | X86_CR4_SMAP)) | (c.smep ? X86_CR4_SMEP : 0n) | (c.smap ? X86_CR4_SMAP : 0n);
    s.efer = c.nxe ? s.efer | EFER_NXE : s.efer & ~EFER_NXE;
    s.cr2 = cr2Sentinel;
    if (c.access === 'implicit') {
      s.idt = { base: BigInt(linearOf(c) - 16 * UD_VECTOR), limit: 0xfff };
    }
    if (c.cpl === 3) {
      s.cs = { ...s.cs, selector: USER_CS, dpl: 3 };
      for (const seg of ['ss', 'ds', 'es'] as const) s[seg] = { ...s[seg], selector: USER_DS, dpl: 3 };
    }
    this.m.cpu.setSregs(s);
    this.m.cpu.setRflags(BigInt(X86_EFLAGS_FIXED | (c.ac ? X86_EFLAGS_AC : 0)));
  }

  /**
   * Runs one access stub at the case's CPL with RBX = the linear address and RAX = `value`. For
   * an implicit access #UD leaves the exception bitmap, so that it is delivered.
   */
  access(c: MatrixCase, access: MatrixAccess, value: bigint): AccessResult {
    const cpu = this.m.cpu;
    if (this.throughIdt) cpu.exceptionBitmap = 0;
    else cpu.exceptionBitmap = access === 'implicit' ? (ALL_VECTORS & ~(1 << UD_VECTOR)) >>> 0 : ALL_VECTORS;
    cpu.writeGpr(3, BigInt(linearOf(c, access)));
    cpu.writeGpr(0, value);
    cpu.setRip(BigInt(this.stubAddress(c.cpl, access)));
    const intercept = cpu.run(16);
    return { intercept, rip: cpu.getRip(), rax: cpu.readGpr(0) };
  }
}

export function describeCase(c: MatrixCase): string {
  const inj = c.injection;
  const injection = inj.kind === 'none' ? '' : inj.kind === 'ps-in-pml4e' ? ' PS@PML4E'
    : inj.kind === 'large-page-low' ? ` rsvd-bit${inj.bit}@leaf`
      : inj.kind === 'not-present' ? ` !P@${LEVEL_NAMES[inj.level]}`
        : ` ${inj.kind}-bit${inj.bit}@${LEVEL_NAMES[inj.level]}`;
  const upper = (name: string, level: number | null) => (level === null ? '' : ` ${name}@${LEVEL_NAMES[level]}`);
  return `${c.size} ${c.access} CPL${c.cpl} leaf[${c.leafUs ? 'U' : 'S'}${c.leafRw ? 'W' : 'R'}${c.leafNx ? 'X' : ''}]` +
    `${upper('!U', c.upperUs)}${upper('!W', c.upperRw)}${upper('XD', c.upperNx)}${injection}` +
    ` WP=${+c.wp} SMEP=${+c.smep} SMAP=${+c.smap} NXE=${+c.nxe} AC=${+c.ac}` +
    `${c.preset === 'none' ? '' : ` preset=${c.preset.toUpperCase()}`}${c.primeRead ? ' twice' : ''}`;
}

