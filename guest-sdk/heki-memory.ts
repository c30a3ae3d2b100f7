/**
 * The guest side of Heki's memory locks (docs/memory-protection.md §4, §5, §6): the structures
 * the two RFCs pass by guest-physical address, written by the guest's own stores into a buffer the
 * caller names, then the hypercall — all in one piece of guest code, as a guest kernel would do it:
 *   v1 `KVM_HC_LOCK_MEM_PAGE_RANGES`(13): struct heki_pa_range[] at a0, its size in bytes in a1, a2 = 0;
 *   v2 `KVM_HC_PROTECT_MEMORY`(14): one struct heki_page_list (next_pa = 0) at a0.
 * The buffer must be mapped at the same linear address (the boot image maps all memory 1:1) and
 * writable at the call's CPL. Which call the host answers is the VM's Heki profile's business: a
 * host without it answers -KVM_ENOSYS.
 */
import {
  type Exit, HEKI_GFN_MAX, HEKI_PAGE_LIST_MAX_PAGES, KVM_HC_LOCK_MEM_PAGE_RANGES, KVM_HC_PROTECT_MEMORY, hekiPageListWords, hekiPaRangeWords,
} from '../protocol/index.js';
import { type U64, cplOption, optionsArgument, u64Argument } from './arguments.js';
import { GuestFault, HostError, InvalidArgumentError } from './errors.js';
import type { GuestOperations } from './guest-operations.js';
import { type KvmErrno, asSigned, kvmErrno } from './hypercall-return.js';
import type { OpOptions } from './arguments.js';

/** One struct heki_pa_range: GFNs `gfnStart`..`gfnEnd` inclusive, HEKI_ATTR_MEM_* attributes. */
export interface HekiPaRange {
  gfnStart: U64;
  gfnEnd: U64;
  attributes: U64;
}

/** One struct heki_pages: guest-physical [pa, epa), MEM_ATTR_* permissions. */
export interface HekiPages {
  pa: U64;
  epa: U64;
  permissions: U64;
}

/** What a memory hypercall returned: 0 on success, else a negated KVM (or raw) errno. */
export interface HekiMemoryResult {
  ok: boolean;
  /** RAX as the u64 it is. */
  ret: bigint;
  /** RAX read as the guest's signed long (-22 for -KVM_EINVAL). */
  value: bigint;
  errno: KvmErrno | undefined;
  exits: Exit[];
}

const OPTIONS = ['cpl'] as const;

/** `mov rax, imm64` then `mov [rdi + disp32], rax`, for each value; then `mov rax, nr`, VMCALL. */
export function hekiMemoryProgram(nr: number, values: readonly bigint[]): Uint8Array {
  const out: number[] = [];
  const imm64 = (v: bigint): void => {
    for (let k = 0n; k < 8n; k++) out.push(Number((v >> (8n * k)) & 0xffn));
  };
  values.forEach((v, k) => {
    out.push(0x48, 0xb8);
    imm64(v);
    const d = 8 * k;
    out.push(0x48, 0x89, 0x87, d & 0xff, (d >>> 8) & 0xff, (d >>> 16) & 0xff, (d >>> 24) & 0xff);
  });
  out.push(0x48, 0xb8);
  imm64(BigInt(nr));
  out.push(0x0f, 0x01, 0xc1);
  return Uint8Array.from(out);
}

/** Heki's memory hypercalls of one guest: `guest.hekiMemory`. */
export class HekiMemory {
  /** @internal */
  constructor(private readonly guest: GuestOperations) {}

  /** RFC v1: locks `ranges` (at most 16) with `KVM_HC_LOCK_MEM_PAGE_RANGES(buffer, 24 * n, 0)`. */
  async lockMemPageRanges(buffer: U64, ranges: readonly HekiPaRange[], options?: OpOptions): Promise<HekiMemoryResult> {
    const op = 'hekiMemory.lockMemPageRanges';
    if (!Array.isArray(ranges) || ranges.length > HEKI_GFN_MAX) {
      throw new InvalidArgumentError(op, 'ranges', `must be an array of at most ${HEKI_GFN_MAX} ranges`);
    }
    const values = hekiPaRangeWords(ranges.map((r, k) => ({
      gfnStart: big(op, `ranges[${k}].gfnStart`, r?.gfnStart), gfnEnd: big(op, `ranges[${k}].gfnEnd`, r?.gfnEnd),
      attributes: big(op, `ranges[${k}].attributes`, r?.attributes),
    })));
    const at = big(op, 'buffer', buffer);
    return this.call(op, KVM_HC_LOCK_MEM_PAGE_RANGES, values, { rdi: at, rbx: at, rcx: BigInt(24 * ranges.length), rdx: 0n }, options);
  }

  /** RFC v2: one page list (at most 169 entries, no next) at `buffer`, then `KVM_HC_PROTECT_MEMORY(buffer)`. */
  async protectMemory(buffer: U64, pages: readonly HekiPages[], options?: OpOptions): Promise<HekiMemoryResult> {
    const op = 'hekiMemory.protectMemory';
    if (!Array.isArray(pages) || pages.length > HEKI_PAGE_LIST_MAX_PAGES) {
      throw new InvalidArgumentError(op, 'pages', `must be an array of at most ${HEKI_PAGE_LIST_MAX_PAGES} entries (one list page)`);
    }
    const at = big(op, 'buffer', buffer);
    const values = hekiPageListWords(at, 0n, pages.map((p, k) => ({
      pa: big(op, `pages[${k}].pa`, p?.pa), epa: big(op, `pages[${k}].epa`, p?.epa), permissions: big(op, `pages[${k}].permissions`, p?.permissions),
    })));
    return this.call(op, KVM_HC_PROTECT_MEMORY, values, { rdi: at, rbx: at }, options);
  }

  private async call(
    op: string, nr: number, values: bigint[], regs: Record<string, bigint>, options: OpOptions | undefined,
  ): Promise<HekiMemoryResult> {
    const checked = optionsArgument<OpOptions>(op, options, OPTIONS);
    const r = await this.guest.exec(hekiMemoryProgram(nr, values), { regs, cpl: cplOption(op, checked?.cpl) });
    if (r.stop === 'fault' && r.fault !== undefined) {
      throw new GuestFault('exec', `${op} (hypercall ${nr})`, r.fault, r.exits, r.exitsDropped ?? 0);
    }
    if (r.stop !== 'end') throw new HostError(`${op} (hypercall ${nr})`, new Error(`the guest code stopped (${r.stop}) before the hypercall returned`));
    const ret = r.regs.rax;
    return { ok: ret === 0n, ret, value: asSigned(ret), errno: kvmErrno(ret), exits: r.exits };
  }
}

function big(op: string, name: string, v: unknown): bigint {
  return BigInt(u64Argument(op, name, v));
}
