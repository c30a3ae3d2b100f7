/**
 * The VM's guest-memory protections and what the core's second stage enforces of them
 * (docs/memory-protection.md): KVM_SET_MEMORY_ATTRIBUTES with pinbox's out-of-tree RWX
 * attributes (set by user space), and Heki's memory locks (set by the guest through
 * KVM_HC_LOCK_MEM_PAGE_RANGES in RFC v1 or KVM_HC_PROTECT_MEMORY in RFC v2, heki-memory.ts).
 * The layers are kept apart and the second stage gets, per frame, what all of them allow: user
 * space can restrict further, never loosen what the guest locked, so locks persist.
 *
 * MODEL DECISION: attributes apply to guest memory only (the VM's one memslot). Upstream KVM
 * stores attributes for any GFN, memslot or not; pinbox refuses a range beyond memory with
 * EINVAL rather than record what no access could ever meet.
 */
import * as abi from '../../protocol/abi.js';
import type { PhysicalMemory } from '../x86/memory.js';
import { S2_ALL, S2_EXEC, S2_READ, S2_USER_EXEC, S2_WRITE } from '../x86/mmu/second-stage.js';
import { KvmError } from './api/errors.js';
import type { MemoryAttributeRange, MemoryPermissionRange, MemoryProtectionSnapshot } from './api/model.js';

const NR = 1 << 0, NW = 1 << 1, NX = 1 << 2, NUX = 1 << 3;
const PAGE = 4096n;
const U64 = (1n << 64n) - 1n;

/** A GFN range, inclusive of both ends, as Heki v1's struct heki_pa_range holds it. */
export interface GfnRange {
  readonly start: bigint;
  readonly end: bigint;
}

export class MemoryProtection {
  /** Per frame: pinbox attributes as NR|NW|NX|NUX in bits 0..3. */
  private readonly attributes: Uint8Array;
  /** Heki v1: NOWRITE and EXEC ranges locked so far (HEKI_GFN_MAX each, for the VM's life). */
  readonly hekiV1 = { nowrite: [] as GfnRange[], exec: [] as GfnRange[] };
  /** Heki v2: per frame, 0 for "no attribute" (RWX), else 0x10 | MEM_ATTR_* bits. */
  private readonly hekiV2: Uint8Array;
  /**
   * KVM_CAP_PINBOX_MEMORY_FAULT_POLICY: deliver violations as KVM_EXIT_MEMORY_FAULT (0) or as #PF
   * (1). The default is the exit where the VM's profile has it, else #PF (Heki v2's way).
   */
  faultPolicy: number;

  /** `exitAvailable`: the VM's profile has KVM_EXIT_MEMORY_FAULT (not v2, where 39 is Heki's). */
  constructor(readonly memory: PhysicalMemory, readonly exitAvailable: boolean) {
    this.faultPolicy = exitAvailable ? abi.PINBOX_MEMORY_FAULT_EXIT : abi.PINBOX_MEMORY_FAULT_INJECT_PF;
    this.attributes = new Uint8Array(memory.frameCount);
    this.hekiV2 = new Uint8Array(memory.frameCount);
  }

  /** KVM_ENABLE_CAP(KVM_CAP_PINBOX_MEMORY_FAULT_POLICY): 0 (exit, where the profile has it) or 1 (#PF). */
  setFaultPolicy(policy: bigint, ioctl: string): void {
    if (policy !== BigInt(abi.PINBOX_MEMORY_FAULT_EXIT) && policy !== BigInt(abi.PINBOX_MEMORY_FAULT_INJECT_PF)) {
      throw new KvmError('EINVAL', ioctl, 'args[0] must be 0 (KVM_EXIT_MEMORY_FAULT) or 1 (inject #PF)');
    }
    if (policy === BigInt(abi.PINBOX_MEMORY_FAULT_EXIT) && !this.exitAvailable) {
      throw new KvmError('EINVAL', ioctl, 'the Heki v2 profile has no KVM_EXIT_MEMORY_FAULT (its exit 39 is KVM_EXIT_HEKI_CONFIGURE): use the v3 profile for memory-fault exits');
    }
    this.faultPolicy = Number(policy);
  }

