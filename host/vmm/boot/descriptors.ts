/**
 * Encoders for the boot image's system structures: GDT segment descriptors, 64-bit TSS
 * descriptors and the TSS itself, and 64-bit IDT gates (SDM vol. 3A §3.4.5, §7.2.3, §7.7,
 * §6.14.1). They produce bytes; boot.ts decides where they go.
 */

/** Access-byte and flag values of the descriptors the boot GDT uses. */
const PRESENT = 0x80;
const S_CODE_DATA = 0x10;
const TYPE_CODE_EXEC_READ_ACCESSED = 0xb;
const TYPE_DATA_READ_WRITE_ACCESSED = 0x3;
const TYPE_TSS64_BUSY = 0xb;
const TYPE_INTERRUPT_GATE = 0xe;
const FLAG_G = 0x8;
const FLAG_DB = 0x4;
const FLAG_L = 0x2;

/** A flat (base 0, limit 4 GiB) code or data descriptor. */
function flatDescriptor(access: number, flags: number): bigint {
  const limitLow = 0xffffn;
  const limitHigh = 0xfn;
  return limitLow | (BigInt(access) << 40n) | (limitHigh << 48n) | (BigInt(flags) << 52n);
}

export function code64Descriptor(dpl: number): bigint {
  return flatDescriptor(PRESENT | (dpl << 5) | S_CODE_DATA | TYPE_CODE_EXEC_READ_ACCESSED, FLAG_G | FLAG_L);
}

export function code32Descriptor(dpl: number): bigint {
  return flatDescriptor(PRESENT | (dpl << 5) | S_CODE_DATA | TYPE_CODE_EXEC_READ_ACCESSED, FLAG_G | FLAG_DB);
}

export function dataDescriptor(dpl: number): bigint {
  return flatDescriptor(PRESENT | (dpl << 5) | S_CODE_DATA | TYPE_DATA_READ_WRITE_ACCESSED, FLAG_G | FLAG_DB);
}

/** TSS size without an I/O permission bitmap. */
export const TSS_SIZE = 104;
export const TSS_LIMIT = TSS_SIZE - 1;
export const TSS_TYPE_BUSY = TYPE_TSS64_BUSY;

/**
 * A 16-byte 64-bit TSS descriptor, marked busy: the VMM loads TR through KVM_SET_SREGS rather
 * than LTR, and a loaded TR's descriptor is busy, as LTR would have left it.
 */
export function tssDescriptor(base: number): Uint8Array {
  const d = new Uint8Array(16);
  const v = new DataView(d.buffer);
  v.setUint16(0, TSS_LIMIT & 0xffff, true);
  v.setUint16(2, base & 0xffff, true);
  d[4] = (base >>> 16) & 0xff;
  d[5] = PRESENT | TYPE_TSS64_BUSY;
  d[6] = (TSS_LIMIT >>> 16) & 0xf;
  d[7] = (base >>> 24) & 0xff;
  v.setUint32(8, Math.floor(base / 2 ** 32), true);
  return d;
}

/** A 64-bit TSS with RSP0 and IST1 set and no I/O permission bitmap (SDM §8.7, fig. 8-11). */
export function taskStateSegment(rsp0: number, ist1: number): Uint8Array {
  const t = new Uint8Array(TSS_SIZE);
  const v = new DataView(t.buffer);
  v.setBigUint64(4, BigInt(rsp0), true);
  v.setBigUint64(36, BigInt(ist1), true);
  // An I/O map base at or beyond the limit means "no bitmap": IN/OUT at CPL > IOPL #GP.
  v.setUint16(102, TSS_SIZE, true);
  return t;
}

/** A 16-byte 64-bit interrupt gate (IF cleared on entry) with the given IST index and DPL. */
export function interruptGate(handler: number, selector: number, ist: number, dpl: number): Uint8Array {
  const g = new Uint8Array(16);
  const v = new DataView(g.buffer);
  v.setUint16(0, handler & 0xffff, true);
  v.setUint16(2, selector, true);
  g[4] = ist & 0x7;
  g[5] = PRESENT | (dpl << 5) | TYPE_INTERRUPT_GATE;
  v.setUint16(6, (handler >>> 16) & 0xffff, true);
  v.setUint32(8, Math.floor(handler / 2 ** 32), true);
  return g;
}
