/**
 * A minimal 64-bit machine for the core's own tests, built directly in guest memory: identity
 * paging, a Linux-style GDT (kernel CS 0x10, DS 0x18, user DS 0x2b, user CS 0x33, TSS 0x40), a
 * 64-bit TSS with RSP0 and IST1, and an IDT whose stub for vector v is `mov eax, v; hlt`. It
 * mirrors the shape of host/vmm/boot (which tests outside host/x86 use) while letting these
 * tests vary paging and descriptor details freely.
 *
 * Physical layout (identity-mapped; the null page is not present):
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD (first GiB), 0x4000 PT (first 2 MiB, 4 KiB pages)
 *   0x5000 GDT, 0x6000 IDT, 0x7000 TSS (with an I/O bitmap), 0x9000 IDT stubs
 *   0x70000 IST1 stack top, 0x80000 kernel stack top (RSP0)
 *   0x100000..0x1fffff supervisor code (CODE), 0x200000..0x3fffff user region (USER_CODE,
 *   USER_STACK_TOP), 2 MiB pages above, supervisor unless listed in `userPdes`.
 */
import { Cpu, PhysicalMemory, type Segment, type Sregs } from '../../../host/index.js';

export const PML4 = 0x1000;
export const PDPT = 0x2000;
export const PD = 0x3000;
export const PT = 0x4000;
export const GDT = 0x5000;
export const IDT = 0x6000;
export const TSS = 0x7000;
export const IDT_STUBS = 0x9000;
export const IST1_TOP = 0x70000;
export const KERNEL_STACK_TOP = 0x80000;
export const CODE = 0x100000;
export const USER_CODE = 0x200000;
export const USER_STACK_TOP = 0x3ff000;

export const KERNEL_CS = 0x10;
export const KERNEL_DS = 0x18;
export const USER32_CS = 0x23;
export const USER_DS = 0x2b;
export const USER_CS = 0x33;
export const TSS_SEL = 0x40;

/** TSS layout: I/O map base at 0x68, bitmap of 8192 bytes (all ports denied) plus the 0xff terminator. */
export const TSS_IOMAP_OFFSET = 0x68;
export const TSS_LIMIT = TSS_IOMAP_OFFSET + 8192;

export const PTE_P = 1n, PTE_RW = 2n, PTE_US = 4n, PTE_A = 0x20n, PTE_D = 0x40n, PTE_PS = 0x80n, PTE_G = 0x100n;
export const PTE_XD = 1n << 63n;

export const CR0_DEFAULT = 0x80050033n; // PG|AM|WP|NE|ET|MP|PE
export const CR4_PAE = 1n << 5n, CR4_PGE = 1n << 7n, CR4_OSFXSR = 1n << 9n, CR4_OSXMMEXCPT = 1n << 10n;
export const CR4_UMIP = 1n << 11n, CR4_FSGSBASE = 1n << 16n, CR4_SMEP = 1n << 20n, CR4_SMAP = 1n << 21n;
export const CR4_DEFAULT = CR4_PAE | CR4_PGE | CR4_OSFXSR | CR4_OSXMMEXCPT | CR4_SMEP | CR4_SMAP | CR4_UMIP | CR4_FSGSBASE;
export const EFER_SCE = 1n, EFER_LME = 1n << 8n, EFER_LMA = 1n << 10n, EFER_NXE = 1n << 11n;
export const EFER_DEFAULT = EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE;

export interface MachineOptions {
  /** Guest memory size (default 1 GiB: lazily allocated, so cheap). */
  memorySize?: number;
  /** Start at CPL 3 in USER_CODE (default: CPL 0 in CODE). */
  user?: boolean;
  /** 2 MiB-page indices (within the first GiB) mapped as user pages. */
  userPdes?: number[];
  cr0?: bigint;
  cr4?: bigint;
  efer?: bigint;
  jit?: boolean;
}

export interface Machine {
  memory: PhysicalMemory;
  cpu: Cpu;
}

function segment(selector: number, code: boolean, dpl: number): Segment {
  return {
    base: 0n, limit: 0xffffffff, selector, type: code ? 0xb : 0x3, present: true, dpl,
    db: !code, s: true, l: code, g: true, avl: false, unusable: false,
  };
}

export function writeU64(memory: PhysicalMemory, addr: number, v: bigint): void {
  memory.write64(addr, v);
}

/** An 8-byte code/data descriptor. */
export function descriptor(type: number, dpl: number, l: boolean, db: boolean): bigint {
  return 0xffffn | (BigInt(type | 0x10 | (dpl << 5) | 0x80) << 40n) | (0xfn << 48n) |
    ((l ? 1n : 0n) << 53n) | ((db ? 1n : 0n) << 54n) | (1n << 55n);
}

/** A 16-byte 64-bit system descriptor (TSS), as two quadwords. */
export function systemDescriptor(base: number, limit: number, type: number): [bigint, bigint] {
  const b = BigInt(base), l = BigInt(limit);
  const low = (l & 0xffffn) | ((b & 0xffffffn) << 16n) | (BigInt(type | 0x80) << 40n) |
    (((l >> 16n) & 0xfn) << 48n) | (((b >> 24n) & 0xffn) << 56n);
  return [low, b >> 32n];
}

