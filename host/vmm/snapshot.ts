/**
 * VM snapshots (protocol `snapshot` / `restore`): everything a VM is, as a VMM would migrate
 * it — guest memory (the frames that hold data), each vCPU's registers, system registers and
 * MSRs (KVM_GET_MSRS over KVM_GET_MSR_INDEX_LIST), the Heki state (pins and exit masks, which
 * Heki itself never exposes: the model's extension, so snapshots are the model's only), the
 * capabilities and the MSR filter user space set, the policy's stored MSR values and a control
 * client's MSR exit reply; pinbox's CR filter and each vCPU's register intercepts (the KVM
 * model's extensions); the memory protections — attributes, Heki's v1 and v2 memory locks, MBEC and
 * the delivery (docs/memory-protection.md); Andersen's pins travel as the MSRs they are, in the MSR index list.
 *
 * The format is msgpack, opaque to clients and versioned. A snapshot is checked whole before
 * anything is loaded, and fits only a VM of the same shape (vCPUs, memory size, Heki profile, the
 * Andersen ABI or not). Snapshots from before the CR filter load with none of it, and those from
 * before memory protections with none: the VM loads unprotected, whatever its policy applies at a reset.
 * Loading goes through the KVM API, which may still refuse a tampered register state: then the
 * VM is reset rather than left half-restored, and the error says so. Operations suspended in
 * the VM are abandoned, as by a reset.
 */
import { decodeMsgpack, encodeMsgpack } from '../../protocol/codec.js';
import { KVM_CAP_PINBOX_REG_INTERCEPTS } from '../../protocol/abi.js';
import { ProtocolError } from '../../protocol/errors.js';
import type { HekiSnapshot, MemoryProtectionSnapshot } from '../kvm/api/model.js';
import type { MsrFilterSpec } from '../kvm/api/msr-filter.js';
import type { RegInterceptSpec } from '../kvm/api/cr-hardening.js';
import type { MsrEntry } from '../kvm/api/vcpu.js';
import type { Regs, Sregs } from '../kvm/api/regs.js';
import type { Machine } from './machine.js';

const FORMAT = 'pinbox-snapshot';
const VERSION = 1;
const PAGE = 4096;

interface VcpuState {
  regs: Regs;
  sregs: Sregs;
  msrs: MsrEntry[];
  /** PINBOX_GET_REG_INTERCEPTS, where the KVM has them. */
  intercepts?: RegInterceptSpec;
}

interface SnapshotData {
  format: string;
  version: number;
  vcpus: number;
  memorySize: number;
  profile: string;
  frames: [number, Uint8Array][];
  vcpuStates: VcpuState[];
  heki: HekiSnapshot;
  caps: [number, bigint[]][];
  filter: MsrFilterSpec | null;
  storedMsrs: [number, number, bigint][];
  msrExitReply: { error: number; data: bigint } | 'untouched' | null;
  andersen?: boolean;
  crFilter?: { cr0Mask: bigint; cr4Mask: bigint } | null;
  memoryProtection?: MemoryProtectionSnapshot;
}

/** Every MSR of KVM_GET_MSR_INDEX_LIST that KVM_GET_MSRS reads on this vCPU (it stops at the first it cannot). */
function readAllMsrs(machine: Machine, vcpu: number, indices: readonly number[]): MsrEntry[] {
  const out: MsrEntry[] = [];
  let rest = [...indices];
  while (rest.length > 0) {
    const got = machine.getMsrs(vcpu, rest.slice(0, 255));
    out.push(...got);
    rest = rest.slice(got.length + (got.length < Math.min(255, rest.length) ? 1 : 0));
  }
  return out;
}