  get mbec(): boolean {
    return this.memory.secondStage.mbec;
  }

  /** The attributes KVM_CHECK_EXTENSION(KVM_CAP_MEMORY_ATTRIBUTES) reports: NUX only with MBEC. */
  supportedAttributes(): bigint {
    return abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX |
      (this.mbec ? abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX : 0n);
  }

  /**
   * KVM_SET_MEMORY_ATTRIBUTES (kvm_vm_ioctl_set_mem_attributes()): the upstream checks in their
   * order — flags, attributes outside the supported mask, size 0 or a wrapping range,
   * unaligned address or size — then pinbox's: the range lies in guest memory, and read is
   * not taken away while write or execute stays (the VSM 2024 proposal's rule). All checked
   * before anything changes.
   */
  setAttributes(address: bigint, size: bigint, attributes: bigint, flags: bigint): void {
    const ioctl = 'KVM_SET_MEMORY_ATTRIBUTES';
    for (const [name, v] of [['address', address], ['size', size], ['attributes', attributes], ['flags', flags]] as const) {
      if (typeof v !== 'bigint' || v < 0n || v > U64) throw new KvmError('EINVAL', ioctl, `${name} must be a u64 bigint`);
    }
    if (flags !== 0n) throw new KvmError('EINVAL', ioctl, 'flags must be 0');
    if ((attributes & ~this.supportedAttributes()) !== 0n) {
      throw new KvmError('EINVAL', ioctl, `attributes 0x${attributes.toString(16)} outside the supported mask 0x${this.supportedAttributes().toString(16)}`);
    }
    if (size === 0n || address + size > U64) throw new KvmError('EINVAL', ioctl, 'size is 0 or address + size wraps');
    if ((address | size) % PAGE !== 0n) throw new KvmError('EINVAL', ioctl, 'address and size must be page-aligned');
    if (address + size > BigInt(this.memory.size)) {
      throw new KvmError('EINVAL', ioctl, `range 0x${address.toString(16)}+0x${size.toString(16)} is beyond guest memory (0x${this.memory.size.toString(16)})`);
    }
    if (abi.pinboxNoReadLacks(attributes, this.mbec) !== 0n) {
      throw new KvmError('EINVAL', ioctl, 'a page that cannot be read cannot be written or executed: NR needs NW and NX' + (this.mbec ? ' and NUX' : ''));
    }
    const first = Number(address / PAGE), count = Number(size / PAGE);
    this.attributes.fill(attributeBits(attributes), first, first + count);
    this.apply(first, count);
  }

  /**
   * The attributes set by user space, as maximal ranges of equal non-zero attributes (KVM has no
   * GET), in [address, address + size) (all memory unless given, clipped to it), at most `limit`
   * of them: a view is served in pieces (docs/memory-protection.md §7.3).
   */
  getAttributes(address = 0n, size?: bigint, limit = Infinity): MemoryAttributeRange[] {
    const [lo, hi] = this.frameWindow('pinbox getMemoryAttributes', address, size ?? BigInt(this.memory.size));
    return frameRuns(this.attributes, lo, hi, limit)
      .map((r) => ({ address: BigInt(r.first) * PAGE, size: BigInt(r.end - r.first) * PAGE, attributes: attributeValue(r.value) }));
  }

  /**
   * The effective permissions of the pages of [address, address + size), merged into runs
   * (clipped to memory), at most `limit` of them.
   */
  permissions(address: bigint, size: bigint, limit = Infinity): MemoryPermissionRange[] {
    const [lo, hi] = this.frameWindow('pinbox memoryPermissions', address, size);
    const s2 = this.memory.secondStage;
    // Every frame counts, rights or not: a run of full rights is a run too.
    return frameRuns(s2.perms, lo, hi, limit, true).map((r) => {
      const exec = (r.value & S2_EXEC) !== 0;
      return {
        address: BigInt(r.first) * PAGE, size: BigInt(r.end - r.first) * PAGE, read: (r.value & S2_READ) !== 0,
        write: (r.value & S2_WRITE) !== 0, exec, userExec: s2.mbec ? (r.value & S2_USER_EXEC) !== 0 : exec,
      };
    });
  }

