/**
 * `struct kvm_regs` and `struct kvm_sregs` to and from the model's Regs and Sregs. Encoding is
 * the copy-in step: a value the C field cannot hold (not a bigint for a __u64, out of range,
 * not a boolean for a __u8 flag) is EINVAL naming the field, before anything reaches the
 * kernel. What the kernel then accepts is the kernel's business (kvm_is_valid_sregs()).
 */
import { KVM_REGS_FIELDS, type Regs, type Segment, type Sregs } from '../api/regs.js';
import { KvmError } from '../api/errors.js';
import { DTABLE, SEGMENT, SIZEOF_SEGMENT, SREGS, SREGS_SEGMENTS } from './uapi.js';

const U64_MAX = (1n << 64n) - 1n;
const SEGMENT_FLAGS = ['present', 'db', 's', 'l', 'g', 'avl', 'unusable'] as const;

function u64(call: string, where: string, value: unknown): bigint {
  if (typeof value !== 'bigint' || value < 0n || value > U64_MAX) {
    throw new KvmError('EINVAL', call, `${where} must be a u64 bigint, got ${String(value)}`);
  }
  return value;
}

function uint(call: string, where: string, value: unknown, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    throw new KvmError('EINVAL', call, `${where} must be an integer 0..${max}, got ${String(value)}`);
  }
  return value;
}

function object<T>(call: string, where: string, value: T): T {
  if (typeof value !== 'object' || value === null) throw new KvmError('EINVAL', call, `${where} must be an object`);
  return value;
}

export function encodeRegs(view: DataView, at: number, regs: Regs, call: string): void {
  object(call, 'regs', regs);
  // All fields are checked before any is stored: a refused call changes nothing.
  const values = KVM_REGS_FIELDS.map((name) => u64(call, name, regs[name]));
  values.forEach((v, i) => view.setBigUint64(at + 8 * i, v, true));
}

export function decodeRegs(view: DataView, at: number): Regs {
  const r = {} as Record<(typeof KVM_REGS_FIELDS)[number], bigint>;
  KVM_REGS_FIELDS.forEach((name, i) => (r[name] = view.getBigUint64(at + 8 * i, true)));
  return r;
}

function checkSegment(call: string, name: string, s: Segment): void {
  object(call, name, s);
  u64(call, `${name}.base`, s.base);
  uint(call, `${name}.limit`, s.limit, 0xffff_ffff);
  uint(call, `${name}.selector`, s.selector, 0xffff);
  uint(call, `${name}.type`, s.type, 0xff);
  uint(call, `${name}.dpl`, s.dpl, 0xff);
  for (const flag of SEGMENT_FLAGS) {
    if (typeof s[flag] !== 'boolean') throw new KvmError('EINVAL', call, `${name}.${flag} must be a boolean`);
  }
}

function checkSregs(s: Sregs, call: string): void {
  object(call, 'sregs', s);
  for (const seg of SREGS_SEGMENTS) checkSegment(call, seg, s[seg]);
  for (const dt of ['gdt', 'idt'] as const) {
    object(call, dt, s[dt]);
    u64(call, `${dt}.base`, s[dt].base);
    uint(call, `${dt}.limit`, s[dt].limit, 0xffff);
  }
  for (const f of ['cr0', 'cr2', 'cr3', 'cr4', 'cr8', 'efer', 'apicBase'] as const) u64(call, f, s[f]);
}

/**
 * Stores `s` as a kvm_sregs. The interrupt bitmap (no field in Sregs) is zeroed: no external
 * interrupt is pending, which is all pinbox's guests ever have (there is no in-kernel irqchip).
 */
export function encodeSregs(view: DataView, at: number, s: Sregs, call: string): void {
  checkSregs(s, call);
  SREGS_SEGMENTS.forEach((name, i) => {
    const seg = s[name];
    const o = at + i * SIZEOF_SEGMENT;
    view.setBigUint64(o + SEGMENT.base, seg.base, true);
    view.setUint32(o + SEGMENT.limit, seg.limit, true);
    view.setUint16(o + SEGMENT.selector, seg.selector, true);
    view.setUint8(o + SEGMENT.type, seg.type);
    view.setUint8(o + SEGMENT.dpl, seg.dpl);
    for (const flag of SEGMENT_FLAGS) view.setUint8(o + SEGMENT[flag], seg[flag] ? 1 : 0);
    view.setUint8(o + SIZEOF_SEGMENT - 1, 0);
  });
  for (const dt of ['gdt', 'idt'] as const) {
    view.setBigUint64(at + SREGS[dt] + DTABLE.base, s[dt].base, true);
    view.setUint16(at + SREGS[dt] + DTABLE.limit, s[dt].limit, true);
    for (let p = 10; p < 16; p++) view.setUint8(at + SREGS[dt] + p, 0);
  }
  view.setBigUint64(at + SREGS.cr0, s.cr0, true);
  view.setBigUint64(at + SREGS.cr2, s.cr2, true);
  view.setBigUint64(at + SREGS.cr3, s.cr3, true);
  view.setBigUint64(at + SREGS.cr4, s.cr4, true);
  view.setBigUint64(at + SREGS.cr8, s.cr8, true);
  view.setBigUint64(at + SREGS.efer, s.efer, true);
  view.setBigUint64(at + SREGS.apic_base, s.apicBase, true);
  for (let i = 0; i < 4; i++) view.setBigUint64(at + SREGS.interrupt_bitmap + 8 * i, 0n, true);
}

function decodeSegment(view: DataView, o: number): Segment {
  return {
    base: view.getBigUint64(o + SEGMENT.base, true),
    limit: view.getUint32(o + SEGMENT.limit, true),
    selector: view.getUint16(o + SEGMENT.selector, true),
    type: view.getUint8(o + SEGMENT.type),
    present: view.getUint8(o + SEGMENT.present) !== 0,
    dpl: view.getUint8(o + SEGMENT.dpl),
    db: view.getUint8(o + SEGMENT.db) !== 0,
    s: view.getUint8(o + SEGMENT.s) !== 0,
    l: view.getUint8(o + SEGMENT.l) !== 0,
    g: view.getUint8(o + SEGMENT.g) !== 0,
    avl: view.getUint8(o + SEGMENT.avl) !== 0,
    unusable: view.getUint8(o + SEGMENT.unusable) !== 0,
  };
}

export function decodeSregs(view: DataView, at: number): Sregs {
  const seg = (name: (typeof SREGS_SEGMENTS)[number]): Segment => decodeSegment(view, at + SREGS_SEGMENTS.indexOf(name) * SIZEOF_SEGMENT);
  const dtable = (dt: 'gdt' | 'idt') => ({
    base: view.getBigUint64(at + SREGS[dt] + DTABLE.base, true),
    limit: view.getUint16(at + SREGS[dt] + DTABLE.limit, true),
  });
  return {
    cs: seg('cs'), ds: seg('ds'), es: seg('es'), fs: seg('fs'), gs: seg('gs'), ss: seg('ss'), tr: seg('tr'), ldt: seg('ldt'),
    gdt: dtable('gdt'),
    idt: dtable('idt'),
    cr0: view.getBigUint64(at + SREGS.cr0, true),
    cr2: view.getBigUint64(at + SREGS.cr2, true),
    cr3: view.getBigUint64(at + SREGS.cr3, true),
    cr4: view.getBigUint64(at + SREGS.cr4, true),
    cr8: view.getBigUint64(at + SREGS.cr8, true),
    efer: view.getBigUint64(at + SREGS.efer, true),
    apicBase: view.getBigUint64(at + SREGS.apic_base, true),
  };
}
