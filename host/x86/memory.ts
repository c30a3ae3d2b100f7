/**
 * Guest physical memory, allocated lazily in 4 KiB frames: a frame that was never written
 * reads as zeros and costs nothing, so a 16 MiB guest that touches 200 KiB holds 200 KiB.
 *
 * All addresses here are guest-physical and plain numbers (memory is at most 4 GiB, so a GPA
 * always fits a double exactly). Multi-byte values are little-endian. The host-side accessors
 * (readBytes/writeBytes/read64/write64) throw a RangeError outside memory: a host bug, never
 * a guest event. How the core treats guest accesses outside memory is the core's business.
 *
 * Self-modifying code: a frame may hold instructions that a CPU has decoded and cached. Such
 * frames are flagged in `codeFrames`; any write to a flagged frame, by a guest or by the host,
 * calls every `onCodeWrite` listener with the frame number before returning, so that decoded
 * instructions never go stale.
 */
import { SecondStage } from './mmu/second-stage.js';

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT;
export const PAGE_MASK = PAGE_SIZE - 1;

const ZERO_FRAME = new Uint8Array(PAGE_SIZE);

export class PhysicalMemory {
  readonly size: number;
  readonly frameCount: number;
  /** Backing store per frame; undefined until first written. */
  private readonly frames: (Uint8Array | undefined)[];
  private readonly views: (DataView | undefined)[];
  /** 1 where a CPU holds decoded instructions from that frame. */
  readonly codeFrames: Uint8Array;
  /** Called with a frame number when a flagged frame is written. */
  readonly onCodeWrite: ((frame: number) => void)[] = [];
  /**
   * Bumped each time a frame becomes a code frame (`markCode`). A CPU whose TLB may let stores
   * bypass the code check (a write entry filled before the frame held code) compares it at the
   * start of each run and drops such entries when it changed.
   */
  codeEpoch = 0;
  /**
   * The second-stage permissions of these frames (mmu/second-stage.ts). They belong to the VM
   * as EPT does, and a VM is one memory here, so they live with it and every CPU over it sees them.
   */
  readonly secondStage: SecondStage;

  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0 || size % PAGE_SIZE !== 0 || size > 2 ** 32) {
      throw new RangeError(`guest memory size must be a positive multiple of 4096 up to 4 GiB, got ${size}`);
    }
    this.size = size;
    this.frameCount = size / PAGE_SIZE;
    this.frames = new Array(this.frameCount).fill(undefined);
    this.views = new Array(this.frameCount).fill(undefined);
    this.codeFrames = new Uint8Array(this.frameCount);
    this.secondStage = new SecondStage(this.frameCount);
  }

  /** Number of frames that have backing store. */
  get allocatedFrames(): number {
    let n = 0;
    for (const f of this.frames) if (f !== undefined) n++;
    return n;
  }

  /** Frame contents for reading; a never-written frame is the shared zero frame (do not write it). */
  frameForRead(frame: number): Uint8Array {
    return this.frames[frame] ?? ZERO_FRAME;
  }

  /** Frame contents for writing, allocating on first use. Callers that write must call `noteWrite`. */
  frameForWrite(frame: number): Uint8Array {
    let f = this.frames[frame];
    if (f === undefined) {
      f = new Uint8Array(PAGE_SIZE);
      this.frames[frame] = f;
    }
    return f;
  }

  /** A little-endian DataView over one frame, allocating it. */
  frameView(frame: number): DataView {
    let v = this.views[frame];
    if (v === undefined) {
      const f = this.frameForWrite(frame);
      v = new DataView(f.buffer, f.byteOffset, PAGE_SIZE);
      this.views[frame] = v;
    }
    return v;
  }

  /** Whether a frame has backing store (for snapshots). */
  isAllocated(frame: number): boolean {
    return this.frames[frame] !== undefined;
  }

  /** Flags a frame as holding decoded instructions, so that writes to it are reported. */
  markCode(frame: number): void {
    if (this.codeFrames[frame] === 0) {
      this.codeFrames[frame] = 1;
      this.codeEpoch++;
    }
  }

  /** Must follow every write into a frame obtained from frameForWrite/frameView. */
  noteWrite(frame: number): void {
    if (this.codeFrames[frame] !== 0) this.invalidateCode(frame);
  }

  private invalidateCode(frame: number): void {
    this.codeFrames[frame] = 0;
    for (const listener of this.onCodeWrite) listener(frame);
  }

  contains(gpa: number, length = 1): boolean {
    return Number.isInteger(gpa) && gpa >= 0 && length >= 0 && gpa + length <= this.size;
  }

  private check(gpa: number, length: number): void {
    if (!this.contains(gpa, length)) {
      throw new RangeError(
        `guest physical access 0x${gpa.toString(16)}+${length} is outside memory (size 0x${this.size.toString(16)})`,
      );
    }
  }

  readBytes(gpa: number, length: number): Uint8Array {
    this.check(gpa, length);
    const out = new Uint8Array(length);
    let done = 0;
    while (done < length) {
      const a = gpa + done;
      const frame = a >>> PAGE_SHIFT;
      const off = a & PAGE_MASK;
      const n = Math.min(PAGE_SIZE - off, length - done);
      out.set(this.frameForRead(frame).subarray(off, off + n), done);
      done += n;
    }
    return out;
  }

  writeBytes(gpa: number, data: Uint8Array): void {
    this.check(gpa, data.length);
    let done = 0;
    while (done < data.length) {
      const a = gpa + done;
      const frame = a >>> PAGE_SHIFT;
      const off = a & PAGE_MASK;
      const n = Math.min(PAGE_SIZE - off, data.length - done);
      this.frameForWrite(frame).set(data.subarray(done, done + n), off);
      this.noteWrite(frame);
      done += n;
    }
  }

  read8(gpa: number): number {
    this.check(gpa, 1);
    return this.frameForRead(gpa >>> PAGE_SHIFT)[gpa & PAGE_MASK]!;
  }

  read16(gpa: number): number {
    const b = this.readBytes(gpa, 2);
    return b[0]! | (b[1]! << 8);
  }

  read32(gpa: number): number {
    const b = this.readBytes(gpa, 4);
    return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
  }

  read64(gpa: number): bigint {
    const lo = this.read32(gpa);
    const hi = this.read32(gpa + 4);
    return (BigInt(hi) << 32n) | BigInt(lo);
  }

  write8(gpa: number, value: number): void {
    this.writeBytes(gpa, Uint8Array.of(value & 0xff));
  }

  write16(gpa: number, value: number): void {
    this.writeBytes(gpa, Uint8Array.of(value & 0xff, (value >>> 8) & 0xff));
  }

  write32(gpa: number, value: number): void {
    this.writeBytes(gpa, Uint8Array.of(value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff));
  }

  write64(gpa: number, value: bigint): void {
    const v = BigInt.asUintN(64, value);
    this.write32(gpa, Number(v & 0xffffffffn));
    this.write32(gpa + 4, Number(v >> 32n));
  }
}