  /** Frames [lo, hi) of the page-aligned [address, address + size), clipped to memory. */
  private frameWindow(what: string, address: bigint, size: bigint): [number, number] {
    if (typeof address !== 'bigint' || typeof size !== 'bigint' || address < 0n || size < 0n || (address | size) % PAGE !== 0n) {
      throw new KvmError('EINVAL', what, 'address and size must be non-negative page-aligned bigints');
    }
    const n = this.memory.frameCount;
    const clip = (a: bigint): number => (a / PAGE < BigInt(n) ? Number(a / PAGE) : n);
    return [clip(address), clip(address + size)];
  }

  /** Heki v2's pages with an attribute, as maximal ranges of equal MEM_ATTR_* permissions. */
  v2Ranges(): { address: bigint; size: bigint; permissions: bigint }[] {
    return frameRuns(this.hekiV2, 0, this.hekiV2.length, Infinity)
      .map((r) => ({ address: BigInt(r.first) * PAGE, size: BigInt(r.end - r.first) * PAGE, permissions: BigInt(r.value & 0xf) }));
  }

  /** KVM_CAP_PINBOX_MBEC: refused (EBUSY) once any protection is in place, whose meaning it would change. */
  setMbec(on: boolean, ioctl: string): void {
    if (on === this.mbec) return;
    if (this.memory.secondStage.active || this.hekiV1.exec.length > 0 || this.hekiV1.nowrite.length > 0) {
      throw new KvmError('EBUSY', ioctl, 'MBEC cannot change while memory protections are in place');
    }
    this.memory.secondStage.setMbec(on);
  }

  /**
   * What a VM reset asked for by user space does to memory (docs/memory-protection.md §7):
   * the VM as KVM_CREATE_VM made it — no attribute, no Heki lock of either RFC (v1's slots free
   * again), MBEC off, the profile's default delivery. INIT never calls this: the protections are VM state.
   */
  reset(): void {
    this.attributes.fill(0);
    this.hekiV2.fill(0);
    this.hekiV1.nowrite.length = 0;
    this.hekiV1.exec.length = 0;
    this.faultPolicy = this.exitAvailable ? abi.PINBOX_MEMORY_FAULT_EXIT : abi.PINBOX_MEMORY_FAULT_INJECT_PF;
    this.memory.secondStage.setMbec(false);
    this.apply(0, this.memory.frameCount);
  }

  /** Every layer and setting, for a snapshot. */
  snapshot(): MemoryProtectionSnapshot {
    return {
      mbec: this.mbec,
      faultPolicy: this.faultPolicy,
      attributes: this.getAttributes(),
      hekiV1: { nowrite: this.hekiV1.nowrite.map((r) => ({ ...r })), exec: this.hekiV1.exec.map((r) => ({ ...r })) },
      hekiV2: this.v2Ranges(),
    };
  }

