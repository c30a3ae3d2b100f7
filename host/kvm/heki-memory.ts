/**
 * Heki's memory hypercalls (docs/memory-protection.md §4, §5), as the RFC patches run them:
 *   [heki-v1] KVM_HC_LOCK_MEM_PAGE_RANGES (nr 13): an array of struct heki_pa_range at a GPA,
 *             NOWRITE and EXEC, permanent, 16 ranges of each kind per VM
 *             (20230505152046.6575-5-mic@digikod.net, …-9-…);
 *   [heki-v2] KVM_HC_PROTECT_MEMORY (nr 14): a chain of struct heki_page_list pages, each with
 *             struct heki_pages entries of READ/WRITE/EXEC/IMMUTABLE
 *             (20231113022326.24388-11-mic@digikod.net, …-12-…).
 * Neither is transactional: ranges handled before a failing one stay locked, as in the patches.
 * The guest's arguments are read as KVM reads them (kvm_read_guest(): guest-physical, no
 * second-stage check); what they lock goes to the VM's MemoryProtection.
 */
import * as abi from '../../protocol/abi.js';
import type { PhysicalMemory } from '../x86/memory.js';
import type { MemoryProtection } from './memory-protection.js';

const PAGE = 4096n;
/** gpa_to_gfn(~0): the largest GFN a 64-bit GPA has. */
const GFN_MAX = (1n << 52n) - 1n;
const EINVAL = -BigInt(abi.KVM_EINVAL);
const EFAULT = -BigInt(abi.KVM_EFAULT);
const E2BIG = -BigInt(abi.KVM_E2BIG);
const EOPNOTSUPP = -BigInt(abi.KVM_EOPNOTSUPP);
/** -EPERM: raw errno 1, which happens to equal KVM_EPERM ([heki-v2] 11/19 returns raw errnos). */
const EPERM = -BigInt(abi.Errno.EPERM);

/** kvm_read_guest(): the bytes, or undefined when any of them is outside guest memory. */
function readGuest(memory: PhysicalMemory, gpa: bigint, length: number): Uint8Array | undefined {
  if (gpa < 0n || gpa + BigInt(length) > BigInt(memory.size)) return undefined;
  return memory.readBytes(Number(gpa), length);
}

function u64(b: Uint8Array, off: number): bigint {
  return new DataView(b.buffer, b.byteOffset + off, 8).getBigUint64(0, true);
}

/**
 * [heki-v1] heki_lock_mem_page_ranges(): a0 = GPA of the array, a1 = its size in bytes, a2 =
 * flags (0). Checks in the patch's order: flags, size > 16 ranges, size not a whole number of
 * ranges, the read; then per range: GFNs beyond gpa_to_gfn(~0), start after end, no attribute
 * or an unknown one; then NOWRITE (no slot left: -KVM_E2BIG), then EXEC (without MBEC
 * -KVM_EOPNOTSUPP; no slot left: -KVM_E2BIG).
 */
export function hekiLockMemPageRanges(prot: MemoryProtection, a0: bigint, a1: bigint, a2: bigint): bigint {
  if (a2 !== 0n) return EINVAL;
  if (a1 > BigInt(abi.HEKI_GFN_MAX * abi.HEKI_PA_RANGE_SIZE)) return E2BIG;
  if (a1 % BigInt(abi.HEKI_PA_RANGE_SIZE) !== 0n) return EINVAL;
  const bytes = readGuest(prot.memory, a0, Number(a1));
  if (bytes === undefined) return EFAULT;
  const known = abi.HEKI_ATTR_MEM_NOWRITE | abi.HEKI_ATTR_MEM_EXEC;
  for (let off = 0; off < bytes.length; off += abi.HEKI_PA_RANGE_SIZE) {
    const start = u64(bytes, off), end = u64(bytes, off + 8), attributes = u64(bytes, off + 16);
    if (start > GFN_MAX || end > GFN_MAX || start > end) return EINVAL;
    if (attributes === 0n || (attributes & ~known) !== 0n) return EINVAL;
    // 8/9 handles NOWRITE (its slot, its lock) before it looks at EXEC, so a NOWRITE|EXEC range
    // without MBEC stays write-locked although the call returns -KVM_EOPNOTSUPP.
    for (const [bit, kind] of [[abi.HEKI_ATTR_MEM_NOWRITE, 'nowrite'], [abi.HEKI_ATTR_MEM_EXEC, 'exec']] as const) {
      if ((attributes & bit) === 0n) continue;
      if (kind === 'exec' && !prot.mbec) return EOPNOTSUPP;
      if (prot.hekiV1[kind].length >= abi.HEKI_GFN_MAX) return E2BIG;
      prot.lockV1(kind, { start, end });
    }
  }
  return 0n;
}

