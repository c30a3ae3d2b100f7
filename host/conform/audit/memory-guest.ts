/**
 * The guest the memory audit attacks (docs/transitions.md, "Memory"): pinbox's boot image
 * (docs/boot.md: identity-mapped, its page tables at 0x1000-0x7fff) with what a hardened kernel
 * adds — its text mapped read-only and executable, its data read-write and no-execute, a user
 * page — each at a linear address of its own in the boot image's last 4 KiB table (PT0), and
 * one unused slot there for the attacker's alias. Which guest-physical frame plays each role is
 * the policy's where its memory section protects one (a range that denies write but not exec
 * is text, one that denies exec is data, one that denies user execute — or exec without MBEC —
 * a user page); else a frame of the boot image's that nothing protects.
 *
 * The attacker is the kernel's own code (CPL0) and has these primitives: clear CR0.WP or
 * CR4.SMEP (a MOV to CR, which pins may refuse), write through a linear address, call one, and
 * rewrite a page-table entry (a write to PT0 through the identity map, then INVLPG).
 */
import {
  HEKI_ATTR_MEM_EXEC, HEKI_ATTR_MEM_NOWRITE, HEKI_PA_RANGE_SIZE, hekiPageListWords, hekiPaRangeWords, KVM_HC_LOCK_MEM_PAGE_RANGES, KVM_HC_PROTECT_MEMORY,
  KVM_MEMORY_ATTRIBUTE_PINBOX_NUX, KVM_MEMORY_ATTRIBUTE_PINBOX_NW, KVM_MEMORY_ATTRIBUTE_PINBOX_NX, MEM_ATTR_EXEC,
  MEM_ATTR_IMMUTABLE, MEM_ATTR_READ, MEM_ATTR_WRITE, X86_CR0_WP, X86_CR4_SMAP, X86_CR4_SMEP, HEKI_PROFILES, type HekiMemoryAbi,
} from '../../../protocol/abi.js';
import type { Machine } from '../../vmm/machine.js';
import type { CompiledPolicy, MemoryRegion } from '../../vmm/policy/index.js';
import { KERNEL_EXEC, PT0 } from '../../vmm/boot/layout.js';
import { PTE_A, PTE_D, PTE_NX, PTE_P, PTE_RW, PTE_US } from '../../vmm/boot/page-tables.js';

export type Role = 'text' | 'tables' | 'data' | 'user';

/** Where each role lives: its frame (GPA) and the linear address the kernel maps it at. */
export interface GuestLayout {
  readonly frames: Readonly<Record<Role, bigint>>;
  readonly linear: Readonly<Record<Role, bigint>>;
  /** Where the attacker maps an alias: a PT0 slot the kernel leaves unused. */
  readonly alias: bigint;
  /** What the guest's Heki lock-down locks, if its Heki has a memory hypercall. */
  readonly heki: HekiMemoryAbi;
  readonly mbec: boolean;
}

const PAGE = 0x1000n;
/**
 * Where the attacker's own code runs: the first page of the kernel exec area (the VMM's code slot
 * of vCPU 0). A kernel's code has to run somewhere: where the policy takes execute from this page,
 * the audit gives it back (this page alone), and no role is played by it.
 */
export const CODE_PAGE = BigInt(KERNEL_EXEC);
/** Role slots near the top of the kernel exec area (the audit's own code runs from its bottom). */
const SLOT = { text: 0x1f_0000n, data: 0x1f_1000n, user: 0x1f_2000n } as const;
const ALIAS = 0x1f_3000n;
/** Frames of the boot image nothing uses, for roles the policy does not place. */
const DEFAULT_FRAMES = { text: 0x1f_0000n, data: 0x60_0000n, user: 0x30_0000n } as const;
/** The attacker's bytes. */
export const MARKER = 0x4141_4141_4141_4141n;
/** `inc r9; ret`: what the audit puts on each page it may try to execute. */
const PROBE_CODE = Uint8Array.of(0x49, 0xff, 0xc1, 0xc3);
/** Where the Heki lock-down writes its hypercall's structures (the boot image's kernel scratch). */
const HEKI_SCRATCH = 0x9_0000;

function pteAddress(linear: bigint): number {
  return PT0 + Number((linear >> 12n) & 0x1ffn) * 8;
}

/** The boot image's paging structures (PML4 to PT0) and its user region (docs/boot.md). */
const TABLES = { start: 0x1000n, end: BigInt(PT0) + PAGE } as const;
const USER_REGION = { start: 0x20_0000n, end: 0x40_0000n } as const;