  /**
   * Loads a snapshot's state in place of the VM's: every field checked before anything changes
   * (a range within memory and page-aligned, attributes and permissions KVM could have stored,
   * at most HEKI_GFN_MAX v1 ranges of each kind).
   */
  restore(state: MemoryProtectionSnapshot, ioctl: string): void {
    const bad = (why: string): never => {
      throw new KvmError('EINVAL', ioctl, why);
    };
    if (typeof state !== 'object' || state === null) bad('expected a memory-protection state');
    if (typeof state.mbec !== 'boolean') bad('mbec must be true or false');
    if (state.faultPolicy !== abi.PINBOX_MEMORY_FAULT_EXIT && state.faultPolicy !== abi.PINBOX_MEMORY_FAULT_INJECT_PF) bad('faultPolicy must be 0 or 1');
    if (state.faultPolicy === abi.PINBOX_MEMORY_FAULT_EXIT && !this.exitAvailable) bad('faultPolicy 0 (exit) is not available under this profile');
    const frames = (what: string, r: { address: unknown; size: unknown }): [number, number] => {
      const { address, size } = r;
      if (typeof address !== 'bigint' || typeof size !== 'bigint' || address < 0n || size <= 0n || (address | size) % PAGE !== 0n ||
        address + size > BigInt(this.memory.size)) bad(`${what} is not a page-aligned range within guest memory`);
      return [Number((address as bigint) / PAGE), Number((size as bigint) / PAGE)];
    };
    const supported = abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW | abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX |
      (state.mbec ? abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX : 0n);
    const attrs = list(state.attributes, 'attributes', bad).map((r, i) => {
      const at = frames(`attributes[${i}]`, r);
      if (typeof r.attributes !== 'bigint' || r.attributes === 0n || (r.attributes & ~supported) !== 0n) bad(`attributes[${i}] has attributes KVM would not store`);
      return [at, attributeBits(r.attributes)] as const;
    });
    const v2 = list(state.hekiV2, 'hekiV2', bad).map((r, i) => {
      const at = frames(`hekiV2[${i}]`, r);
      if (typeof r.permissions !== 'bigint' || r.permissions < 1n || r.permissions > 0xfn) bad(`hekiV2[${i}] has permissions outside MEM_ATTR_* (1..0xf)`);
      return [at, Number(r.permissions)] as const;
    });
    const v1 = (kind: 'nowrite' | 'exec'): GfnRange[] => {
      const ranges = list(state.hekiV1?.[kind], `hekiV1.${kind}`, bad);
      if (ranges.length > abi.HEKI_GFN_MAX) bad(`hekiV1.${kind} has more than ${abi.HEKI_GFN_MAX} ranges`);
      return ranges.map((r, i) => {
        if (typeof r.start !== 'bigint' || typeof r.end !== 'bigint' || r.start < 0n || r.start > r.end) bad(`hekiV1.${kind}[${i}] is not a GFN range`);
        return { start: r.start, end: r.end };
      });
    };
    const nowrite = v1('nowrite'), exec = v1('exec');
    this.attributes.fill(0);
    this.hekiV2.fill(0);
    for (const [[first, count], bits] of attrs) this.attributes.fill(bits, first, first + count);
    for (const [[first, count], perms] of v2) this.hekiV2.fill(0x10 | perms, first, first + count);
    this.hekiV1.nowrite.length = 0;
    this.hekiV1.exec.length = 0;
    this.hekiV1.nowrite.push(...nowrite);
    this.hekiV1.exec.push(...exec);
    this.faultPolicy = state.faultPolicy;
    this.memory.secondStage.setMbec(state.mbec);
    this.apply(0, this.memory.frameCount);
  }

  // ---------------------------------------------------------------------------------------------
  // Heki's layers (heki-memory.ts decides what goes in; these only store and apply)
  // ---------------------------------------------------------------------------------------------

  /** Heki v1: one more locked range; an EXEC range changes every frame's kernel execute. */
  lockV1(kind: 'nowrite' | 'exec', range: GfnRange): void {
    this.hekiV1[kind].push(range);
    if (kind === 'exec') this.apply(0, this.memory.frameCount);
    else this.applyGfns(range.start, range.end + 1n);
  }

  /** Heki v2: the MEM_ATTR_* value of a frame (undefined: no attribute, RWX). */
  v2Permissions(frame: number): number | undefined {
    const h = this.hekiV2[frame];
    return h === undefined || h === 0 ? undefined : h & 0xf;
  }