interface PagesEntry {
  readonly pa: bigint;
  readonly epa: bigint;
  readonly permissions: bigint;
}

/**
 * Reads the KVM_HC_PROTECT_MEMORY chain from `first`: every node's entries, node by node in
 * chain order, or the error.
 * MODEL DECISIONS where the RFC has no bound (KVM reads npages*24 bytes into one page and follows
 * next_pa forever): a node with more than 169 entries, or a chain longer than
 * PINBOX_HEKI_MAX_LIST_PAGES nodes, is refused with -KVM_E2BIG, the error the patch gives when
 * it cannot allocate a list page (docs/memory-protection.md §5.3).
 */
function readPageLists(memory: PhysicalMemory, first: bigint): PagesEntry[][] | bigint {
  const nodes: PagesEntry[][] = [];
  let pa = first;
  while (pa !== 0n) {
    if (nodes.length >= abi.PINBOX_HEKI_MAX_LIST_PAGES) return E2BIG;
    const header = readGuest(memory, pa, abi.HEKI_PAGE_LIST_HEADER_SIZE);
    if (header === undefined) return EFAULT;
    const nextPa = u64(header, 8), npages = u64(header, 16);
    if (npages > BigInt(abi.HEKI_PAGE_LIST_MAX_PAGES)) return E2BIG;
    const body = readGuest(memory, pa + BigInt(abi.HEKI_PAGE_LIST_HEADER_SIZE), Number(npages) * abi.HEKI_PAGES_SIZE);
    if (body === undefined) return EFAULT;
    const entries: PagesEntry[] = [];
    for (let off = 0; off < body.length; off += abi.HEKI_PAGES_SIZE) {
      entries.push({ pa: u64(body, off), epa: u64(body, off + 8), permissions: u64(body, off + 16) });
    }
    nodes.push(entries);
    pa = nextPa;
  }
  return nodes;
}

/**
 * [heki-v2] heki_protect_memory(): a0 = GPA of the first list page (a1..a3 unused). The whole
 * chain is read first, each node pushed at the head of KVM's own list (list->next = head), so the
 * nodes are applied last first, each in its entries' order; then per entry: unaligned pa/epa, no permission or an unknown bit
 * (-KVM_EINVAL); EXEC put back silently without MBEC; epa <= pa (-EINVAL); a page already
 * IMMUTABLE (-EPERM); else the pages take the permissions.
 */
export function hekiProtectMemory(prot: MemoryProtection, a0: bigint): bigint {
  const nodes = readPageLists(prot.memory, a0);
  if (typeof nodes === 'bigint') return nodes;
  for (const e of nodes.reverse().flat()) {
    if (e.pa % PAGE !== 0n || e.epa % PAGE !== 0n) return EINVAL;
    if (e.permissions === 0n || (e.permissions & ~abi.MEM_ATTR_PROT) !== 0n) return EINVAL;
    let perms = e.permissions;
    if (!prot.mbec) perms |= abi.MEM_ATTR_EXEC; // "heki: Guest tried to remove EXEC permission without MBEC" — a warning only
    const start = e.pa / PAGE, end = e.epa / PAGE;
    if (end <= start) return EINVAL;
    if (anyImmutable(prot, start, end)) return EPERM;
    prot.setV2(start, end, Number(perms));
  }
  return 0n;
}

function anyImmutable(prot: MemoryProtection, start: bigint, end: bigint): boolean {
  const last = end < BigInt(prot.memory.frameCount) ? Number(end) : prot.memory.frameCount;
  for (let f = Number(start < 0n ? 0n : start); f < last; f++) {
    const p = prot.v2Permissions(f);
    if (p !== undefined && (p & Number(abi.MEM_ATTR_IMMUTABLE)) !== 0) return true;
  }
  return false;
}
