/**
 * A booted core for host/x86's own tests: host/vmm/boot builds the state (identity paging, GDT,
 * TSS, IDT with recording stubs) exactly as for every other guest, then a test may adjust it —
 * start at CPL 3, open 2 MiB regions to user mode, change CR0/CR4/EFER, or install its own IDT
 * gates (helpers below) for exception-delivery tests.
 */
import { Cpu, PhysicalMemory, type Sregs } from '../../../host/index.js';
import { bootVcpu, buildBootImage, layout as L, type BootLayout } from '../../../host/vmm/boot/index.js';

export const PML4 = L.PML4;
export const PD = L.PD_BASE;
export const PT = L.PT0;
export const GDT = L.GDT;
export const IDT = L.IDT;
export const TSS = L.tssAddress(0);
export const CODE = L.KERNEL_EXEC;
export const USER_CODE = L.USER_EXEC;
export const KERNEL_STACK_TOP = L.kernelStackTop(0);
export const USER_STACK_TOP = L.userStackTop(0);
/** Supervisor RW scratch memory (NX). */
export const SCRATCH = L.KERNEL_SCRATCH;
export const KERNEL_CS = L.SELECTORS.kernelCs;
export const KERNEL_DS = L.SELECTORS.kernelDs;
export const USER32_CS = L.SELECTORS.user32Cs;
export const USER_DS = L.SELECTORS.userDs;
export const USER_CS = L.SELECTORS.userCs;
export const TSS_SEL = L.tssSelector(0);

export const PTE_P = 1n, PTE_RW = 2n, PTE_US = 4n, PTE_A = 0x20n, PTE_D = 0x40n, PTE_PS = 0x80n, PTE_G = 0x100n;
export const PTE_XD = 1n << 63n;

export const EFER_SCE = 1n, EFER_LME = 1n << 8n, EFER_LMA = 1n << 10n, EFER_NXE = 1n << 11n;
export const CR4_TSD = 1n << 2n, CR4_PAE = 1n << 5n, CR4_PGE = 1n << 7n, CR4_UMIP = 1n << 11n;
export const CR4_SMEP = 1n << 20n, CR4_SMAP = 1n << 21n;
export const CR0_WP = 1n << 16n;

export interface MachineOptions {
  /** Guest memory size (default 16 MiB; allocated lazily). */
  memorySize?: number;
  /** Start at CPL 3 in USER_CODE with the user stack (default: CPL 0 in CODE). */
  user?: boolean;
  /** Indices of 2 MiB pages (0x200000 each) to map user, read-write, executable. */
  userPdes?: number[];
  cr0?: bigint;
  cr4?: bigint;
  efer?: bigint;
  jit?: boolean;
}

export interface Machine {
  memory: PhysicalMemory;
  cpu: Cpu;
  boot: BootLayout;
}

export function buildMachine(opts: MachineOptions = {}): Machine {
  const memory = new PhysicalMemory(opts.memorySize ?? 16 * L.MIB);
  // Tests translate every block before its first run, so that translated code is what they exercise.
  const cpu = new Cpu(memory, { jit: opts.jit ?? true, jitThreshold: 0 });
  const boot = buildBootImage(memory, { vcpus: 1 });
  bootVcpu(cpu, boot, 0);
  for (const k of opts.userPdes ?? []) setPde(memory, k, BigInt(k) * 0x200000n | PTE_P | PTE_RW | PTE_US | PTE_PS);
  const s: Sregs = cpu.getSregs();
  if (opts.cr0 !== undefined) s.cr0 = opts.cr0;
  if (opts.cr4 !== undefined) s.cr4 = opts.cr4;
  if (opts.efer !== undefined) s.efer = opts.efer;
  if (opts.user) {
    s.cs = { ...s.cs, selector: USER_CS, dpl: 3 };
    s.ss = { ...s.ss, selector: USER_DS, dpl: 3 };
    s.ds = { ...s.ds, selector: USER_DS, dpl: 3 };
    s.es = { ...s.es, selector: USER_DS, dpl: 3 };
  }
  cpu.setSregs(s);
  const r = cpu.getRegs();
  r.rip = BigInt(opts.user ? USER_CODE : CODE);
  r.rsp = BigInt(opts.user ? USER_STACK_TOP : KERNEL_STACK_TOP);
  cpu.setRegs(r);
  cpu.commitMsr(0xc0000081, (BigInt(USER32_CS) << 48n) | (BigInt(KERNEL_CS) << 32n)); // STAR, as Linux
  return { memory, cpu, boot };
}

/** Writes the page-directory entry for the 2 MiB page `k` (of the first GiB). */
export function setPde(memory: PhysicalMemory, k: number, value: bigint): void {
  memory.write64(PD + k * 8, value);
}

/** A 16-byte 64-bit interrupt (type 0xE) or trap (0xF) gate. */
export function gate(offset: bigint, selector: number, type: number, dpl: number, ist = 0, present = true): [bigint, bigint] {
  const low = (offset & 0xffffn) | (BigInt(selector) << 16n) | (BigInt(ist) << 32n) |
    (BigInt(type | (dpl << 5) | (present ? 0x80 : 0)) << 40n) | (((offset >> 16n) & 0xffffn) << 48n);
  return [low, (offset >> 32n) & 0xffffffffn];
}

export function setGate(memory: PhysicalMemory, vector: number, g: [bigint, bigint]): void {
  memory.write64(IDT + vector * 16, g[0]);
  memory.write64(IDT + vector * 16 + 8, g[1]);
}

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, '');
  return Uint8Array.from(clean.match(/../g)!.map((b) => parseInt(b, 16)));
}

/** Loads code at `at` (default CODE), points RIP at it and runs with the given budget. */
export function runAt(m: Machine, code: string, budget = 10_000, at = CODE): ReturnType<Cpu['run']> {
  m.memory.writeBytes(at, hex(code));
  m.cpu.setRip(BigInt(at));
  return m.cpu.run(budget);
}