/** A 16-byte 64-bit interrupt (0xE) or trap (0xF) gate. */
export function gate(offset: bigint, selector: number, type: number, dpl: number, ist = 0, present = true): [bigint, bigint] {
  const low = (offset & 0xffffn) | (BigInt(selector) << 16n) | (BigInt(ist) << 32n) |
    (BigInt(type | (dpl << 5) | (present ? 0x80 : 0)) << 40n) | (((offset >> 16n) & 0xffffn) << 48n);
  return [low, (offset >> 32n) & 0xffffffffn];
}

export function setGate(memory: PhysicalMemory, vector: number, g: [bigint, bigint]): void {
  memory.write64(IDT + vector * 16, g[0]);
  memory.write64(IDT + vector * 16 + 8, g[1]);
}

/** Writes a PD entry for the 2 MiB page at index `k` of the first GiB. */
export function setPde(memory: PhysicalMemory, k: number, value: bigint): void {
  memory.write64(PD + k * 8, value);
}

export function buildMachine(opts: MachineOptions = {}): Machine {
  const memory = new PhysicalMemory(opts.memorySize ?? 1 << 30);
  const cpu = new Cpu(memory, { jit: opts.jit ?? true });
  const user = new Set([1, ...(opts.userPdes ?? [])]);

  memory.write64(PML4, BigInt(PDPT) | PTE_P | PTE_RW | PTE_US);
  memory.write64(PDPT, BigInt(PD) | PTE_P | PTE_RW | PTE_US);
  memory.write64(PD, BigInt(PT) | PTE_P | PTE_RW | PTE_US);
  for (let k = 1; k < 512; k++) {
    memory.write64(PD + k * 8, BigInt(k) * 0x200000n | PTE_P | PTE_RW | PTE_PS | (user.has(k) ? PTE_US : 0n));
  }
  for (let k = 1; k < 512; k++) memory.write64(PT + k * 8, BigInt(k) * 0x1000n | PTE_P | PTE_RW);

  memory.write64(GDT + KERNEL_CS, descriptor(0xb, 0, true, false));
  memory.write64(GDT + KERNEL_DS, descriptor(0x3, 0, false, true));
  memory.write64(GDT + 0x20, descriptor(0xb, 3, false, true));
  memory.write64(GDT + 0x28, descriptor(0x3, 3, false, true));
  memory.write64(GDT + 0x30, descriptor(0xb, 3, true, false));
  const [t0, t1] = systemDescriptor(TSS, TSS_LIMIT, 0xb);
  memory.write64(GDT + TSS_SEL, t0);
  memory.write64(GDT + TSS_SEL + 8, t1);

  memory.write64(TSS + 4, BigInt(KERNEL_STACK_TOP));
  memory.write64(TSS + 0x24, BigInt(IST1_TOP));
  memory.write16(TSS + 0x66, TSS_IOMAP_OFFSET);
  memory.writeBytes(TSS + TSS_IOMAP_OFFSET, new Uint8Array(8193).fill(0xff));

  for (let v = 0; v < 256; v++) {
    const stub = IDT_STUBS + v * 16;
    memory.writeBytes(stub, Uint8Array.of(0xb8, v, 0, 0, 0, 0xf4)); // mov eax, v; hlt
    setGate(memory, v, gate(BigInt(stub), KERNEL_CS, 0xe, v === 3 || v === 0x80 ? 3 : 0));
  }

  const cs = opts.user ? segment(USER_CS, true, 3) : segment(KERNEL_CS, true, 0);
  const ds = opts.user ? segment(USER_DS, false, 3) : segment(KERNEL_DS, false, 0);
  const sregs: Sregs = {
    cs, ds, es: ds, fs: ds, gs: ds, ss: ds,
    tr: { base: BigInt(TSS), limit: TSS_LIMIT, selector: TSS_SEL, type: 0xb, present: true, dpl: 0, db: false, s: false, l: false, g: false, avl: false, unusable: false },
    ldt: { base: 0n, limit: 0, selector: 0, type: 2, present: false, dpl: 0, db: false, s: false, l: false, g: false, avl: false, unusable: true },
    gdt: { base: BigInt(GDT), limit: 0x4f },
    idt: { base: BigInt(IDT), limit: 0xfff },
    cr0: opts.cr0 ?? CR0_DEFAULT,
    cr2: 0n,
    cr3: BigInt(PML4),
    cr4: opts.cr4 ?? CR4_DEFAULT,
    cr8: 0n,
    efer: opts.efer ?? EFER_DEFAULT,
    apicBase: 0xfee00900n,
  };
  cpu.setSregs(sregs);
  const regs = cpu.getRegs();
  regs.rip = BigInt(opts.user ? USER_CODE : CODE);
  regs.rsp = BigInt(opts.user ? USER_STACK_TOP : KERNEL_STACK_TOP);
  regs.rflags = 2n;
  cpu.setRegs(regs);
  cpu.commitMsr(0xc0000081, (BigInt(USER32_CS) << 48n) | (BigInt(KERNEL_CS) << 32n)); // STAR
  return { memory, cpu };
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  return Uint8Array.from(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}