/**
 * The roles' frames for a policy: its own where it protects one — text: a range that denies
 * write but not exec, off the page tables; data: one that denies exec, off the user region; a
 * user page: one in the user region that denies user execute (exec without MBEC) — else the
 * defaults. The page tables are always PT0, the table that maps the roles.
 */
export function guestLayout(policy: CompiledPolicy): GuestLayout {
  const memory = policy.memory;
  const has = (a: bigint, bit: bigint): boolean => (a & bit) !== 0n;
  const within = (r: { address: bigint; size: bigint }, area: { start: bigint; end: bigint }): boolean =>
    r.address < area.end && r.address + r.size > area.start;
  // A region's first page, or its second where the first is the attacker's code page.
  const pageOf = (r: MemoryRegion): bigint | undefined => (r.address !== CODE_PAGE ? r.address : r.size > PAGE ? r.address + PAGE : undefined);
  const first = (wanted: (r: MemoryRegion) => boolean): bigint | undefined =>
    memory.protect.filter(wanted).map(pageOf).find((p) => p !== undefined);
  const userDenied = memory.mbec ? KVM_MEMORY_ATTRIBUTE_PINBOX_NUX : KVM_MEMORY_ATTRIBUTE_PINBOX_NX;
  const heki = policy.vmOptions.hekiMemory ?? HEKI_PROFILES[policy.vmOptions.profile].memory;
  return {
    frames: {
      text: first((r) => has(r.attributes, KVM_MEMORY_ATTRIBUTE_PINBOX_NW) && !has(r.attributes, KVM_MEMORY_ATTRIBUTE_PINBOX_NX) && !within(r, TABLES)) ??
        DEFAULT_FRAMES.text,
      tables: BigInt(PT0),
      data: first((r) => has(r.attributes, KVM_MEMORY_ATTRIBUTE_PINBOX_NX) && !within(r, USER_REGION)) ?? DEFAULT_FRAMES.data,
      user: first((r) => has(r.attributes, userDenied) && within(r, USER_REGION)) ?? DEFAULT_FRAMES.user,
    },
    linear: { text: SLOT.text, tables: BigInt(PT0), data: SLOT.data, user: SLOT.user },
    alias: ALIAS,
    heki,
    mbec: memory.mbec,
  };
}

/**
 * The kernel's own setup, as at its boot (host writes into guest memory, before any attack):
 * the role mappings in PT0, accessed and dirty as the boot image's own entries are (so that no
 * walk writes a table the policy may lock: docs/memory-protection.md §2.1), and a probe on each
 * page the attacker may try to run.
 */
export function setUpGuest(vm: Machine, layout: GuestLayout): void {
  const m = vm.memory;
  const code = vm.memoryAttributes().permissions.find((p) => CODE_PAGE >= p.address && CODE_PAGE < p.address + p.size);
  if (code !== undefined && !code.exec) vm.setMemoryAttributes({ address: CODE_PAGE, size: PAGE, attributes: 0n });
  const built = PTE_P | PTE_A | PTE_D;
  m.write64(pteAddress(SLOT.text), layout.frames.text | built);
  m.write64(pteAddress(SLOT.data), layout.frames.data | built | PTE_RW | PTE_NX);
  m.write64(pteAddress(SLOT.user), layout.frames.user | built | PTE_RW | PTE_US);
  m.write64(pteAddress(ALIAS), 0n);
  for (const role of ['data', 'user'] as const) m.writeBytes(Number(layout.frames[role]), PROBE_CODE);
}

/** Whether the kernel's role mappings are in place (a VM reset rebuilds the boot image without them). */
export function isSetUp(vm: Machine, layout: GuestLayout): boolean {
  return vm.memory.read64(pteAddress(SLOT.text)) === (layout.frames.text | PTE_P | PTE_A | PTE_D);
}

async function perform(vm: Machine, request: unknown): Promise<Record<string, unknown> | undefined> {
  try {
    return (await vm.perform(0, request)) as unknown as Record<string, unknown>;
  } catch {
    // Refused by the VMM (a killed VM, a memory fault it could not answer): the step did nothing more.
    return undefined;
  }
}

/**
 * What a Heki guest locks at the end of its boot, as the RFC guests do: v1 (6/9, 8/9) its text
 * NOWRITE and — with MBEC — EXEC, the boot image's stubs and kernel text and the audit's code
 * page EXEC too (an EXEC range is an allow-list); v2 (18/19) its text READ|EXEC|IMMUTABLE and its
 * data READ|WRITE. Neither locks page tables or user pages.
 */