export function takeSnapshot(machine: Machine): Uint8Array {
  const memory = machine.memory;
  const frames: [number, Uint8Array][] = [];
  for (let f = 0; f < memory.frameCount; f++) {
    if (!memory.isAllocated(f)) continue;
    const bytes = memory.readBytes(f * PAGE, PAGE);
    if (bytes.some((b) => b !== 0)) frames.push([f, bytes]);
  }
  const heki = machine.modelVm('pinbox GET_HEKI_STATE').getHekiState();
  const msrIndices = machine.kvm.getMsrIndexList();
  const vcpuStates: VcpuState[] = [];
  for (let v = 0; v < machine.vcpus; v++) {
    const intercepts = machine.vm.checkExtension(KVM_CAP_PINBOX_REG_INTERCEPTS) === 0 ? undefined : machine.getRegisterIntercepts(v);
    vcpuStates.push({
      regs: machine.getRegs(v), sregs: machine.getSregs(v), msrs: readAllMsrs(machine, v, msrIndices), ...(intercepts && { intercepts }),
    });
  }
  const data: SnapshotData = {
    format: FORMAT,
    version: VERSION,
    vcpus: machine.vcpus,
    memorySize: memory.size,
    profile: machine.profile,
    frames,
    vcpuStates,
    heki,
    caps: [...machine.enabledCaps].map(([cap, args]) => [cap, [...args]]),
    filter: machine.msrFilter ?? null,
    storedMsrs: machine.answers.emulated.storedValues(),
    msrExitReply: machine.answers.override,
    andersen: machine.andersen,
    crFilter: machine.crHardening.filter ?? null,
    memoryProtection: machine.modelVm('pinbox GET_MEMORY_PROTECTION_STATE').getMemoryProtectionState(),
  };
  return encodeMsgpack(data);
}

function invalid(why: string): ProtocolError {
  return new ProtocolError('invalid_message', `not a snapshot of this VM: ${why}`, { path: 'snapshot' });
}

/** msgpack gives small integers as numbers and large ones as bigints: 64-bit fields become bigints. */
function u64(v: unknown, what: string): bigint {
  if (typeof v === 'bigint' && v >= 0n) return v;
  if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) return BigInt(v);
  throw invalid(`${what} is not a u64`);
}

function int(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw invalid(`${what} is not an integer`);
}

function record(v: unknown, what: string): Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw invalid(`${what} is not a map`);
  return v as Record<string, unknown>;
}

function list(v: unknown, what: string): unknown[] {
  if (!Array.isArray(v)) throw invalid(`${what} is not an array`);
  return v;
}

const REG_NAMES = ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rsp', 'rbp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip', 'rflags'] as const;
const SEGMENTS = ['cs', 'ds', 'es', 'fs', 'gs', 'ss', 'tr', 'ldt'] as const;
const SREG_U64 = ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const;

function regsOf(v: unknown, what: string): Regs {
  const r = record(v, what);
  return Object.fromEntries(REG_NAMES.map((n) => [n, u64(r[n], `${what}.${n}`)])) as unknown as Regs;
}