  /** Heki v2: sets frames [first, end) within memory to `perms` (MEM_ATTR_*; 0 resets to no attribute). */
  setV2(first: bigint, end: bigint, perms: number): void {
    const lo = Number(first < 0n ? 0n : first);
    const hi = Number(end > BigInt(this.memory.frameCount) ? BigInt(this.memory.frameCount) : end);
    if (hi <= lo) return;
    this.hekiV2.fill(perms === 0 ? 0 : 0x10 | perms, lo, hi);
    this.apply(lo, hi - lo);
  }

  private applyGfns(start: bigint, end: bigint): void {
    const n = BigInt(this.memory.frameCount);
    const lo = start < n ? Number(start) : this.memory.frameCount;
    const hi = end < n ? Number(end) : this.memory.frameCount;
    if (hi > lo) this.apply(lo, hi - lo);
  }

  /** Pushes the effective permissions of frames [first, first + count) to the core. */
  private apply(first: number, count: number): void {
    this.memory.secondStage.update(first, count, (f) => this.effective(f));
  }

  /** What every layer allows for a frame, as second-stage permissions. */
  effective(frame: number): number {
    const mbec = this.mbec;
    let p = S2_ALL;
    const a = this.attributes[frame]!;
    if (a & NR) p &= ~S2_READ;
    if (a & NW) p &= ~S2_WRITE;
    // Without MBEC one execute bit governs both modes (TLFS VSM; SDM §29.3.3.2): NX takes both away.
    if (a & NX) p &= mbec ? ~S2_EXEC : ~(S2_EXEC | S2_USER_EXEC);
    if (a & NUX) p &= ~S2_USER_EXEC;
    const gfn = BigInt(frame);
    // [heki-v1] 4/9: NOWRITE removes write. 8/9: once any EXEC range is locked, the kernel may
    // execute only inside EXEC ranges (EPT bit 2 under MBEC; user execute is untouched).
    if (this.hekiV1.nowrite.some((r) => gfn >= r.start && gfn <= r.end)) p &= ~S2_WRITE;
    if (this.hekiV1.exec.length > 0 && !this.hekiV1.exec.some((r) => gfn >= r.start && gfn <= r.end)) p &= ~S2_EXEC;
    // [heki-v2] 11/19 make_spte(): no WRITE drops write, no EXEC drops kernel execute under MBEC;
    // READ is never enforced.
    const h = this.hekiV2[frame]!;
    if (h !== 0) {
      if ((h & Number(abi.MEM_ATTR_WRITE)) === 0) p &= ~S2_WRITE;
      if ((h & Number(abi.MEM_ATTR_EXEC)) === 0 && mbec) p &= ~S2_EXEC;
    }
    return p;
  }
}

/**
 * Maximal runs of equal values in frames [lo, hi), the first `limit` of them: runs of 0 are
 * left out (and not counted) unless `zeros`.
 */
function frameRuns(values: ArrayLike<number>, lo: number, hi: number, limit: number, zeros = false): { first: number; end: number; value: number }[] {
  const out: { first: number; end: number; value: number }[] = [];
  for (let f = lo; f < hi && out.length < limit;) {
    const value = values[f]!;
    let g = f + 1;
    while (g < hi && values[g] === value) g++;
    if (zeros || value !== 0) out.push({ first: f, end: g, value });
    f = g;
  }
  return out;
}

function attributeBits(attributes: bigint): number {
  return (attributes & abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR ? NR : 0) | (attributes & abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW ? NW : 0) |
    (attributes & abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX ? NX : 0) | (attributes & abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX ? NUX : 0);
}

function attributeValue(bits: number): bigint {
  return (bits & NR ? abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NR : 0n) | (bits & NW ? abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NW : 0n) |
    (bits & NX ? abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NX : 0n) | (bits & NUX ? abi.KVM_MEMORY_ATTRIBUTE_PINBOX_NUX : 0n);
}

function list<T>(v: readonly T[] | undefined, what: string, bad: (why: string) => never): readonly T[] {
  if (!Array.isArray(v)) bad(`${what} must be a list`);
  return v as readonly T[];
}