export async function hekiLockDown(vm: Machine, layout: GuestLayout): Promise<void> {
  const m = vm.memory;
  const gfn = (gpa: bigint): bigint => gpa >> 12n;
  if (layout.heki === 'v1') {
    const range = (gfnStart: bigint, gfnEnd: bigint, attributes: bigint): { gfnStart: bigint; gfnEnd: bigint; attributes: bigint } => ({ gfnStart, gfnEnd, attributes });
    const text = gfn(layout.frames.text);
    const ranges = [range(text, text, HEKI_ATTR_MEM_NOWRITE)];
    if (layout.mbec) ranges.push(range(text, text, HEKI_ATTR_MEM_EXEC), range(0xen, 0xfn, HEKI_ATTR_MEM_EXEC), range(0x100n, 0x100n, HEKI_ATTR_MEM_EXEC));
    writeWords(m, hekiPaRangeWords(ranges));
    await perform(vm, { op: 'hypercall', nr: BigInt(KVM_HC_LOCK_MEM_PAGE_RANGES), args: [BigInt(HEKI_SCRATCH), BigInt(HEKI_PA_RANGE_SIZE * ranges.length), 0n] });
  } else if (layout.heki === 'v2') {
    const page = (pa: bigint, permissions: bigint): { pa: bigint; epa: bigint; permissions: bigint } => ({ pa, epa: pa + PAGE, permissions });
    writeWords(m, hekiPageListWords(0n, 0n, [
      page(layout.frames.text, MEM_ATTR_READ | MEM_ATTR_EXEC | MEM_ATTR_IMMUTABLE),
      page(layout.frames.data, MEM_ATTR_READ | MEM_ATTR_WRITE),
    ]));
    await perform(vm, { op: 'hypercall', nr: BigInt(KVM_HC_PROTECT_MEMORY), args: [BigInt(HEKI_SCRATCH)] });
  }
}

/** The hypercall's argument words, at HEKI_SCRATCH. */
function writeWords(m: Machine['memory'], words: readonly bigint[]): void {
  words.forEach((w, i) => m.write64(HEKI_SCRATCH + 8 * i, w));
}

// ---------------------------------------------------------------------------------------------
// The attacker's primitives (CPL0 code)
// ---------------------------------------------------------------------------------------------

/** MOV to CR0 without WP; a pin may refuse it (#GP), and the attacker goes on with WP set. */
export async function clearWp(vm: Machine): Promise<void> {
  await perform(vm, { op: 'writeCr', cr: 0, value: vm.getSregs(0).cr0 & ~X86_CR0_WP });
}

/** MOV to CR4 without SMEP and SMAP (SMAP too: the attacker's kernel code then touches user pages freely). */
export async function clearSmep(vm: Machine): Promise<void> {
  await perform(vm, { op: 'writeCr', cr: 4, value: vm.getSregs(0).cr4 & ~(X86_CR4_SMEP | X86_CR4_SMAP) });
}

/** `mov [rax], rbx` with the attacker's bytes; true when they landed in `frame`. */
export async function writeThrough(vm: Machine, linear: bigint, frame: bigint): Promise<boolean> {
  await perform(vm, { op: 'exec', code: Uint8Array.of(0x48, 0x89, 0x18), regs: { rax: linear, rbx: MARKER } });
  return vm.memory.read64(Number(frame)) === MARKER;
}

/** `call rbx` into the probe (`inc r9; ret`); true when it ran. */
export async function callThrough(vm: Machine, linear: bigint): Promise<boolean> {
  const r = await perform(vm, { op: 'exec', code: Uint8Array.of(0xff, 0xd3), regs: { rbx: linear, r9: 0n } });
  return r !== undefined && r.stop === 'end' && (r.regs as { r9?: bigint } | undefined)?.r9 === 1n;
}

/** The guest rewrites the PT0 entry of `linear` (`mov [rdi], rsi; invlpg [rdx]`); true when the entry took the value. */
export async function rewritePte(vm: Machine, linear: bigint, entry: bigint): Promise<boolean> {
  const at = pteAddress(linear);
  await perform(vm, { op: 'exec', code: Uint8Array.of(0x48, 0x89, 0x37, 0x0f, 0x01, 0x3a), regs: { rdi: BigInt(at), rsi: entry, rdx: linear } });
  return vm.memory.read64(at) === entry;
}

/** The PT0 entry an attacker writes to alias a frame: supervisor, writable, executable (accessed and dirty, as the others). */
export function aliasEntry(frame: bigint): bigint {
  return frame | PTE_P | PTE_RW | PTE_A | PTE_D;
}