function sregsOf(v: unknown, what: string): Sregs {
  const s = record(v, what);
  const out: Record<string, unknown> = {};
  for (const name of SEGMENTS) {
    const g = record(s[name], `${what}.${name}`);
    out[name] = {
      base: u64(g.base, `${what}.${name}.base`),
      limit: int(g.limit, `${what}.${name}.limit`),
      selector: int(g.selector, `${what}.${name}.selector`),
      type: int(g.type, `${what}.${name}.type`),
      dpl: int(g.dpl, `${what}.${name}.dpl`),
      ...Object.fromEntries((['present', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const).map((f) => {
        if (typeof g[f] !== 'boolean') throw invalid(`${what}.${name}.${f} is not a boolean`);
        return [f, g[f]];
      })),
    };
  }
  for (const t of ['gdt', 'idt'] as const) {
    const d = record(s[t], `${what}.${t}`);
    out[t] = { base: u64(d.base, `${what}.${t}.base`), limit: int(d.limit, `${what}.${t}.limit`) };
  }
  for (const n of SREG_U64) out[n] = u64(s[n], `${what}.${n}`);
  return out as unknown as Sregs;
}

function interceptsOf(v: unknown, what: string): RegInterceptSpec {
  const r = record(v, what);
  return {
    control: u64(r.control, `${what}.control`),
    cr0Mask: u64(r.cr0Mask, `${what}.cr0Mask`),
    cr4Mask: u64(r.cr4Mask, `${what}.cr4Mask`),
    miscEnableMask: u64(r.miscEnableMask, `${what}.miscEnableMask`),
  };
}

function parseSnapshot(machine: Machine, bytes: Uint8Array): SnapshotData {
  let raw: unknown;
  try {
    raw = decodeMsgpack(bytes);
  } catch (e) {
    throw invalid((e as Error).message);
  }
  const d = record(raw, 'the snapshot');
  if (d.format !== FORMAT || int(d.version, 'version') !== VERSION) throw invalid(`format ${String(d.format)} version ${String(d.version)}, expected ${FORMAT} ${VERSION}`);
  const vcpus = int(d.vcpus, 'vcpus');
  const memorySize = int(d.memorySize, 'memorySize');
  if (vcpus !== machine.vcpus || memorySize !== machine.memory.size || d.profile !== machine.profile) {
    throw invalid(`it has ${vcpus} vCPUs, ${memorySize} bytes of memory and profile ${String(d.profile)}; this VM has ${machine.vcpus}, ${machine.memory.size} and ${machine.profile}`);
  }
  const andersen = d.andersen === undefined ? false : d.andersen;
  if (andersen !== machine.andersen) throw invalid(`it was ${andersen === true ? '' : 'not '}taken on a VM with the andersen option, and this VM is ${machine.andersen ? '' : 'not '}one`);
  let crFilter: SnapshotData['crFilter'] = null;
  if (d.crFilter !== undefined && d.crFilter !== null) {
    const f = record(d.crFilter, 'crFilter');
    crFilter = { cr0Mask: u64(f.cr0Mask, 'crFilter.cr0Mask'), cr4Mask: u64(f.cr4Mask, 'crFilter.cr4Mask') };
  }
  const memoryProtection = d.memoryProtection === undefined ? undefined : memoryProtectionOf(d.memoryProtection);
  const frames = list(d.frames, 'frames').map((f, i) => {
    const [n, b] = list(f, `frames[${i}]`);
    const frame = int(n, `frames[${i}]`);
    if (frame < 0 || frame >= machine.memory.frameCount || !(b instanceof Uint8Array) || b.length !== PAGE) throw invalid(`frames[${i}] is not a page of this VM's memory`);
    return [frame, b] as [number, Uint8Array];
  });
  const vcpuStates = list(d.vcpuStates, 'vcpuStates').map((v, i) => {
    const s = record(v, `vcpuStates[${i}]`);
    const intercepts = s.intercepts === undefined ? undefined : interceptsOf(s.intercepts, `vcpuStates[${i}].intercepts`);
    return {
      ...(intercepts && { intercepts }),
      regs: regsOf(s.regs, `vcpuStates[${i}].regs`),
      sregs: sregsOf(s.sregs, `vcpuStates[${i}].sregs`),
      msrs: list(s.msrs, `vcpuStates[${i}].msrs`).map((m, j) => {
        const e = record(m, `vcpuStates[${i}].msrs[${j}]`);
        return { index: int(e.index, 'msr index'), data: u64(e.data, 'msr data') };
      }),
    };
  });
  if (vcpuStates.length !== vcpus) throw invalid(`${vcpuStates.length} vCPU states for ${vcpus} vCPUs`);
  const h = record(d.heki, 'heki');
  const heki: HekiSnapshot = {
    pinnedCr0: u64(h.pinnedCr0, 'heki.pinnedCr0'),
    pinnedCr4: u64(h.pinnedCr4, 'heki.pinnedCr4'),
    configureExitReason: int(h.configureExitReason, 'heki.configureExitReason'),
    denialExitReason: int(h.denialExitReason, 'heki.denialExitReason'),
  };
  const caps = list(d.caps, 'caps').map((c, i) => {
    const [cap, args] = list(c, `caps[${i}]`);
    return [int(cap, `caps[${i}]`), list(args, `caps[${i}] args`).map((a) => u64(a, `caps[${i}] args`))] as [number, bigint[]];
  });
  let filter: MsrFilterSpec | null = null;
  if (d.filter !== null) {
    const f = record(d.filter, 'filter');
    filter = {
      flags: int(f.flags, 'filter.flags'),
      ranges: list(f.ranges, 'filter.ranges').map((r, i) => {
        const g = record(r, `filter.ranges[${i}]`);
        const bitmap = g.bitmap;
        if (bitmap !== undefined && bitmap !== null && !(bitmap instanceof Uint8Array)) throw invalid(`filter.ranges[${i}].bitmap is not bytes`);
        return { flags: int(g.flags, 'range flags'), base: int(g.base, 'range base'), nmsrs: int(g.nmsrs, 'range nmsrs'), bitmap: bitmap as Uint8Array | null };
      }),
    };
  }
  const storedMsrs = list(d.storedMsrs, 'storedMsrs').map((s, i) => {
    const [vcpu, index, value] = list(s, `storedMsrs[${i}]`);
    return [int(vcpu, 'vcpu'), int(index, 'index'), u64(value, 'value')] as [number, number, bigint];
  });
  let msrExitReply: SnapshotData['msrExitReply'] = null;
  if (d.msrExitReply === 'untouched') msrExitReply = 'untouched';
  else if (d.msrExitReply !== null) {
    const m = record(d.msrExitReply, 'msrExitReply');
    msrExitReply = { error: int(m.error, 'msrExitReply.error'), data: u64(m.data, 'msrExitReply.data') };
  }
  return {
    format: FORMAT, version: VERSION, vcpus, memorySize, profile: machine.profile, frames, vcpuStates, heki, caps, filter, storedMsrs, msrExitReply,
    andersen, crFilter, ...(memoryProtection !== undefined && { memoryProtection }),
  };
}

/** The memory protections' shape; what KVM would refuse of their values, the model's restore checks. */
function memoryProtectionOf(v: unknown): MemoryProtectionSnapshot {
  const m = record(v, 'memoryProtection');
  if (typeof m.mbec !== 'boolean') throw invalid('memoryProtection.mbec is not true or false');
  const ranges = (x: unknown, what: string) => list(x, what).map((r, i) => record(r, `${what}[${i}]`));
  const gfns = (x: unknown, what: string) => ranges(x, what).map((r) => ({ start: u64(r.start, `${what} start`), end: u64(r.end, `${what} end`) }));
  const h = record(m.hekiV1, 'memoryProtection.hekiV1');
  return {
    mbec: m.mbec,
    faultPolicy: int(m.faultPolicy, 'memoryProtection.faultPolicy'),
    attributes: ranges(m.attributes, 'memoryProtection.attributes').map((r) => ({
      address: u64(r.address, 'attribute address'), size: u64(r.size, 'attribute size'), attributes: u64(r.attributes, 'attributes'),
    })),
    hekiV1: { nowrite: gfns(h.nowrite, 'memoryProtection.hekiV1.nowrite'), exec: gfns(h.exec, 'memoryProtection.hekiV1.exec') },
    hekiV2: ranges(m.hekiV2, 'memoryProtection.hekiV2').map((r) => ({
      address: u64(r.address, 'hekiV2 address'), size: u64(r.size, 'hekiV2 size'), permissions: u64(r.permissions, 'hekiV2 permissions'),
    })),
  };
}

export function restoreSnapshot(machine: Machine, bytes: Uint8Array): void {
  const s = parseSnapshot(machine, bytes);
  // From here on the VM is being replaced: a refusal part-way resets it rather than leave it half-restored.
  machine.reset('restore');
  try {
    // The reset applied the policy's protections; the snapshot's replace them (MBEC could not change under them).
    machine.modelVm('pinbox RESET_MEMORY_PROTECTION').resetMemoryProtection();
    for (const [cap, args] of s.caps) machine.enableCap(cap, args);
    if (s.filter !== null) machine.setMsrFilter(s.filter, 'control');
    machine.setHekiState(s.heki);
    if (s.crFilter) machine.setCrFilter(s.crFilter, 'control');
    if (s.memoryProtection !== undefined) machine.modelVm('pinbox SET_MEMORY_PROTECTION_STATE').setMemoryProtectionState(s.memoryProtection);
    const memory = machine.memory;
    const held = new Set(s.frames.map(([frame]) => frame));
    const zero = new Uint8Array(PAGE);
    for (let f = 0; f < memory.frameCount; f++) if (memory.isAllocated(f) && !held.has(f)) memory.writeBytes(f * PAGE, zero);
    for (const [frame, page] of s.frames) memory.writeBytes(frame * PAGE, page);
    s.vcpuStates.forEach((state, v) => {
      machine.setSregs(v, state.sregs);
      if (state.intercepts !== undefined) machine.setRegisterIntercepts(v, state.intercepts, 'restore');
      for (const e of state.msrs) machine.setMsrs(v, [e]);
      machine.setRegs(v, state.regs);
    });
    machine.answers.emulated.restoreValues(s.storedMsrs);
    machine.setMsrExitReply(s.msrExitReply);
  } catch (e) {
    machine.reset('restore');
    throw new ProtocolError('invalid_message', `the snapshot could not be loaded (${(e as Error).message}); the VM was reset instead`, { path: 'snapshot' });
  }
}
